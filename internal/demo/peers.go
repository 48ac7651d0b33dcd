package demo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/steward-privacy/steward/connectors/creem/creemfake"
	"github.com/steward-privacy/steward/connectors/stripe/stripefake"
	"github.com/steward-privacy/steward/internal/config"
	"github.com/steward-privacy/steward/internal/notify/resendtest"
	"github.com/steward-privacy/steward/internal/notify/telegramtest"
)

type peersOptions struct {
	DatabaseURL                       string
	StripeAddr, CreemAddr, ResendAddr string
	TelegramAddr                      string
	ReadyFile, MailLog, ChatLog       string
	// OptOutsAddr serves the reference bot's webhook receiver
	// (OptOutReceiver) on the bot schema; OptOutsSecret is the file its
	// signing secret is read from (written by `steward-demo webhook`).
	OptOutsAddr, OptOutsSecret string
	Log                        io.Writer
}

// peerSet are the fakes the peers command serves.
type peerSet struct {
	stripe *stripefake.Server
	creem  *creemfake.Server
	resend *resendStandIn // nil without --resend
	bot    *botStandIn    // nil without --telegram
	optOut *optOutStandIn // nil without --optouts
	linked int
}

func (p *peerSet) close() {
	if p.optOut != nil {
		p.optOut.close()
	}
	if p.bot != nil {
		p.bot.close()
	}
	if p.resend != nil {
		p.resend.close()
	}
	if p.creem != nil {
		p.creem.Close()
	}
	if p.stripe != nil {
		p.stripe.Close()
	}
}

func peersCmd(ctx context.Context, cfg config.Config, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("peers", flag.ContinueOnError)
	dbFlag := databaseFlag(fs)
	var o peersOptions
	fs.StringVar(&o.StripeAddr, "stripe", "127.0.0.1:12111", "address the Stripe fake listens on")
	fs.StringVar(&o.CreemAddr, "creem", "127.0.0.1:12112", "address the Creem fake listens on")
	fs.StringVar(&o.ResendAddr, "resend", "", "address a Resend stand-in listens on (none when empty)")
	fs.StringVar(&o.ReadyFile, "ready-file", "", "file written, with the fakes' URLs, once they serve and the database is linked")
	fs.StringVar(&o.MailLog, "mail-log", "", "file the Resend stand-in appends every email to")
	fs.StringVar(&o.TelegramAddr, "telegram", "", "address a Telegram Bot API stand-in listens on (none when empty)")
	fs.StringVar(&o.ChatLog, "chat-log", "", "file the Telegram stand-in appends every bot message to")
	fs.StringVar(&o.OptOutsAddr, "optouts", "", "address the reference bot's opt-out webhook receiver listens on (none when empty)")
	fs.StringVar(&o.OptOutsSecret, "optouts-secret-file", "", "file the receiver reads the webhook endpoint's signing secret from (written by steward-demo webhook)")
	if helped, err := parseFlags(fs, args, stdout); helped || err != nil {
		return err
	}
	var err error
	if o.DatabaseURL, err = databaseURL(cfg, *dbFlag); err != nil {
		return err
	}
	o.Log = stderr
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	p, err := startPeers(ctx, o)
	if err != nil {
		return err
	}
	defer p.close()
	fmt.Fprintf(stdout, "demo peers: Stripe fake on %s, Creem fake on %s", p.stripe.URL(), p.creem.URL())
	if p.resend != nil {
		fmt.Fprintf(stdout, ", Resend stand-in on %s", p.resend.URL)
	}
	if p.bot != nil {
		fmt.Fprintf(stdout, ", Telegram Bot API stand-in on %s", p.bot.URL)
	}
	if p.optOut != nil {
		fmt.Fprintf(stdout, ", bot opt-out webhook receiver on %s", p.optOut.URL)
	}
	fmt.Fprintf(stdout, "; %d web people linked. Stop with Ctrl-C.\n", p.linked)
	<-ctx.Done()
	fmt.Fprintln(stdout, "demo peers: stopped")
	return nil
}

