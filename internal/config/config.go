// Package config reads Steward's configuration from the environment. Every
// variable is listed in docs/configuration.md; a bad value is an
// error naming the variable, never a silent default.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/robfig/cron/v3"

	"github.com/steward-privacy/steward/internal/challengelogin"
	"github.com/steward-privacy/steward/internal/policy"
)

// Config is the whole service configuration.
type Config struct {
	DatabaseURL string
	// DatabaseSessionURL is a direct (unpooled) URL for the work that needs
	// a real session when DATABASE_URL names a transaction pooler; empty
	// when DATABASE_URL is direct. See SessionURL and Pooled.
	DatabaseSessionURL string
	// DatabaseMaxConns caps this replica's pool on DATABASE_URL
	// (STEWARD_DATABASE_MAX_CONNS; default 20).
	DatabaseMaxConns   int
	Addr               string
	PolicyDir          string
	PolicyBundle       string
	PolicyOverlay      string
	PolicyWatch        time.Duration
	IdentityKeys       string
	ReceiptSigningKey  string
	ReceiptRetiredKeys []string
	ResendAPIKey       string
	ResendBaseURL      string
	ResendAudienceID   string
	LogLevel           slog.Level
	BodyLimit          int
	ReadTimeout        time.Duration
	WriteTimeout       time.Duration
	IdleTimeout        time.Duration
	ShutdownTimeout    time.Duration
	CacheSubjects      int
	OutboxPoll         time.Duration

	AuditSigningKey         string
	AuditRetiredKeys        []string
	AuditCheckpointEvery    int
	AuditCheckpointInterval time.Duration
	AuditCheckpointBucket   string

	EmailFrom  string
	StaffEmail string
	StatusURL  string
	StaffURL   string
	// StaffOIDC is the console's single sign-on provider; nil when
	// STEWARD_STAFF_OIDC_ISSUER is empty. Its ClientSecret is never logged.
	StaffOIDC        *StaffOIDC
	TelegramBotToken string
	TelegramAPIURL   string
	// ChallengeLoginKeys are the products' shared secrets for
	// challenge-login tokens (STEWARD_CHALLENGE_LOGIN_KEYS,
	// "product:base64secret,..."; never logged); ChallengeLoginURLs where
	// each product's signed-in page starts a challenge login
	// (STEWARD_CHALLENGE_LOGIN_URLS, "product:https://...,..."), offered
	// on the privacy center's second-factor page. InvoiceMaxAge is how
	// recent a "recent invoice" is (STEWARD_INVOICE_MAX_AGE; 2160h).
	ChallengeLoginKeys challengelogin.Keys
	ChallengeLoginURLs map[string]string
	InvoiceMaxAge      time.Duration
	// WebhooksAllowLoopback accepts outbound webhook endpoints on loopback
	// (http:// too) and lets the sender dial them: tests and the demo only.
	WebhooksAllowLoopback bool
	RequestWorkers        int
	ReminderInterval      time.Duration
	// JobLease and JobTimeout tune the durable jobs (internal/jobs): how
	// soon a dead replica's jobs are taken over, and how long one job may
	// run.
	JobLease   time.Duration
	JobTimeout time.Duration
	// RetentionSchedule is the cron expression (five fields, UTC) of the
	// retention sweeps; "off" turns scheduled sweeps off (runs through the
	// API and CLI still work).
	RetentionSchedule string
	RetentionWorkers  int
	RetentionPace     float64
	ConnectorsFile    string
	FileStore         string
	ExportURL         string
	// PublicURL is where people reach Steward: the privacy center, the
	// status and download links in emails and bot messages.
	PublicURL string
	// TrustedProxies are the addresses (IPs or CIDRs) of the proxies in
	// front of Steward whose X-Forwarded-For is believed.
	TrustedProxies []string
	// CORSOrigins may call the consent API from browsers with the
	// publishable key for any product, besides the products' own origins.
	CORSOrigins []string
	// GeoHeader is the request header a CDN sets to the visitor's country
	// code; the consent banner's region when the page names none.
	GeoHeader string
	// RateLimitWindow is the period the API's rate limits count over (0:
	// off); RateLimitAddress the requests per window a client address may
	// make without a valid key; RateLimitKeys those a key of each role may
	// make ("*": any other role; 0: unlimited); RateLimitReplicas divides
	// them among replicas; RateLimitBuckets bounds the limiter's memory.
	RateLimitWindow   time.Duration
	RateLimitAddress  int
	RateLimitKeys     map[string]int
	RateLimitReplicas int
	RateLimitBuckets  int
}

