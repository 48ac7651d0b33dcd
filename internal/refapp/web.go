package refapp

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

const day = 24 * time.Hour

// Shares of web people with an optional record.
const (
	disputeRate = 0.04
	bannedRate  = 0.01
)

// webPerson is what the web tables of one person share.
type webPerson struct {
	first, last, name string
	country           country
	ua                string // their usual browser
	ip                netip.Addr
	visitorIDs        []string
	// From the billing profile, printed on every invoice.
	billingName, address, vatID string
}

// payment is a generated payment, for the invoices, grants, ledger and
// disputes that follow from it.
type payment struct {
	id                 rowID
	provider, currency string
	status             string
	amount             int
	pack               pack
	subscription       bool
	at                 time.Time
}

// job is a generated generation job, for its assets and the ledger.
type job struct {
	id     rowID
	cost   int
	failed bool
	at     time.Time
	done   time.Time
}

// web generates one person's rows in every app_db table.
func (g *gen) web() {
	w := &webPerson{first: pick(g.r, firstNames), last: pick(g.r, lastNames), country: pick(g.r, countries), ua: pick(g.r, userAgents), ip: g.ip()}
	w.name = w.first + " " + w.last
	g.webUser(w)
	g.webSessions(w)
	g.webVerification()
	g.webImpersonation()
	g.webRiskFlag()
	g.webVisitors(w)
	g.webQuotas(w)
	g.webBillingProfile(w)
	sub := g.webSubscription()
	payments := g.webPayments(w, sub)
	g.webInvoices(w, payments)
	g.webDispute(payments)
	jobs := g.webJobs(w)
	g.webCredits(payments, jobs)
	g.webMigration()
	g.webSupport()
	g.webNewsletter()
	g.webSurveys()
}

func (g *gen) webUser(w *webPerson) {
	p := g.p
	p.UserID = textID(kUser, g.idx, 0, 32)
	p.Email = fmt.Sprintf("%s.%s.%05d@%s", strings.ToLower(w.first), strings.ToLower(w.last), g.idx, pick(g.r, emailDomains))
	// Stripe for most, Creem (merchant of record) for some, both for a few;
	// the first person has both.
	switch u := g.r.Float64(); {
	case g.first || u >= 0.8:
		p.StripeCustomerID, p.CreemCustomerID = "cus_"+textID(kStripeCustomer, g.idx, 0, 14), "cust_"+textID(kCreemCustomer, g.idx, 0, 22)
	case u < 0.55:
		p.StripeCustomerID = "cus_" + textID(kStripeCustomer, g.idx, 0, 14)
	default:
		p.CreemCustomerID = "cust_" + textID(kCreemCustomer, g.idx, 0, 22)
	}
	lang := w.country.lang
	if g.coin(0.2) {
		lang = pick(g.r, webLanguages)
	}
	password := g.webAccounts()
	// The avatar comes from the OAuth provider's profile.
	var image any
	switch {
	case p.OAuthProvider == "google" && g.chance(0.8):
		image = "https://lh3.googleusercontent.com/a/ACg8oc" + randString(g.r, base64URL, 40) + "=s96-c"
	case p.OAuthProvider == "github":
		image = "https://avatars.githubusercontent.com/u/" + p.OAuthAccountID + "?v=4"
	}
	banned, banReason := !g.first && g.coin(bannedRate), any(nil)
	if banned {
		banReason = pick(g.r, banReasons)
	}
	g.add("users", p.UserID, w.name, p.Email, !password || g.chance(0.9), image, lang,
		orNil(p.StripeCustomerID), orNil(p.CreemCustomerID), "user", banned, banReason, g.join, g.within(g.join, 400*day))
}

