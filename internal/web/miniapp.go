package web

import (
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/steward-privacy/steward/identity"
	"github.com/steward-privacy/steward/internal/telegram"
)

// The Telegram Mini App: the same privacy center opened from the bot. The
// launch page's script (static/miniapp.js) posts the initData Telegram puts
// in the URL fragment; Steward checks its signature with the bot token, and
// the person is signed in as tg:<user id> in Telegram's language — no email
// code. Requests they make there are bot requests Telegram vouched for.

func (c *Center) miniApp(ctx *fiber.Ctx) error {
	if _, ok := c.product(ctx); !ok || c.cfg.TelegramBotToken == "" || c.d.Sessions == nil {
		return c.notFound(ctx)
	}
	v := c.newView(ctx, "miniapp_title")
	v.MiniApp = true
	v.Data = map[string]string{"Action": ctx.Path() + "/session"}
	return c.render(ctx, fiber.StatusOK, "miniapp", v)
}

func (c *Center) miniAppSession(ctx *fiber.Ctx) error {
	product := ctx.Locals(localProduct).(string)
	if c.cfg.TelegramBotToken == "" || c.d.Sessions == nil {
		return c.notFound(ctx)
	}
	raw := ctx.FormValue("init_data")
	if len(raw) > 8192 {
		return c.message(ctx, fiber.StatusBadRequest, "miniapp_title", "miniapp_bad")
	}
	d, err := telegram.Validate(strings.Clone(raw), c.cfg.TelegramBotToken, c.d.Clock.Now(), c.cfg.InitDataMaxAge)
	if err != nil || d.User.ID <= 0 {
		return c.message(ctx, fiber.StatusUnauthorized, "miniapp_title", "miniapp_bad")
	}
	subj, err := identity.Parse("tg:" + strconv.FormatInt(d.User.ID, 10))
	if err != nil {
		return c.message(ctx, fiber.StatusUnauthorized, "miniapp_title", "miniapp_bad")
	}
	token, err := c.d.Sessions.OpenTelegram(ctx.UserContext(), subj, product)
	if err != nil {
		return c.failure(ctx, err)
	}
	// From here on this response's cookies follow the Mini App's rules
	// (SameSite=None inside Telegram's web client iframe).
	ctx.Request().Header.SetCookie(cookieMiniApp, "1")
	c.setCookie(ctx, cookieMiniApp, "1", 2*time.Hour)
	c.setCookie(ctx, cookieSession, token, 2*time.Hour)
	lang := negotiate(d.User.LanguageCode)
	if validLang(ctx.Cookies(cookieLang)) && ctx.FormValue("keep_lang") == "1" {
		lang = ctx.Cookies(cookieLang)
	}
	c.setCookie(ctx, cookieLang, lang, 365*24*time.Hour)
	return ctx.Redirect(Prefix+"/"+product+"/", fiber.StatusSeeOther)
}
