package refapp

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Bot bonuses, in credits.
const (
	startBonus    = 5
	welcomeBonus  = 5  // to someone who joined through a referral link
	referrerBonus = 10 // to the person whose link it was
	optoutRate    = 0.15
)

// tgID is person idx's Telegram user id: disjoint ranges per index keep it
// unique, the offset within the range makes it look arbitrary.
func tgID(idx int) int64 {
	const base, stride = 200_000_000, 61
	return base + int64(idx)*stride + int64(mix64(key(kTelegram, idx, 0))%stride)
}

// starPayment is a generated Telegram Stars payment, for the ledger.
type starPayment struct {
	id       rowID
	credits  int
	at       time.Time
	refunded time.Time
}

// botGeneration is a generated image generation, for the ledger.
type botGeneration struct {
	id     rowID
	cost   int
	failed bool
	at     time.Time
	done   time.Time
}

// bot generates one person's rows in every bot_db table.
func (g *gen) bot() {
	first, last := pick(g.r, botFirstNames), pick(g.r, botLastNames)
	g.p.TelegramID = tgID(g.idx)
	if g.chance(0.9) {
		g.p.Username = usernameOf(first.latin, last.latin, g.idx)
	}
	lang := first.lang
	if g.coin(0.2) {
		lang = pick(g.r, []string{"uz", "ru", "en"})
	}
	gens := g.botGenerations(lang)
	pays := g.botPayments()
	g.botReferral()
	balance, lastSeen := g.botLedger(gens, pays)
	g.botOptout()
	g.botRequestLogs()
	var lastName any
	if g.chance(0.7) {
		lastName = last.display
	}
	blocked := !g.first && g.coin(0.03)
	g.add("tg_users", g.p.TelegramID, orNil(g.p.Username), first.display, lastName, lang, balance, blocked, g.join, lastSeen)
}

func (g *gen) botGenerations(lang string) []botGeneration {
	n := g.count(g.opt.Generations)
	out := make([]botGeneration, 0, n)
	for k := range n {
		m := pick(g.r, botModels)
		bg := botGeneration{id: uuidFor(kTgGeneration, g.idx, k), cost: m.credits, at: g.between(g.join, g.now)}
		refs := 0
		if g.chance(0.5) {
			refs = 1 + g.r.IntN(2)
		}
		fileIDs, urls := make([]string, refs), make([]string, refs)
		for f := range refs {
			fileIDs[f] = "AgACAgIAAxkBAAI" + randString(g.r, base64URL, 56)
			urls[f] = fmt.Sprintf("https://storage.bananapics.app/refs/%d/%s.jpg", g.p.TelegramID, randString(g.r, hexDigits, 24))
		}
		requestID := hexID(kWavespeed, g.idx, k)
		status, errText, result := "completed", any(nil), any(nil)
		switch u := g.r.Float64(); {
		case (g.first && k == 1) || (!g.first && u < 0.1):
			status, errText, bg.failed = "failed", pick(g.r, botErrors), true
		case !g.first && u < 0.13 && g.now.Sub(bg.at) < time.Hour:
			status = "processing"
		default:
			result = "https://d1q70pf5vjeyhc.cloudfront.net/predictions/" + requestID + "/1.jpeg"
		}
		var completed any
		if status != "processing" {
			bg.done = g.within(bg.at, 90*time.Second)
			completed = bg.done
		}
		params := mustJSON(map[string]any{"aspect_ratio": pick(g.r, aspectRatios), "num_images": 1, "output_format": "jpeg"})
		g.add("tg_generations", bg.id, g.p.TelegramID, pick(g.r, botPrompts[lang]), m.name, params, fileIDs, urls,
			requestID, result, status, errText, m.credits, bg.at, completed)
		out = append(out, bg)
	}
	return out
}