// Var documents one environment variable.
type Var struct{ Name, Default, Help string }

// Vars is the documented set, in the order of docs/configuration.md.
var Vars = []Var{
	{"DATABASE_URL", "", "PostgreSQL URL (required). `make run` sets it to the local server."},
	{"STEWARD_DATABASE_SESSION_URL", "", "A direct (unpooled) PostgreSQL URL to the same database, set when `DATABASE_URL` names a transaction pooler (PgBouncer in transaction mode, Neon's `-pooler` endpoint). Migrations, the scheduler's leader lock and the cache-invalidation `LISTEN` use it (2 connections per replica); everything else stays on `DATABASE_URL`, which then runs without named prepared statements, and the job workers poll instead of listening. Neon's pooled host without it is refused. See docs/operations.md, \"Behind a transaction pooler\"."},
	{"STEWARD_DATABASE_MAX_CONNS", "20", "The most connections one replica opens on `DATABASE_URL` (API, job workers, retention; the session URL's 2 are extra). Replicas × this must stay under the server's `max_connections` with room for everything else that connects; PostgreSQL refuses connections past it, and Steward then answers 503 with `Retry-After`. At least the request and retention workers plus 2. A `pool_max_conns` parameter in the URL wins."},
	{"STEWARD_ADDR", "127.0.0.1:8080", "Listen address."},
	{"STEWARD_POLICY_DIR", "(embedded bundle)", "Directory with the Rego policy bundle, to run edited policies without rebuilding."},
	{"STEWARD_POLICY_BUNDLE", "", "An OPA bundle archive (.tar.gz) to load instead of the embedded bundle or STEWARD_POLICY_DIR."},
	{"STEWARD_POLICY_OVERLAY", "", "Directory laid over the embedded bundle: its files (your `data/datamap.yaml`, `data/products.json`, …, or a policy) replace the embedded ones of the same path; the embedded Rego tests are left out, yours run. The way to run Steward on your own data map (docs/own-database.md)."},
	{"STEWARD_POLICY_WATCH", "2s", "How often a directory or archive bundle is checked for changes (0 turns watching off; SIGHUP always reloads)."},
	{"STEWARD_IDENTITY_KEYS", "", "Identity keys, `kid:base64(32 bytes)[,kid:...]`, newest first; a retired key kept only for erased people's lookup hashes is `kid:base64:lookup` (opens nothing); required for serve."},
	{"STEWARD_RECEIPT_SIGNING_KEY", "", "Base64 Ed25519 seed (32 bytes) signing consent receipts; required for serve."},
	{"STEWARD_RECEIPT_RETIRED_KEYS", "", "Comma-separated base64 Ed25519 public keys still published in the JWKS after rotation."},
	{"STEWARD_RESEND_API_KEY", "", "Resend API key; without it the outbox keeps messages until one is set."},
	{"STEWARD_RESEND_BASE_URL", "https://api.resend.com/", "Resend API base URL."},
	{"STEWARD_RESEND_AUDIENCE_ID", "", "Resend audience whose contacts are unsubscribed on marketing withdrawal."},
	{"STEWARD_LOG_LEVEL", "info", "debug, info, warn or error. Access logs are written at info."},
	{"STEWARD_BODY_LIMIT", "1048576", "Largest request body in bytes."},
	{"STEWARD_READ_TIMEOUT", "10s", "HTTP read timeout."},
	{"STEWARD_WRITE_TIMEOUT", "15s", "HTTP write timeout."},
	{"STEWARD_IDLE_TIMEOUT", "60s", "HTTP keep-alive idle timeout."},
	{"STEWARD_SHUTDOWN_TIMEOUT", "30s", "How long in-flight requests may take to finish on SIGTERM."},
	{"STEWARD_CACHE_SUBJECTS", "100000", "Subjects whose consent state is cached in process."},
	{"STEWARD_OUTBOX_POLL", "1s", "How often the outbox worker looks for due messages."},
	{"STEWARD_AUDIT_SIGNING_KEY", "", "Base64 Ed25519 seed (32 bytes) signing audit checkpoints; required for serve."},
	{"STEWARD_AUDIT_RETIRED_KEYS", "", "Comma-separated base64 Ed25519 public keys of earlier audit signing keys, still trusted by verify."},
	{"STEWARD_AUDIT_CHECKPOINT_EVERY", "1000", "A signed checkpoint at least every N audit entries."},
	{"STEWARD_AUDIT_CHECKPOINT_INTERVAL", "5m", "... and at least this often while entries are being added."},
	{"STEWARD_AUDIT_CHECKPOINT_BUCKET", "", "Object-storage URL that also receives every checkpoint (s3://bucket?endpoint=...&region=..., file:///dir)."},
	{"STEWARD_EMAIL_FROM", "", "Sender of privacy-request emails (`Privacy <privacy@example.com>`); with STEWARD_RESEND_API_KEY, required for emails to go out."},
	{"STEWARD_STAFF_EMAIL", "", "Where deadline reminders go (7 days and 1 day before due, and overdue); empty sends none."},
	{"STEWARD_PUBLIC_URL", "", "Where people reach Steward, e.g. `https://privacy.example.com`: the privacy center is at `/privacy/`, and unless set otherwise the status links (STEWARD_STATUS_URL) and download links (STEWARD_EXPORT_URL) in messages point there. `https` makes the center's cookies Secure."},
	{"STEWARD_TRUSTED_PROXIES", "", "Comma-separated IPs or CIDRs of the proxies (load balancer, CDN) in front of Steward: only their `X-Forwarded-For` is believed, so rate limits count the real client. Empty: the peer's address is the client's."},
	{"STEWARD_STATUS_URL", "", "The page where a person checks their request (linked in emails as `?request=<id>`); default: the privacy center's, STEWARD_PUBLIC_URL + `/privacy/status`."},
	{"STEWARD_STAFF_URL", "", "Prefix of the staff console's request page (linked in reminders, followed by the request id); default: the console's, STEWARD_PUBLIC_URL + `/console/requests/`."},
	{"STEWARD_STAFF_OIDC_ISSUER", "", "Staff single sign-on: the OpenID Connect provider's issuer URL (its discovery document is at `<issuer>/.well-known/openid-configuration`). Set, the console's sign-in page offers \"Sign in with SSO\" to accounts whose verified email the provider asserts; the second factor is still asked unless the provider reports one (`amr`). Empty: no single sign-on."},
	{"STEWARD_STAFF_OIDC_CLIENT_ID", "", "Staff single sign-on: the client id Steward is registered under at the provider; required with STEWARD_STAFF_OIDC_ISSUER."},
	{"STEWARD_STAFF_OIDC_CLIENT_SECRET", "", "Staff single sign-on: the client's secret (empty for a public client using PKCE alone). Never logged."},
	{"STEWARD_STAFF_OIDC_REDIRECT_URL", "", "Staff single sign-on: the redirect URL registered at the provider; default: the console's, `<console origin>/console/signin/oidc/callback` (the origin of STEWARD_STAFF_URL, else STEWARD_PUBLIC_URL, else STEWARD_ADDR)."},
	{"STEWARD_TELEGRAM_BOT_TOKEN", "", "The bot's token: verifies Telegram Mini App initData on bot requests, and lets the outbox send people who asked through the bot their acknowledgment, extension, denial and completion (with the download link) as bot messages. Empty refuses initData and tells bot users nothing (a warning is logged at start-up)."},
	{"STEWARD_CHALLENGE_LOGIN_KEYS", "", "Challenge login: each product's shared secret for the short-lived tokens its signed-in backend issues to vouch for the person (product:base64secret, comma-separated, at least 32 bytes each; HS256). Empty: the method is not offered."},
	{"STEWARD_CHALLENGE_LOGIN_URLS", "", "Where each product's signed-in page starts a challenge login for a request (product:https://..., comma-separated; the request id is added as ?request=); the privacy center's second-factor page links to it. A product needs a key too."},
	{"STEWARD_INVOICE_MAX_AGE", "2160h", "How recent an invoice a person names as a second factor must be (recent invoice)."},
	{"STEWARD_TELEGRAM_API_URL", "https://api.telegram.org", "Telegram Bot API base URL (`sendMessage` goes to `<url>/bot<token>/sendMessage`); a local Bot API server, or the demo's stand-in."},
	{"STEWARD_WEBHOOKS_ALLOW_LOOPBACK", "false", "Accept outbound webhook endpoints on loopback addresses (`http://127.0.0.1:…` too) and let the sender reach them: for tests and the demo only. Private, link-local (cloud metadata) and reserved addresses are refused regardless (docs/webhooks.md)."},
	{"STEWARD_REQUEST_WORKERS", "10", "Privacy-request tasks run at once per replica."},
	{"STEWARD_REMINDER_INTERVAL", "15m", "How often the elected replica looks for requests needing a staff reminder."},
	{"STEWARD_JOB_LEASE", "15s", "How long a running job's lease lasts unrenewed: the replica working it renews it every third of this, and a replica that dies mid-job (kill -9, lost host) has its jobs taken over by another replica about 1⅓ leases later (docs/operations.md)."},
	{"STEWARD_JOB_TIMEOUT", "10m", "Longest run of one job (a connector call, a package build) before it is cancelled and retried; River's own rescue of a job still running is this plus 5m."},
	{"STEWARD_FILE_STORE", "file://./var/files", "Where files disclosed by access requests (uploads, generated images) are kept, each encrypted under its own key: a gocloud.dev/blob URL (`file:///abs/dir`, `s3://bucket?region=…`, `gs://…`, `azblob://…`). A relative `file://./dir` is resolved against the working directory."},
	{"STEWARD_RETENTION_SCHEDULE", "0 3 * * *", "When the elected replica sweeps expired data: a five-field cron expression in UTC (default daily at 03:00), or `off`."},
	{"STEWARD_RETENTION_WORKERS", "2", "Datasets swept at once by each replica (River's retention queue): sweeps stay out of the privacy requests' way."},
	{"STEWARD_RETENTION_PACE", "2", "How long a sweep rests after each batch, as a multiple of the batch's time: 2 keeps a sweep to about a third of one database connection, 0 never rests (a maintenance window)."},
	{"STEWARD_EXPORT_URL", "", "Public base of the download links emailed for export packages (the link's token is appended), e.g. `https://privacy.example.com/v1/exports/`; empty: `http://` + STEWARD_ADDR + `/v1/exports/`, right for a local deployment only."},
	{"STEWARD_CONNECTORS", "", "Connectors file (YAML): which data-map systems Steward reaches itself and how (see docs/connectors.md); `${VAR}` in it reads the environment. Empty: every system is a manual task."},
	{"STEWARD_CORS_ORIGINS", "", "Comma-separated origins (`https://shop.example.com`) whose pages may call the consent API with the publishable key, for any product, besides each product's `origins` in the policy data (docs/consent-sdk.md)."},
	{"STEWARD_GEO_HEADER", "", "The request header your CDN sets to the visitor's country code (`CF-IPCountry`, `CloudFront-Viewer-Country`): the consent banner's jurisdiction when the page names none. Empty: none is trusted, and the banner uses the `default` regime."},
	{"STEWARD_RATE_LIMIT_WINDOW", "1m", "The period the API's rate limits count over; a client may spend a whole window's allowance at once, then gets it back evenly across the window (a token bucket). `0` turns rate limiting off (docs/operations.md, Rate limits)."},
	{"STEWARD_RATE_LIMIT_ADDRESS", "600", "Requests per window a client address (behind STEWARD_TRUSTED_PROXIES; IPv6 by /64) may make without a valid API key: the public endpoints, unknown routes and failed authentications, so key guessing is throttled. Requests whose key authenticates count against the key instead. `0`: no limit."},
	{"STEWARD_RATE_LIMIT_KEYS", "sdk:60000,frontend:120000,*:1200", "Requests per window per API key, by role (`role:n`, comma-separated; `*` is every role not listed; `0` is no limit). The publishable `sdk` key is shared by every visitor's browser and `frontend` by the products' backends, so theirs are high; staff roles' are low. Replaces the default list as a whole."},
	{"STEWARD_RATE_LIMIT_REPLICAS", "1", "The number of replicas behind the load balancer: each enforces its share of every limit (rounded up). Left at 1 with N replicas, a client the balancer spreads over them gets up to N times the limit (docs/operations.md)."},
	{"STEWARD_RATE_LIMIT_BUCKETS", "100000", "Most client addresses (and, separately, keys) a replica tracks; when full, idle ones are dropped first (about 100 bytes each)."},
}

