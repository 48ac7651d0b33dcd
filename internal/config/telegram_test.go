package config

import (
	"strings"
	"testing"
)

// The Bot API URL defaults to Telegram's and must be an absolute http(s)
// URL; the bot token is read as given.
func TestTelegramAPIURL(t *testing.T) {
	load := func(url string) (Config, error) {
		return Load(func(k string) string {
			switch k {
			case "STEWARD_TELEGRAM_API_URL":
				return url
			case "STEWARD_TELEGRAM_BOT_TOKEN":
				return "123456789:AAHtoken-of-the-bot-0123456789"
			}
			return ""
		})
	}
	c, err := load("")
	if err != nil || c.TelegramAPIURL != "https://api.telegram.org" || c.TelegramBotToken != "123456789:AAHtoken-of-the-bot-0123456789" {
		t.Errorf("default: %q, %q, %v", c.TelegramAPIURL, c.TelegramBotToken, err)
	}
	if c, err := load("http://127.0.0.1:12114"); err != nil || c.TelegramAPIURL != "http://127.0.0.1:12114" {
		t.Errorf("stand-in URL: %q, %v", c.TelegramAPIURL, err)
	}
	for _, bad := range []string{"api.telegram.org", "ftp://api.telegram.org", "https://"} {
		if _, err := load(bad); err == nil || !strings.Contains(err.Error(), "STEWARD_TELEGRAM_API_URL") {
			t.Errorf("%q: want an error naming the variable, got %v", bad, err)
		}
	}
}