// startPeers starts the fakes on their addresses, gives every web person
// of the demo database a Stripe customer (card, charge, and their Stripe
// subscription) and a Creem customer (transaction, and their Creem
// subscription), writes the customer ids into app.users, and then writes
// the ready file.
func startPeers(ctx context.Context, o peersOptions) (_ *peerSet, err error) {
	if o.ReadyFile != "" {
		if err := os.Remove(o.ReadyFile); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	pool, err := pgxpool.New(ctx, o.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("connect to the demo database: %w", err)
	}
	defer pool.Close()
	p := &peerSet{}
	defer func() {
		if err != nil {
			p.close()
		}
	}()
	if p.stripe, err = stripefake.NewAt(o.StripeAddr); err != nil {
		return nil, err
	}
	if p.creem, err = creemfake.NewAt(creemKey, o.CreemAddr); err != nil {
		return nil, err
	}
	if o.ResendAddr != "" {
		if p.resend, err = startResend(o.ResendAddr, o.MailLog, o.Log); err != nil {
			return nil, err
		}
	}
	if o.TelegramAddr != "" {
		if p.bot, err = startBot(o.TelegramAddr, o.ChatLog, o.Log); err != nil {
			return nil, err
		}
	}
	if o.OptOutsAddr != "" {
		log := slog.New(slog.NewTextHandler(o.Log, nil))
		if p.optOut, err = startOptOuts(ctx, o.OptOutsAddr, o.DatabaseURL, "bot", o.OptOutsSecret, log); err != nil {
			return nil, err
		}
	}
	if p.linked, err = seedProviders(ctx, pool, p.stripe, p.creem); err != nil {
		return nil, err
	}
	if o.ReadyFile != "" {
		ready := fmt.Sprintf("DEMO_STRIPE_URL=%s\nDEMO_STRIPE_KEY=%s\nDEMO_CREEM_URL=%s\nDEMO_CREEM_KEY=%s\nDEMO_CREEM_WEBHOOK_SECRET=%s\n",
			p.stripe.URL(), stripeKey, p.creem.URL(), creemKey, creemWebhook)
		if p.resend != nil {
			ready += "DEMO_RESEND_URL=" + p.resend.URL + "\n"
		}
		if p.bot != nil {
			ready += "DEMO_TELEGRAM_URL=" + p.bot.URL + "\nDEMO_TELEGRAM_TOKEN=" + telegramToken + "\n"
		}
		if p.optOut != nil {
			ready += "DEMO_OPTOUTS_URL=" + p.optOut.URL + "\n"
		}
		tmp := o.ReadyFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(ready), 0o644); err != nil {
			return nil, err
		}
		if err := os.Rename(tmp, o.ReadyFile); err != nil {
			return nil, err
		}
	}
	return p, nil
}

type appUser struct {
	id, name, email, creemID             string
	line1, city, postal, country         string
	subProvider, subPlan, subStatus, sub string
}