// webAccounts adds the sign-in methods: an OAuth account, a password, or
// both (the first person has a password and Google). It reports whether
// there is a password.
func (g *gen) webAccounts() bool {
	p := g.p
	switch u := g.r.Float64(); {
	case g.first || u < 0.65:
		p.OAuthProvider = "google"
		p.OAuthAccountID = fmt.Sprintf("1%011d%09d", g.idx, mix64(key(kGoogleSub, g.idx, 0))%1e9)
	case u < 0.8:
		p.OAuthProvider = "github"
		p.OAuthAccountID = fmt.Sprint(1_000_000 + g.idx*31 + int(mix64(key(kGitHubID, g.idx, 0))%31))
	}
	password := p.OAuthProvider == "" || g.chance(0.4)
	if password {
		// Better Auth's scrypt hash: hex salt, colon, hex key.
		hash := randString(g.r, hexDigits, 32) + ":" + randString(g.r, hexDigits, 128)
		g.add("accounts", textID(kAccount, g.idx, 0, 32), p.UserID, "credential", p.UserID, nil, nil, nil, hash, nil, g.join, g.within(g.join, 300*day))
	}
	switch p.OAuthProvider {
	case "google":
		jwt := "eyJhbGciOiJSUzI1NiIsImtpZCI6IjU2MzJ" + randString(g.r, base64URL, 20) + "." + randString(g.r, base64URL, 180) + "." + randString(g.r, base64URL, 86)
		g.add("accounts", textID(kAccount, g.idx, 1, 32), p.UserID, "google", p.OAuthAccountID,
			"ya29.a0"+randString(g.r, base64URL, 120), "1//0"+randString(g.r, base64URL, 98), jwt, nil, "openid,email,profile", g.join, g.within(g.join, 300*day))
	case "github":
		g.add("accounts", textID(kAccount, g.idx, 1, 32), p.UserID, "github", p.OAuthAccountID,
			"gho_"+randString(g.r, base62, 36), nil, nil, nil, "read:user,user:email", g.join, g.within(g.join, 300*day))
	}
	return password
}

func (g *gen) webSessions(w *webPerson) {
	for k := range g.count(g.opt.Sessions) {
		created := g.between(g.join, g.now)
		ip, ua := w.ip, w.ua
		if g.coin(0.3) {
			ip, ua = g.ip(), pick(g.r, userAgents)
		}
		g.add("sessions", textID(kSession, g.idx, k, 32), g.p.UserID, textID(kSessionToken, g.idx, k, 32),
			ip.String(), ua, nil, created.Add(7*day), created, g.within(created, 7*day))
	}
}

// webImpersonation adds a staff impersonation: the audit log entry and the
// session it opened (Better Auth marks it with impersonated_by).
func (g *gen) webImpersonation() {
	admin := pick(g.r, staff)
	start := g.between(g.join, g.now)
	end := g.within(start, 45*time.Minute)
	officeIP := netip.AddrFrom4([4]byte{185, 199, 110, byte(10 + g.r.IntN(20))})
	g.add("impersonation_logs", uuidFor(kImpersonation, g.idx, 0), g.p.UserID, admin.id, pick(g.r, impersonationReasons), officeIP, start, end)
	g.add("sessions", textID(kImpersonationSession, g.idx, 0, 32), g.p.UserID, textID(kImpersonationToken, g.idx, 0, 32),
		officeIP.String(), userAgents[0], admin.id, start.Add(time.Hour), start, end)
}

func (g *gen) webVerification() {
	created := g.between(g.join, g.now)
	g.add("verifications", textID(kVerification, g.idx, 0, 32), g.p.Email, randString(g.r, base62, 32), created.Add(time.Hour), created)
}

func (g *gen) webRiskFlag() {
	rk := pick(g.r, riskKinds)
	created := g.between(g.join, g.now)
	var resolved any
	if g.chance(0.7) {
		resolved = g.within(created, 3*day)
	}
	score := float64(g.r.IntN(10000)) / 100
	g.add("risk_flags", uuidFor(kRiskFlag, g.idx, 0), g.p.UserID, rk.kind, rk.reason, score, g.ip(), created, resolved)
}

// webVisitors adds the visitor ids: the first is from before sign-up (the
// anonymous trial), later ones from new devices.
func (g *gen) webVisitors(w *webPerson) {
	for k := range g.count(g.opt.Visitors) {
		id := uuidFor(kVisitor, g.idx, k).String()
		first := g.between(g.join, g.now)
		if k == 0 {
			first = g.join.Add(-time.Duration(1+g.r.IntN(14*24)) * time.Hour)
			g.p.VisitorID = id
		}
		w.visitorIDs = append(w.visitorIDs, id)
		g.add("visitors", id, g.p.UserID, w.ip.String(), w.ua, first, g.between(maxTime(first, g.join), g.now))
	}
}