// StaffOIDC is an OpenID Connect provider for staff single sign-on.
type StaffOIDC struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	// RedirectURL is empty when not configured: the console's own
	// <origin>/console/signin/oidc/callback is used.
	RedirectURL string
}

// LogValue keeps the client secret out of logs.
func (o StaffOIDC) LogValue() slog.Value {
	return slog.GroupValue(slog.String("issuer", o.Issuer), slog.String("client_id", o.ClientID),
		slog.String("redirect_url", o.RedirectURL), slog.Bool("client_secret_set", o.ClientSecret != ""))
}

// String keeps the client secret out of %v.
func (o StaffOIDC) String() string {
	return fmt.Sprintf("{issuer %s client %s redirect %s secret:%t}", o.Issuer, o.ClientID, o.RedirectURL, o.ClientSecret != "")
}

// Load reads the configuration through getenv (os.Getenv in production).
func Load(getenv func(string) string) (Config, error) {
	get := func(name string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		for _, v := range Vars {
			if v.Name == name && !strings.HasPrefix(v.Default, "(") {
				return v.Default
			}
		}
		return ""
	}
	c := Config{
		DatabaseURL:       get("DATABASE_URL"),
		Addr:              get("STEWARD_ADDR"),
		PolicyDir:         get("STEWARD_POLICY_DIR"),
		PolicyBundle:      get("STEWARD_POLICY_BUNDLE"),
		PolicyOverlay:     get("STEWARD_POLICY_OVERLAY"),
		IdentityKeys:      get("STEWARD_IDENTITY_KEYS"),
		ReceiptSigningKey: get("STEWARD_RECEIPT_SIGNING_KEY"),
		ResendAPIKey:      get("STEWARD_RESEND_API_KEY"),
		ResendBaseURL:     get("STEWARD_RESEND_BASE_URL"),
		ResendAudienceID:  get("STEWARD_RESEND_AUDIENCE_ID"),
	}
	c.DatabaseSessionURL = get("STEWARD_DATABASE_SESSION_URL")
	maxConns, merr := positiveInt(get, "STEWARD_DATABASE_MAX_CONNS")
	if merr != nil {
		return c, merr
	}
	c.DatabaseMaxConns = maxConns
	c.ReceiptRetiredKeys = list(get("STEWARD_RECEIPT_RETIRED_KEYS"))
	c.AuditSigningKey = get("STEWARD_AUDIT_SIGNING_KEY")
	c.AuditRetiredKeys = list(get("STEWARD_AUDIT_RETIRED_KEYS"))
	c.AuditCheckpointBucket = get("STEWARD_AUDIT_CHECKPOINT_BUCKET")
	c.EmailFrom = get("STEWARD_EMAIL_FROM")
	c.StaffEmail = get("STEWARD_STAFF_EMAIL")
	c.StatusURL = get("STEWARD_STATUS_URL")
	c.StaffURL = get("STEWARD_STAFF_URL")
	if iss := get("STEWARD_STAFF_OIDC_ISSUER"); iss != "" {
		o := &StaffOIDC{Issuer: strings.TrimSuffix(iss, "/"), ClientID: get("STEWARD_STAFF_OIDC_CLIENT_ID"),
			ClientSecret: get("STEWARD_STAFF_OIDC_CLIENT_SECRET"), RedirectURL: get("STEWARD_STAFF_OIDC_REDIRECT_URL")}
		if u, err := url.Parse(o.Issuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return c, fmt.Errorf("STEWARD_STAFF_OIDC_ISSUER: want the provider's absolute http(s) URL (https in production)")
		}
		if o.ClientID == "" {
			return c, fmt.Errorf("STEWARD_STAFF_OIDC_CLIENT_ID: required with STEWARD_STAFF_OIDC_ISSUER")
		}
		if o.RedirectURL != "" {
			if u, err := url.Parse(o.RedirectURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				return c, fmt.Errorf("STEWARD_STAFF_OIDC_REDIRECT_URL: want an absolute http(s) URL")
			}
		}
		c.StaffOIDC = o
	} else if get("STEWARD_STAFF_OIDC_CLIENT_ID") != "" || get("STEWARD_STAFF_OIDC_CLIENT_SECRET") != "" || get("STEWARD_STAFF_OIDC_REDIRECT_URL") != "" {
		return c, fmt.Errorf("STEWARD_STAFF_OIDC_ISSUER: required when any other STEWARD_STAFF_OIDC_* is set")
	}
	c.TelegramBotToken = get("STEWARD_TELEGRAM_BOT_TOKEN")
	keys, kerr := challengelogin.ParseKeys(get("STEWARD_CHALLENGE_LOGIN_KEYS"))
	if kerr != nil {
		return c, fmt.Errorf("STEWARD_CHALLENGE_LOGIN_KEYS: %w", kerr)
	}
	c.ChallengeLoginKeys = keys
	c.ChallengeLoginURLs = map[string]string{}
	for _, part := range strings.Split(get("STEWARD_CHALLENGE_LOGIN_URLS"), ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		product, raw, _ := strings.Cut(part, ":")
		if u, err := url.Parse(raw); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || product == "" {
			return c, fmt.Errorf("STEWARD_CHALLENGE_LOGIN_URLS: want product:https://..., comma-separated")
		}
		if _, ok := c.ChallengeLoginKeys[product]; !ok {
			return c, fmt.Errorf("STEWARD_CHALLENGE_LOGIN_URLS: %s has no key in STEWARD_CHALLENGE_LOGIN_KEYS", product)
		}
		c.ChallengeLoginURLs[product] = raw
	}
	if v := get("STEWARD_INVOICE_MAX_AGE"); v != "" {
		d, derr := time.ParseDuration(v)
		if derr != nil || d <= 0 {
			return c, fmt.Errorf("STEWARD_INVOICE_MAX_AGE: want a duration such as 2160h (90 days)")
		}
		c.InvoiceMaxAge = d
	}
	c.TelegramAPIURL = get("STEWARD_TELEGRAM_API_URL")
	if u, err := url.Parse(c.TelegramAPIURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return c, fmt.Errorf("STEWARD_TELEGRAM_API_URL: want an absolute http(s) URL such as https://api.telegram.org")
	}
	switch v := strings.ToLower(strings.TrimSpace(get("STEWARD_WEBHOOKS_ALLOW_LOOPBACK"))); v {
	case "", "false", "0", "no":
	case "true", "1", "yes":
		c.WebhooksAllowLoopback = true
	default:
		return c, fmt.Errorf("STEWARD_WEBHOOKS_ALLOW_LOOPBACK: want true or false")
	}
	c.ConnectorsFile = get("STEWARD_CONNECTORS")
	for _, o := range list(get("STEWARD_CORS_ORIGINS")) {
		n, err := policy.NormalizeOrigin(o)
		if err != nil {
			return c, fmt.Errorf("STEWARD_CORS_ORIGINS: %v", err)
		}
		c.CORSOrigins = append(c.CORSOrigins, n)
	}
	if c.GeoHeader = get("STEWARD_GEO_HEADER"); strings.Trim(c.GeoHeader, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-") != "" {
		return c, fmt.Errorf("STEWARD_GEO_HEADER: %q is not a header name", c.GeoHeader)
	}
	c.PublicURL = strings.TrimSuffix(get("STEWARD_PUBLIC_URL"), "/")
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return c, fmt.Errorf("STEWARD_PUBLIC_URL: want the origin people reach Steward at, such as https://privacy.example.com")
		}
		if c.StatusURL == "" {
			c.StatusURL = c.PublicURL + "/privacy/status"
		}
		if c.StaffURL == "" {
			// The console's request page; reminders append the id.
			c.StaffURL = c.PublicURL + "/console/requests/"
		}
	}
	for _, p := range strings.Split(get("STEWARD_TRUSTED_PROXIES"), ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if _, err := netip.ParsePrefix(p); err != nil {
			if _, err := netip.ParseAddr(p); err != nil {
				return c, fmt.Errorf("STEWARD_TRUSTED_PROXIES: %q is not an IP address or CIDR", p)
			}
		}
		c.TrustedProxies = append(c.TrustedProxies, p)
	}
	if err := c.loadRateLimits(get); err != nil {
		return c, err
	}
	c.ExportURL = get("STEWARD_EXPORT_URL")
	if c.ExportURL == "" && c.PublicURL != "" {
		c.ExportURL = c.PublicURL + "/v1/exports/"
	}
	if c.ExportURL != "" {
		if u, err := url.Parse(c.ExportURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return c, fmt.Errorf("STEWARD_EXPORT_URL: want an absolute http(s) URL such as https://privacy.example.com/v1/exports/")
		}
	}
	c.RetentionSchedule = get("STEWARD_RETENTION_SCHEDULE")
	if c.RetentionSchedule != "off" {
		if _, err := cron.ParseStandard(c.RetentionSchedule); err != nil || strings.HasPrefix(c.RetentionSchedule, "@every") || strings.HasPrefix(c.RetentionSchedule, "TZ=") || strings.HasPrefix(c.RetentionSchedule, "CRON_TZ=") {
			return c, fmt.Errorf("STEWARD_RETENTION_SCHEDULE: %q is not a five-field cron expression (minute hour day-of-month month day-of-week, UTC) such as \"0 3 * * *\", or off", c.RetentionSchedule)
		}
	}
	c.FileStore = get("STEWARD_FILE_STORE")
	if c.FileStore == "" {
		c.FileStore = "file://./var/files"
	}
	if err := c.LogLevel.UnmarshalText([]byte(get("STEWARD_LOG_LEVEL"))); err != nil {
		return c, fmt.Errorf("STEWARD_LOG_LEVEL: want debug, info, warn or error")
	}
	var err error
	if c.BodyLimit, err = positiveInt(get, "STEWARD_BODY_LIMIT"); err != nil {
		return c, err
	}
	if c.CacheSubjects, err = positiveInt(get, "STEWARD_CACHE_SUBJECTS"); err != nil {
		return c, err
	}
	if c.AuditCheckpointEvery, err = positiveInt(get, "STEWARD_AUDIT_CHECKPOINT_EVERY"); err != nil {
		return c, err
	}
	if c.RequestWorkers, err = positiveInt(get, "STEWARD_REQUEST_WORKERS"); err != nil {
		return c, err
	}
	if c.RetentionWorkers, err = positiveInt(get, "STEWARD_RETENTION_WORKERS"); err != nil {
		return c, err
	}
	// A job worker may hold a connection while it needs a second one (its
	// audit entry, say): a pool with no room beyond the workers can stall
	// them all.
	if need := c.RequestWorkers + c.RetentionWorkers + 2; c.DatabaseMaxConns < need {
		return c, fmt.Errorf("STEWARD_DATABASE_MAX_CONNS: %d leaves the job workers no room; want at least %d (STEWARD_REQUEST_WORKERS + STEWARD_RETENTION_WORKERS + 2)", c.DatabaseMaxConns, need)
	}
	if c.RetentionPace, err = strconv.ParseFloat(get("STEWARD_RETENTION_PACE"), 64); err != nil || c.RetentionPace < 0 || c.RetentionPace > 100 || math.IsNaN(c.RetentionPace) {
		return c, fmt.Errorf("STEWARD_RETENTION_PACE: want a number from 0 to 100, such as 1")
	}
	for name, dst := range map[string]*time.Duration{
		"STEWARD_READ_TIMEOUT": &c.ReadTimeout, "STEWARD_WRITE_TIMEOUT": &c.WriteTimeout, "STEWARD_IDLE_TIMEOUT": &c.IdleTimeout,
		"STEWARD_SHUTDOWN_TIMEOUT": &c.ShutdownTimeout, "STEWARD_OUTBOX_POLL": &c.OutboxPoll,
		"STEWARD_AUDIT_CHECKPOINT_INTERVAL": &c.AuditCheckpointInterval, "STEWARD_REMINDER_INTERVAL": &c.ReminderInterval,
		"STEWARD_JOB_LEASE": &c.JobLease, "STEWARD_JOB_TIMEOUT": &c.JobTimeout,
	} {
		d, err := time.ParseDuration(get(name))
		if err != nil || d <= 0 {
			return c, fmt.Errorf("%s: want a positive duration such as 10s", name)
		}
		*dst = d
	}
	if c.PolicyWatch, err = time.ParseDuration(get("STEWARD_POLICY_WATCH")); err != nil || c.PolicyWatch < 0 {
		return c, fmt.Errorf("STEWARD_POLICY_WATCH: want a duration such as 2s, or 0 to turn watching off")
	}
	if n := btoi(c.PolicyDir != "") + btoi(c.PolicyBundle != "") + btoi(c.PolicyOverlay != ""); n > 1 {
		return c, fmt.Errorf("STEWARD_POLICY_DIR, STEWARD_POLICY_BUNDLE and STEWARD_POLICY_OVERLAY: set one at most")
	}
	if err := c.checkDatabaseURLs(); err != nil {
		return c, err
	}
	return c, nil
}