// seedProviders seeds the fakes from app.users and links them; it returns
// how many people it linked.
func seedProviders(ctx context.Context, pool *pgxpool.Pool, sf *stripefake.Server, cf *creemfake.Server) (int, error) {
	// The oldest first: refapp's first person, the richest, gets the first ids.
	rows, err := pool.Query(ctx, `
		SELECT u.id, u.name, u.email, coalesce(u.creem_customer_id, ''),
		       coalesce(bp.address_line1, ''), coalesce(bp.city, ''), coalesce(bp.postal_code, ''), coalesce(bp.country, ''),
		       coalesce(s.provider, ''), coalesce(s.plan, ''), coalesce(s.status, ''), coalesce(s.provider_subscription_id, '')
		FROM app.users u
		LEFT JOIN LATERAL (SELECT * FROM app.billing_profiles b WHERE b.user_id = u.id ORDER BY b.created_at LIMIT 1) bp ON true
		LEFT JOIN LATERAL (SELECT * FROM app.subscriptions x WHERE x.user_id = u.id ORDER BY x.created_at DESC LIMIT 1) s ON true
		WHERE u.email LIKE '%@%'
		ORDER BY u.created_at, u.id`)
	if err != nil {
		return 0, fmt.Errorf("read demo users: %w", err)
	}
	users, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (appUser, error) {
		var u appUser
		err := r.Scan(&u.id, &u.name, &u.email, &u.creemID, &u.line1, &u.city, &u.postal, &u.country,
			&u.subProvider, &u.subPlan, &u.subStatus, &u.sub)
		return u, err
	})
	if err != nil {
		return 0, fmt.Errorf("read demo users: %w", err)
	}
	brands := []stripefake.Card{{Brand: "visa", Last4: "4242"}, {Brand: "mastercard", Last4: "4444"}, {Brand: "amex", Last4: "8431"}}
	ids, stripeIDs, creemIDs := make([]string, len(users)), make([]string, len(users)), make([]string, len(users))
	var stripeSubs, stripeSubIDs []string
	for i, u := range users {
		addr := &stripefake.Address{Line1: u.line1, City: u.city, PostalCode: u.postal, Country: u.country}
		if u.line1 == "" {
			addr = &stripefake.Address{Line1: fmt.Sprintf("%d Demo Street", 1+i%200), City: "Berlin", PostalCode: "10115", Country: "DE"}
		}
		cus := sf.AddCustomer(stripefake.Customer{Email: u.email, Name: u.name, Address: addr, Metadata: map[string]string{"user_id": u.id}})
		c := brands[i%len(brands)]
		c.ExpMonth, c.ExpYear, c.Country = 1+i%12, 2027+i%4, addr.Country
		bd := stripefake.BillingDetails{Name: u.name, Email: u.email, Address: addr}
		pm := sf.AddPaymentMethod(stripefake.PaymentMethod{Customer: cus, Card: c, BillingDetails: bd})
		sf.AddCharge(stripefake.Charge{Customer: cus, PaymentMethod: pm, Amount: 999 + int64(i%4)*1000, Currency: "eur",
			ReceiptEmail: u.email, BillingDetails: bd, Card: c})
		if u.subProvider == "stripe" {
			sub := sf.AddSubscription(stripefake.Subscription{Customer: cus, Status: u.subStatus, DefaultPaymentMethod: pm,
				Prices: []string{"price_demo_" + slug(u.subPlan)}})
			stripeSubs, stripeSubIDs = append(stripeSubs, u.sub), append(stripeSubIDs, sub)
		}

		ccid := u.creemID
		if ccid == "" {
			h := sha256.Sum256([]byte("creem:" + u.id))
			ccid = "cust_" + hex.EncodeToString(h[:])[:22]
		}
		country := u.country
		if country == "" {
			country = addr.Country
		}
		cf.AddCustomer(creemfake.Customer{ID: ccid, Email: u.email, Name: u.name, Country: country})
		var csub string
		if u.subProvider == "creem" {
			csub = cf.AddSubscription(creemfake.Subscription{ID: u.sub, Customer: ccid, ProductName: u.subPlan, Status: u.subStatus})
		}
		cf.AddTransaction(creemfake.Transaction{Customer: ccid, Subscription: csub, Amount: 1499 + int64(i%3)*1000, TaxCountry: country})
		ids[i], stripeIDs[i], creemIDs[i] = u.id, cus, ccid
	}

	tx, err := pool.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	// Clear first: the columns are unique, and a new id must not meet an
	// old one of another person on the way.
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`UPDATE app.users SET stripe_customer_id = NULL, creem_customer_id = NULL
			WHERE stripe_customer_id IS NOT NULL OR creem_customer_id IS NOT NULL`, nil},
		{`UPDATE app.users u SET stripe_customer_id = v.s, creem_customer_id = v.c
			FROM unnest($1::text[], $2::text[], $3::text[]) AS v(id, s, c) WHERE u.id = v.id`, []any{ids, stripeIDs, creemIDs}},
		{`UPDATE app.subscriptions s SET provider_subscription_id = v.n
			FROM unnest($1::text[], $2::text[]) AS v(o, n) WHERE s.provider = 'stripe' AND s.provider_subscription_id = v.o`, []any{stripeSubs, stripeSubIDs}},
	} {
		if _, err := tx.Exec(ctx, q.sql, q.args...); err != nil {
			return 0, fmt.Errorf("link provider customers: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("link provider customers: %w", err)
	}
	return len(users), nil
}

func slug(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	return strings.Map(func(r rune) rune {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			return r
		}
		return '_'
	}, s)
}