// botPayments adds the Stars purchases, the first soon after joining.
func (g *gen) botPayments() []starPayment {
	n := g.count(g.opt.StarPayments)
	out := make([]starPayment, 0, n)
	for k := range n {
		sp := starPayment{id: uuidFor(kTgPayment, g.idx, k), at: g.between(g.join, g.now)}
		if k == 0 {
			sp.at = g.within(g.join, day)
		}
		pk := pick(g.r, starPacks)
		sp.credits = pk.credits
		status := "paid"
		if k > 0 && g.coin(0.05) {
			status, sp.refunded = "refunded", g.within(sp.at, 7*day)
		}
		payload := fmt.Sprintf("credits:%d:%d:%d", pk.credits, g.p.TelegramID, sp.at.Unix())
		g.add("tg_payments", sp.id, g.p.TelegramID, "stx"+textID(kStarCharge, g.idx, k, 60), payload, pk.stars, pk.credits, status, timeOrNil(sp.refunded), sp.at)
		out = append(out, sp)
	}
	return out
}

// botReferral adds the referral row of a person who joined through a link;
// it belongs to the referrer too, who is counted once all are generated
// (another worker may be generating them).
func (g *gen) botReferral() {
	j := g.referrer[g.i]
	if j < 0 {
		return
	}
	g.add("tg_referrals", uuidFor(kReferral, g.idx, 0), tgID(j+g.opt.IDOffset), g.p.TelegramID, referrerBonus, g.join)
}

// botLedger writes the credit ledger and returns the final balance and the
// time of the last activity.
func (g *gen) botLedger(gens []botGeneration, pays []starPayment) (int, time.Time) {
	type event struct {
		at         time.Time
		delta      int
		reason     string
		generation any
		payment    any
	}
	events := []event{{at: g.join, delta: startBonus, reason: "start_bonus"}}
	if g.referrer[g.i] >= 0 {
		events = append(events, event{at: g.join, delta: welcomeBonus, reason: "referral_welcome"})
	}
	for _, j := range g.referees[g.i] {
		events = append(events, event{at: g.joins[j].Add(time.Minute), delta: referrerBonus, reason: "referral_bonus"})
	}
	for _, p := range pays {
		events = append(events, event{at: p.at, delta: p.credits, reason: "purchase", payment: p.id})
		if !p.refunded.IsZero() {
			events = append(events, event{at: p.refunded, delta: -p.credits, reason: "refund", payment: p.id})
		}
	}
	for _, bg := range gens {
		events = append(events, event{at: bg.at, delta: -bg.cost, reason: "generation", generation: bg.id})
		if bg.failed {
			events = append(events, event{at: bg.done, delta: bg.cost, reason: "generation_refund", generation: bg.id})
		}
	}
	slices.SortStableFunc(events, func(a, b event) int { return a.at.Compare(b.at) })
	balance := 0
	for n, e := range events {
		balance += e.delta
		g.add("tg_credit_transactions", uuidFor(kTgCreditTx, g.idx, n), g.p.TelegramID, e.delta, balance, e.reason, e.generation, e.payment, e.at)
	}
	return balance, events[len(events)-1].at
}

func (g *gen) botOptout() {
	if !g.chance(optoutRate) {
		return
	}
	g.add("tg_broadcast_optouts", g.p.TelegramID, g.between(g.join, g.now), pick(g.r, optoutSources))
}

func (g *gen) botRequestLogs() {
	for k := range g.count(g.opt.RequestLogs) {
		var errText any
		if g.chance(0.04) && (k == 0 || !g.first) {
			errText = pick(g.r, logErrors)
		}
		g.add("tg_request_logs", uuidFor(kRequestLog, g.idx, k).String(), g.p.TelegramID, pick(g.r, updateTypes),
			20+g.r.IntN(2500), errText, g.between(g.join, g.now))
	}
}

// usernameOf is a Telegram username: Latin letters, digits and underscores.
func usernameOf(first, last string, idx int) string {
	return strings.ToLower(fmt.Sprintf("%s_%s%d", first, last[:1], idx))
}