func (c *Config) loadRateLimits(get func(string) string) error {
	var err error
	if c.RateLimitWindow, err = time.ParseDuration(get("STEWARD_RATE_LIMIT_WINDOW")); err != nil || c.RateLimitWindow < 0 {
		return fmt.Errorf("STEWARD_RATE_LIMIT_WINDOW: want a duration such as 1m, or 0 to turn rate limiting off")
	}
	if c.RateLimitWindow > 0 && c.RateLimitWindow < time.Second {
		return fmt.Errorf("STEWARD_RATE_LIMIT_WINDOW: want at least 1s (or 0 for off)")
	}
	if c.RateLimitAddress, err = strconv.Atoi(get("STEWARD_RATE_LIMIT_ADDRESS")); err != nil || c.RateLimitAddress < 0 {
		return fmt.Errorf("STEWARD_RATE_LIMIT_ADDRESS: want a whole number of requests per window, 0 for no limit")
	}
	c.RateLimitKeys = map[string]int{}
	for _, part := range list(get("STEWARD_RATE_LIMIT_KEYS")) {
		role, n, ok := strings.Cut(part, ":")
		v, aerr := strconv.Atoi(strings.TrimSpace(n))
		if role = strings.TrimSpace(role); !ok || role == "" || aerr != nil || v < 0 {
			return fmt.Errorf("STEWARD_RATE_LIMIT_KEYS: want role:requests per window, comma-separated, such as sdk:60000,*:1200")
		}
		c.RateLimitKeys[role] = v
	}
	if c.RateLimitReplicas, err = positiveInt(get, "STEWARD_RATE_LIMIT_REPLICAS"); err != nil {
		return err
	}
	if c.RateLimitBuckets, err = positiveInt(get, "STEWARD_RATE_LIMIT_BUCKETS"); err != nil {
		return err
	}
	return nil
}