// resendStandIn is internal/notify/resendtest served on a fixed address
// through a reverse proxy; every email it accepts is printed and appended
// to the mail log, so a demo user can read verification codes.
type resendStandIn struct {
	URL   string
	fake  *resendtest.Server
	srv   *http.Server
	mu    sync.Mutex
	shown int
	log   io.Writer
	file  string
}

func startResend(addr, mailLog string, log io.Writer) (*resendStandIn, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("resend stand-in: listen on %s: %w", addr, err)
	}
	fake := resendtest.NewServer()
	target, err := url.Parse(fake.URL)
	if err != nil {
		_ = l.Close()
		fake.Close()
		return nil, err
	}
	r := &resendStandIn{URL: "http://" + l.Addr().String() + "/", fake: fake, log: log, file: mailLog}
	proxy := httputil.NewSingleHostReverseProxy(target)
	r.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		proxy.ServeHTTP(w, req)
		if req.Method == http.MethodPost && req.URL.Path == "/emails" {
			r.report()
		}
	})}
	go func() { _ = r.srv.Serve(l) }()
	return r, nil
}

// report prints the emails accepted since the last call.
func (r *resendStandIn) report() {
	r.mu.Lock()
	defer r.mu.Unlock()
	emails := r.fake.Emails()
	if len(emails) <= r.shown {
		return
	}
	var b strings.Builder
	for _, e := range emails[r.shown:] {
		fmt.Fprintf(&b, "\n=== demo mail %s  from %s  to %s\n=== subject: %s\n%s\n", time.Now().UTC().Format(time.RFC3339),
			e.From, strings.Join(e.To, ", "), e.Subject, strings.TrimSpace(e.Text))
	}
	r.shown = len(emails)
	if r.log != nil {
		fmt.Fprint(r.log, b.String())
	}
	if r.file != "" {
		if f, err := os.OpenFile(r.file, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600); err == nil {
			_, _ = f.WriteString(b.String())
			_ = f.Close()
		}
	}
}

func (r *resendStandIn) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = r.srv.Shutdown(ctx)
	r.fake.Close()
}

// botStandIn is internal/notify/telegramtest served on a fixed address
// through a reverse proxy; every message the bot sends is printed and
// appended to the chat log, so a demo user sees what a person who asked
// through the bot was told.
type botStandIn struct {
	URL  string
	fake *telegramtest.Server
	srv  *http.Server
	mu   sync.Mutex
	log  io.Writer
	file string
}

func startBot(addr, chatLog string, log io.Writer) (*botStandIn, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("telegram stand-in: listen on %s: %w", addr, err)
	}
	fake := telegramtest.NewServer(telegramToken)
	target, err := url.Parse(fake.URL)
	if err != nil {
		_ = l.Close()
		fake.Close()
		return nil, err
	}
	b := &botStandIn{URL: "http://" + l.Addr().String(), fake: fake, log: log, file: chatLog}
	fake.OnSend(b.report)
	b.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: httputil.NewSingleHostReverseProxy(target)}
	go func() { _ = b.srv.Serve(l) }()
	return b, nil
}

// report prints one message the bot sent: what the person sees, and where
// its links lead.
func (b *botStandIn) report(m telegramtest.Message) {
	var s strings.Builder
	fmt.Fprintf(&s, "\n=== demo telegram %s  bot message to chat %d\n%s\n", time.Now().UTC().Format(time.RFC3339), m.ChatID, strings.TrimSpace(m.Text))
	for _, l := range m.Links() {
		fmt.Fprintf(&s, "  link: %s\n", l)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.log != nil {
		fmt.Fprint(b.log, s.String())
	}
	if b.file != "" {
		if f, err := os.OpenFile(b.file, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600); err == nil {
			_, _ = f.WriteString(s.String())
			_ = f.Close()
		}
	}
}

func (b *botStandIn) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = b.srv.Shutdown(ctx)
	b.fake.Close()
}