// webQuotas adds monthly usage rows for the latest months of the account;
// the earliest also carries the visitor id the trial was counted under.
func (g *gen) webQuotas(w *webPerson) {
	months := monthsBetween(g.join, g.now)
	n := min(g.count(g.opt.QuotaPeriods), len(months))
	for k, start := range months[len(months)-n:] {
		var visitor any
		if k == 0 {
			visitor = w.visitorIDs[0]
		}
		end := minTime(start.AddDate(0, 1, 0), g.now)
		g.add("usage_quotas", uuidFor(kQuota, g.idx, k), g.p.UserID, visitor, start, g.r.IntN(200), g.r.IntN(500), g.between(maxTime(start, g.join), end))
	}
}

// monthsBetween is the first instant of every month from a's to b's.
func monthsBetween(a, b time.Time) []time.Time {
	var out []time.Time
	for m := time.Date(a.Year(), a.Month(), 1, 0, 0, 0, 0, time.UTC); !m.After(b); m = m.AddDate(0, 1, 0) {
		out = append(out, m)
	}
	return out
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (g *gen) webBillingProfile(w *webPerson) {
	c := w.country
	w.billingName = w.name
	var company string
	if g.chance(0.2) {
		company = w.last + " Studio " + pick(g.r, []string{"GmbH", "SARL", "Ltd", "LLC", "B.V."})
		w.billingName = company
		w.vatID = fmt.Sprintf("%s%09d", c.code, g.r.IntN(1e9))
	}
	line1, line2 := fmt.Sprintf("%s %d", pick(g.r, c.streets), 1+g.r.IntN(180)), ""
	if g.chance(0.3) {
		line2 = fmt.Sprintf("Apt %d%c", 1+g.r.IntN(40), 'A'+rune(g.r.IntN(6)))
	}
	w.address = strings.Join(slices.DeleteFunc([]string{line1, line2, c.postal + " " + c.city, c.code}, func(s string) bool { return s == "" }), ", ")
	created := g.within(g.join, 30*day)
	g.add("billing_profiles", uuidFor(kBillingProfile, g.idx, 0), g.p.UserID, w.name, orNil(company),
		line1, orNil(line2), c.city, c.postal, c.code, orNil(w.vatID), created, g.within(created, 300*day))
}

// provider picks the payment provider of a payment from the customer ids
// the person has; the first person alternates.
func (g *gen) provider(k int) string {
	switch {
	case g.p.StripeCustomerID == "":
		return "creem"
	case g.p.CreemCustomerID == "":
		return "stripe"
	case g.first:
		return []string{"stripe", "creem"}[k%2]
	}
	return pick(g.r, []string{"stripe", "creem"})
}

// webPayments adds the payments, oldest first: credit packs bought at
// checkout and renewals of the subscription. The first, soon after
// sign-up, always went through; the first person's last was refunded.
func (g *gen) webPayments(w *webPerson, sub subscription) []payment {
	n := g.count(g.opt.Payments)
	times := make([]time.Time, n)
	times[0] = g.within(g.join, 3*day)
	for k := 1; k < n; k++ {
		times[k] = g.between(times[0], g.now)
	}
	slices.SortFunc(times[1:], func(a, b time.Time) int { return a.Compare(b) })
	out := make([]payment, n)
	for k := range n {
		p := payment{id: uuidFor(kPayment, g.idx, k), currency: w.country.currency, status: g.paymentStatus(k, n), at: times[k]}
		p.subscription = k > 0 && ((g.first && k == 1) || (!g.first && g.coin(0.5)))
		if p.subscription {
			p.pack, p.provider = sub.plan, sub.provider
		} else {
			p.pack, p.provider = pick(g.r, creditPacks), g.provider(k)
		}
		p.amount = p.pack.price
		out[k] = p
		g.addPayment(k, p)
	}
	return out
}

// paymentStatus is the outcome of payment k of n.
func (g *gen) paymentStatus(k, n int) string {
	switch u := g.r.Float64(); {
	case k == 0:
	case g.first && k == n-1, !g.first && u < 0.07:
		return "refunded"
	case !g.first && u < 0.15:
		return "failed"
	}
	return "succeeded"
}

func (g *gen) addPayment(k int, p payment) {
	var providerID string
	var checkout any
	if p.provider == "stripe" {
		providerID = "pi_3" + textID(kProviderPayment, g.idx, k, 23)
		if !p.subscription {
			checkout = "cs_live_a1" + randString(g.r, base62, 56)
		}
	} else {
		providerID = "tran_" + textID(kProviderPayment, g.idx, k, 22)
		if !p.subscription {
			checkout = "ch_" + randString(g.r, base62, 22)
		}
	}
	refunded := 0
	if p.status == "refunded" {
		refunded = p.amount
	}
	g.add("payments", p.id, g.p.UserID, p.provider, providerID, checkout, p.amount, p.currency, p.status, refunded, p.at)
}

// subscription is the plan a person subscribes to and through whom.
type subscription struct {
	plan     pack
	provider string
}

// webSubscription adds the subscription (the first person's through
// Creem, so they pay through both providers).
func (g *gen) webSubscription() subscription {
	sub := subscription{plan: pick(g.r, plans), provider: g.provider(1)}
	created := g.within(g.join, 60*day)
	status := "active"
	var canceled any
	switch u := g.r.Float64(); {
	case !g.first && u < 0.25:
		status, canceled = "canceled", g.between(created, g.now)
	case !g.first && u < 0.35:
		status = "past_due"
	}
	prefix := "sub_1"
	if sub.provider == "creem" {
		prefix = "sub_"
	}
	g.add("subscriptions", uuidFor(kSubscription, g.idx, 0), g.p.UserID, sub.provider, prefix+textID(kProviderSubscription, g.idx, 0, 24),
		sub.plan.name, status, g.now.Add(time.Duration(1+g.r.IntN(30))*day), canceled, created)
	return sub
}

// webInvoices adds an invoice for every payment that went through, with the
// billing details and the tax of the person's country.
func (g *gen) webInvoices(w *webPerson, payments []payment) {
	c := w.country
	for k, p := range payments {
		if p.status == "failed" {
			continue
		}
		number := fmt.Sprintf("NBP-%06d-%03d", g.idx, k)
		var providerID, pdf string
		if p.provider == "stripe" {
			providerID = "in_1" + textID(kProviderInvoice, g.idx, k, 23)
			pdf = "https://pay.stripe.com/invoice/acct_1NbPro2eZvKYlo2C/live_" + randString(g.r, base62, 40) + "/pdf"
		} else {
			providerID = "inv_" + textID(kProviderInvoice, g.idx, k, 22)
			pdf = "https://creem.io/invoices/" + providerID + ".pdf"
		}
		// Prices include tax.
		tax := p.amount * c.taxBP / (10000 + c.taxBP)
		g.add("invoices", uuidFor(kInvoice, g.idx, k), g.p.UserID, p.id, number, providerID, w.billingName, g.p.Email, w.address, orNil(w.vatID),
			p.amount, tax, p.currency, pdf, p.at.Add(time.Duration(1+g.r.IntN(60))*time.Second))
	}
}

// webDispute adds a chargeback on the first payment for a few people.
func (g *gen) webDispute(payments []payment) {
	if !g.chance(disputeRate) {
		return
	}
	p := payments[0]
	prefix := "dp_1"
	if p.provider == "creem" {
		prefix = "disp_"
	}
	created := g.within(p.at.Add(5*day), 40*day)
	status := pick(g.r, []string{"won", "lost", "needs_response", "under_review"})
	var closed any
	if status == "won" || status == "lost" {
		closed = g.within(created, 30*day)
	}
	evidence := "Customer downloaded " + fmt.Sprint(2+g.r.IntN(40)) + " generated images after the purchase; sign-in IP matches the card country."
	g.add("disputes", uuidFor(kDispute, g.idx, 0), g.p.UserID, p.id, prefix+textID(kProviderDispute, g.idx, 0, 22),
		pick(g.r, disputeReasons), status, p.amount, evidence, created, closed)
}

// webJobs adds the generation jobs and their files. The first person's
// first job ran as a visitor, before sign-up.
func (g *gen) webJobs(w *webPerson) []job {
	n := g.count(g.opt.Jobs)
	out := make([]job, 0, n)
	for k := range n {
		model := pick(g.r, webModels)
		count := 1 + g.r.IntN(4)
		j := job{id: uuidFor(kJob, g.idx, k), cost: count * (1 + slices.Index(webModels, model)%3), at: g.between(g.join, g.now)}
		var visitor any
		if k == 0 && g.chance(0.3) {
			visitor = w.visitorIDs[0]
		}
		status, errText, flags := "succeeded", any(nil), []string{}
		if g.chance(0.15) && (k == 1 || !g.first) {
			status, errText, j.failed = "failed", pick(g.r, jobErrors), true
		}
		if g.chance(0.1) && k == 0 {
			flags = []string{pick(g.r, safetyFlags)}
		}
		runtime := 2000 + g.r.IntN(60000)
		j.done = minTime(j.at.Add(time.Duration(runtime)*time.Millisecond), g.now)
		var negative any
		if g.chance(0.4) {
			negative = pick(g.r, negativePrompts)
		}
		g.add("generation_jobs", j.id, g.p.UserID, visitor, uuidFor(kBatch, g.idx, k/3), pick(g.r, promptSubjects)+", "+pick(g.r, promptStyles), negative,
			[]string{pick(g.r, styleTags), pick(g.r, styleTags)}, g.r.Int64N(1<<31), g.jobParameters(), pick(g.r, []string{"png", "jpeg", "webp"}), count,
			model, "req_"+textID(kProviderRequest, g.idx, k, 24), status, flags, errText, runtime, j.at, j.done)
		g.webAssets(k, j)
		out = append(out, j)
	}
	return out
}

func (g *gen) jobParameters() string {
	params := map[string]any{
		"aspect_ratio": pick(g.r, aspectRatios),
		"resolution":   pick(g.r, []string{"1K", "2K", "4K"}),
		"guidance":     float64(30+g.r.IntN(70)) / 10,
	}
	if g.chance(0.5) {
		params["camera"] = map[string]any{"angle": pick(g.r, []string{"eye_level", "low", "high", "dutch"}), "lens": pick(g.r, []string{"24mm", "35mm", "50mm", "85mm"})}
	}
	if g.chance(0.3) {
		params["character"] = map[string]any{"consistency": true, "reference_strength": float64(g.r.IntN(100)) / 100}
	}
	return mustJSON(params)
}

// assetKinds are the files of a job in the order they appear; a failed job
// has only the files the person uploaded.
var (
	assetKinds       = []string{"output", "thumbnail", "reference", "mask", "archive"}
	failedAssetKinds = []string{"reference", "mask"}
)

// webAssets adds a job's files, stored under the object_store prefixes the
// data map names (uploads/, masks/, generated/ + user id).
func (g *gen) webAssets(k int, j job) {
	kinds := assetKinds
	if j.failed {
		kinds = failedAssetKinds
	}
	for a := range g.count(g.opt.AssetsPerJob) {
		kind := kinds[a%len(kinds)]
		id := uuidFor(kAsset, g.idx, k*maxPerPerson+a)
		var objectKey string
		switch kind {
		case "reference":
			objectKey = fmt.Sprintf("uploads/%s/%s.jpg", g.p.UserID, id)
		case "mask":
			objectKey = fmt.Sprintf("masks/%s/%s.png", g.p.UserID, id)
		case "archive":
			objectKey = fmt.Sprintf("generated/%s/%s/images.zip", g.p.UserID, j.id)
		default:
			objectKey = fmt.Sprintf("generated/%s/%s/%s.png", g.p.UserID, j.id, id)
		}
		url := "https://cdn.nano-bananapro.com/" + objectKey + "?X-Amz-Expires=3600&X-Amz-Signature=" + randString(g.r, hexDigits, 64)
		width := pick(g.r, []int{1024, 1536, 2048})
		g.add("job_assets", id, j.id, kind, objectKey, url, width, width*3/4, 40_000+g.r.Int64N(6_000_000), j.done)
	}
}

// grant is a credit grant while the ledger is replayed.
type grant struct {
	id        rowID
	payment   any // rowID or nil
	pack      any
	source    string
	credits   int
	remaining int
	expires   time.Time // zero: never
	at        time.Time
}

// usable reports whether the grant's credits can be spent at t.
func (gr *grant) usable(t time.Time) bool {
	return gr.remaining > 0 && !gr.at.After(t) && (gr.expires.IsZero() || t.Before(gr.expires))
}

// ledgerEvent is one credit movement before the ledger is written.
type ledgerEvent struct {
	at      time.Time
	delta   int
	reason  string
	grant   int  // index into grants, -1 to take from the oldest grant with credits left
	expire  bool // the grant's remaining credits lapse (delta is decided on replay)
	job     any
	payment any
}

// webCredits adds the grants, the ledger that spends them oldest first, and
// the balance the ledger ends at, so the three agree as in the real app.
func (g *gen) webCredits(payments []payment, jobs []job) {
	bonus := &grant{source: "signup_bonus", credits: 25, expires: g.join.Add(30 * day), at: g.join}
	grants := []*grant{bonus}
	events := []ledgerEvent{{at: g.join, delta: bonus.credits, reason: "signup_bonus", grant: 0}}
	if bonus.expires.Before(g.now) {
		events = append(events, ledgerEvent{at: bonus.expires, reason: "expired", grant: 0, expire: true})
	}
	for _, p := range payments {
		if p.status == "failed" {
			continue
		}
		source := "purchase"
		if p.subscription {
			source = "subscription"
		}
		grants = append(grants, &grant{payment: p.id, pack: p.pack.name, source: source, credits: p.pack.credits, at: p.at})
		events = append(events, ledgerEvent{at: p.at, delta: p.pack.credits, reason: source, grant: len(grants) - 1, payment: p.id})
		if p.status == "refunded" {
			events = append(events, ledgerEvent{at: g.within(p.at, 14*day), delta: -p.pack.credits, reason: "payment_refund", grant: len(grants) - 1, payment: p.id})
		}
	}
	for _, j := range jobs {
		events = append(events, ledgerEvent{at: j.at, delta: -j.cost, reason: "generation", grant: -1, job: j.id})
		if j.failed {
			events = append(events, ledgerEvent{at: j.done, delta: j.cost, reason: "failed_job_refund", grant: -1, job: j.id})
		}
	}
	slices.SortStableFunc(events, func(a, b ledgerEvent) int { return a.at.Compare(b.at) })
	for n, gr := range grants {
		gr.id = uuidFor(kGrant, g.idx, n)
	}
	balance, last := g.webLedger(grants, events)
	for _, gr := range grants {
		g.add("credit_grants", gr.id, g.p.UserID, gr.payment, gr.pack, gr.credits, gr.remaining, gr.source, timeOrNil(gr.expires), gr.at)
	}
	g.add("credit_balances", g.p.UserID, balance, last)
}

// webLedger writes the ledger rows, tracking what is left of each grant,
// and returns the final balance and when it last changed.
func (g *gen) webLedger(grants []*grant, events []ledgerEvent) (balance int, last time.Time) {
	rows := 0
	lastUsed := 0 // the grant a refund of a job's credits goes back to
	for _, e := range events {
		gi := e.grant
		switch {
		case e.expire:
			e.delta = -grants[gi].remaining
			grants[gi].remaining = 0
		case gi >= 0:
			grants[gi].remaining = max(0, grants[gi].remaining+e.delta)
		case e.delta < 0:
			gi = spend(grants, e.at, -e.delta)
			lastUsed = gi
		default:
			gi = lastUsed
			grants[gi].remaining += e.delta
		}
		if e.delta == 0 {
			continue // nothing lapsed
		}
		balance += e.delta
		g.add("credit_transactions", uuidFor(kCreditTx, g.idx, rows), g.p.UserID, e.delta, balance, e.reason, grants[gi].id, e.job, e.payment, e.at)
		rows++
		last = e.at
	}
	return balance, last
}

// spend takes cost credits from the oldest grants usable at time at, and
// returns the grant it took from first (the newest grant when none has
// credits left: the balance goes negative, as a racing debit can).
func spend(grants []*grant, at time.Time, cost int) int {
	first := -1
	for i, gr := range grants {
		if cost == 0 {
			break
		}
		if !gr.usable(at) {
			continue
		}
		if first < 0 {
			first = i
		}
		take := min(cost, gr.remaining)
		gr.remaining -= take
		cost -= take
	}
	if first < 0 {
		first = 0
		for i, gr := range grants {
			if !gr.at.After(at) {
				first = i
			}
		}
	}
	return first
}

func (g *gen) webMigration() {
	details := mustJSON(map[string]any{
		"legacy_plan":        pick(g.r, []string{"free", "early_bird", "pro"}),
		"creations_migrated": g.r.IntN(300),
		"email_verified":     g.coin(0.8),
	})
	g.add("migration_records", uuidFor(kMigration, g.idx, 0), g.p.UserID, "nbp1_"+textID(kMigration, g.idx, 1, 16),
		pick(g.r, migrationSources), details, g.within(g.join, 7*day))
}

// webSupport adds support tickets and their threads, customer first, then
// staff and customer in turn.
func (g *gen) webSupport() {
	for t := range g.count(g.opt.Tickets) {
		topic := pick(g.r, ticketTopics)
		id := uuidFor(kTicket, g.idx, t)
		created := g.between(g.join, g.now)
		status, resolved := "open", any(nil)
		if u := g.r.Float64(); u < 0.6 || (g.first && t == 0) {
			status, resolved = "resolved", g.within(created, 5*day)
		} else if u < 0.8 {
			status = "pending"
		}
		g.add("support_tickets", id, g.p.UserID, g.p.Email, topic.subject, topic.body, status, created, resolved)
		at := created
		for m := range g.count(g.opt.MessagesPerTicket) {
			author, body := "customer", topic.body
			if m%2 == 1 {
				s := pick(g.r, staff)
				author, body = "staff:"+s.name, pick(g.r, staffReplies)
			} else if m > 0 {
				body = pick(g.r, customerReplies)
			}
			at = g.within(at, 12*time.Hour)
			g.add("support_messages", uuidFor(kMessage, g.idx, t*maxPerPerson+m), id, author, body, at)
		}
	}
}

func (g *gen) webNewsletter() {
	subscribed := g.chance(0.55)
	var consented, unsubscribed any
	topics := []string{}
	switch {
	case subscribed:
		consented = g.within(g.join, 2*day)
		topics = []string{newsletterTopics[0], pick(g.r, newsletterTopics[1:])}
	case g.coin(0.5):
		c := g.within(g.join, 2*day)
		consented, unsubscribed = c, g.between(c, g.now)
	}
	g.add("newsletter_preferences", uuidFor(kNewsletter, g.idx, 0), g.p.UserID, g.p.Email, subscribed, topics,
		pick(g.r, newsletterSources), consented, unsubscribed, g.between(g.join, g.now))
}

func (g *gen) webSurveys() {
	for k := range g.count(g.opt.Surveys) {
		answers := mustJSON(map[string]any{
			"nps":              g.r.IntN(11),
			"favorite_feature": pick(g.r, features),
			"comment":          pick(g.r, surveyComments),
		})
		g.add("survey_responses", uuidFor(kSurvey, g.idx, k), g.p.UserID, surveys[(k+g.idx)%len(surveys)], answers, g.between(g.join, g.now))
	}
}

// ip is a random public-looking IPv4 address (the first octets of common
// residential and mobile ranges), or now and then an IPv6 one.
func (g *gen) ip() netip.Addr {
	if g.coin(0.15) {
		var a [16]byte
		a[0], a[1] = 0x2a, byte(0x00+g.r.IntN(16))
		for i := 2; i < 16; i++ {
			a[i] = byte(g.r.IntN(256))
		}
		return netip.AddrFrom16(a)
	}
	first := pick(g.r, []byte{31, 37, 46, 62, 77, 78, 79, 81, 84, 89, 91, 93, 95, 109, 176, 178, 185, 188, 193, 213, 217})
	return netip.AddrFrom4([4]byte{first, byte(g.r.IntN(256)), byte(g.r.IntN(256)), byte(1 + g.r.IntN(254))})
}

// mustJSON encodes generated values, which always encode; maps encode with
// sorted keys, so the output is deterministic.
func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("refapp: encode %T: %v", v, err))
	}
	return string(b)
}