func list(v string) []string {
	var out []string
	for _, k := range strings.Split(v, ",") {
		if k = strings.TrimSpace(k); k != "" {
			out = append(out, k)
		}
	}
	return out
}

func positiveInt(get func(string) string, name string) (int, error) {
	n, err := strconv.Atoi(get(name))
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s: want a positive whole number", name)
	}
	return n, nil
}

// SessionURL is the URL for work that needs a real session (migrations'
// and the leader's advisory locks, LISTEN): STEWARD_DATABASE_SESSION_URL,
// else DATABASE_URL.
func (c Config) SessionURL() string {
	if c.DatabaseSessionURL != "" {
		return c.DatabaseSessionURL
	}
	return c.DatabaseURL
}

// Pooled reports whether DATABASE_URL names a transaction pooler, which
// setting STEWARD_DATABASE_SESSION_URL declares.
func (c Config) Pooled() bool { return c.DatabaseSessionURL != "" }

// checkDatabaseURLs checks the session URL parses, and refuses the one
// pooled setup that can be told from the URL alone: Neon's pooled host
// (ep-...-pooler.) with no session URL, where the leader lock and LISTEN
// would silently not hold.
func (c Config) checkDatabaseURLs() error {
	if c.DatabaseSessionURL != "" {
		if _, err := pgconn.ParseConfig(c.DatabaseSessionURL); err != nil {
			return fmt.Errorf("STEWARD_DATABASE_SESSION_URL: want a PostgreSQL URL such as postgres://user@host:5432/db: %s", parseProblem(err))
		}
		if c.DatabaseSessionURL == c.DatabaseURL {
			return fmt.Errorf("STEWARD_DATABASE_SESSION_URL: is DATABASE_URL; set it only when DATABASE_URL names a transaction pooler, to the direct URL")
		}
		if neonPooler(c.DatabaseSessionURL) {
			return fmt.Errorf("STEWARD_DATABASE_SESSION_URL: names Neon's pooled endpoint (-pooler in the host); it needs the direct one (the host without -pooler)")
		}
	}
	if c.DatabaseSessionURL == "" && neonPooler(c.DatabaseURL) {
		return fmt.Errorf("DATABASE_URL names Neon's pooled endpoint (-pooler in the host): set STEWARD_DATABASE_SESSION_URL to the direct one (the same URL without -pooler), which the leader lock, LISTEN and migrations need (docs/operations.md, \"Behind a transaction pooler\")")
	}
	return nil
}

// parseProblem is why a URL did not parse, without the URL itself (it may
// carry a password).
func parseProblem(err error) string {
	msg := err.Error()
	var pe *pgconn.ParseConfigError
	if !errors.As(err, &pe) {
		return "malformed"
	}
	// "cannot parse `<redacted URL>`: why": keep the why only.
	if i := strings.LastIndex(msg, "`: "); strings.HasPrefix(msg, "cannot parse `") && i > 0 {
		return msg[i+3:]
	}
	return "malformed"
}

// neonPooler reports whether url's host is a Neon pooled endpoint
// (ep-name-123456-pooler.region.aws.neon.tech).
func neonPooler(url string) bool {
	cfg, err := pgconn.ParseConfig(url)
	if err != nil {
		return false
	}
	h := cfg.Host
	for _, fb := range cfg.Fallbacks {
		h += " " + fb.Host
	}
	return strings.Contains(h, "-pooler.")
}

// RequireDatabase checks DATABASE_URL is set.
func (c Config) RequireDatabase() error {
	if c.DatabaseURL == "" {
		return fmt.Errorf("DATABASE_URL is not set (make run sets it for you; see docs/configuration.md)")
	}
	return nil
}

// ExportLinkBase is where download links point, ending in "/":
// STEWARD_EXPORT_URL, or this replica's own address when unset (a local
// deployment).
func (c Config) ExportLinkBase() string {
	if c.ExportURL != "" {
		if !strings.HasSuffix(c.ExportURL, "/") {
			return c.ExportURL + "/"
		}
		return c.ExportURL
	}
	host := c.Addr
	if strings.HasPrefix(host, ":") || strings.HasPrefix(host, "0.0.0.0:") {
		host = "127.0.0.1" + host[strings.LastIndex(host, ":"):]
	}
	return "http://" + host + "/v1/exports/"
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
