package postgres

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// ScanOptions configures Scan.
type ScanOptions struct {
	// System is the draft system's id; "app_db" when empty.
	System string
	// Name is the system's name in words; TODO when empty.
	Name string
}

// DefaultScanSystem is the system id Scan uses when ScanOptions.System is
// empty.
const DefaultScanSystem = "app_db"

// scanTODO marks what a person has to fill in. It is never a valid purpose,
// retention rule, product or category, so an unfinished draft is refused by
// the data-map validator at those places.
const scanTODO = "TODO"

// scanIDRe is the data map's rule for system and dataset ids; scanIdentRe
// its rule for table and column names.
var (
	scanIDRe    = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)
	scanIdentRe = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)
)

// Scan drafts a data map from a catalog: one postgres system with one
// dataset per table, every column a field with a guessed category, identity
// candidates, references from foreign keys and a guessed timestamp. The
// draft is YAML in the format of docs/datamap.md (a `systems:` document, to
// be merged into the data map); every guess carries a "# review:" comment on
// its line, and what only a person can say (purposes, retention, products,
// processor, regions, descriptions) is TODO. The validator refuses a TODO
// purpose, retention rule, product or category; it accepts a TODO name,
// processor, region or description as text, so the header asks for them.
// The output is deterministic: datasets are sorted by name, fields are in
// table order.
//
// The heuristics are deliberately simple, so a reviewer can predict them:
//
// Account tables. A table is an account table when its name's last word
// (split on "_") is user(s), account(s), member(s), customer(s) or
// profile(s), it has a one-column primary key, and single-column foreign keys
// of at least two other tables refer to that key. Its key is a `user`
// identity, unless a name rule below gives it another type (tg_users.tg_id is
// a `tg` identity).
//
// Identities, on columns that are not part of a foreign key (a foreign-key
// column is a reference instead) and whose type the connector can match
// (text, integers, numeric, uuid):
//   - tg_id, telegram_id: tg
//   - stripe_customer_id: stripe; creem_customer_id: creem
//   - account_id or provider_account_id, in a table that has a provider_id or
//     provider column: oauth, with that column as provider_field
//   - email, e_mail, email_address, *_email, *_email_address holding text:
//     email, but only on an account table or on a table with no NOT NULL
//     foreign key to an account table (when every row must name an account,
//     the account reaches the row; otherwise the address may be the only way
//     to find it; invoices.billing_email is not an identity,
//     support_tickets.email is)
//   - the primary key of a table whose name's last word is visitor(s): visitor
//
// References. Each foreign-key column becomes `{field: col, to:
// system.table.refcol}` (a composite key gives one per column), listed in
// column order. Left out, with a comment saying why: a column of a
// self-referencing foreign key (followed from the person's row it would
// reach other people's rows, such as the people they referred), and a
// column that already has a reference from a foreign key earlier in name
// order.
//
// Timestamp. created_at when it is a date/time column, else the first
// timestamptz column, else the first other date/time column, in table order.
//
// Categories, first match wins (names are matched lower-cased, by words
// split on "_"):
//  1. a column holding an identity (above): the identity's category
//     (user.unique_id, user.unique_id.pseudonymous for visitor ids,
//     user.contact.email for email addresses)
//  2. a word such as referrer, referee, referred or referral
//     (referrer_tg_id, referred_by): user.social.referral; the provider
//     column of an oauth identity: user.account
//  3. a foreign-key column: the category of the column it refers to when that
//     is an id of a person (user.unique_id...), else system.operations
//  4. name rules (scanRules below): email, phone (user.contact: there is no
//     phone category), ip/ip_address/*_ip or type inet/cidr
//     (user.device.ip_address; system.log.ip_address in tables whose last
//     word is log or logs), user_agent, credentials (password, secret, token,
//     *_token, *_secret, api_key, ...), names, username, address words
//     (address, street, city, postal, postcode, zip, country), location,
//     language, marketing preferences, images, prompts, errors, messages,
//     tax ids, credits, payment amounts, payment methods, risk flags,
//     impersonation, role, user_id/*_user_id (user.unique_id), visitor and
//     device ids (user.unique_id.pseudonymous), dates of birth (user: there
//     is no narrower category)
//  5. a bare `name`: user.name on a table with an identity, else TODO
//  6. ids (id, *_id, the primary key), date/time, boolean, numeric, enum
//     and uuid columns, and operational labels (status, kind, type,
//     provider, source, ...): system.operations
//  7. anything else (text, JSON, arrays, binary): TODO, for a person to
//     decide, because free text can hold anything
func Scan(cat *Catalog, opt ScanOptions) ([]byte, error) {
	if cat == nil {
		return nil, errors.New("postgres: scan: no catalog")
	}
	if opt.System == "" {
		opt.System = DefaultScanSystem
	}
	if !scanIDRe.MatchString(opt.System) {
		return nil, fmt.Errorf("postgres: scan: system id %q must match %s", opt.System, scanIDRe)
	}
	if len(cat.Tables) == 0 {
		return nil, fmt.Errorf("postgres: scan: schema %q has no tables", cat.Schema)
	}
	s := newScanner(cat, opt.System)
	return s.write(opt), nil
}

// scanGuess is a guessed value and why it was guessed.
type scanGuess struct {
	value, why string
}

type scanIdentity struct {
	field, typ, provider, why string
}

type scanRef struct {
	field, to, why string
	table          string // the table referred to
}

type scanDataset struct {
	id         string
	table      *Table
	identities []scanIdentity
	refs       []scanRef
	// notes are comment lines about the dataset (references left out).
	notes     []string
	timestamp scanGuess
	fields    map[string]scanGuess
	reachable bool
}

type scanner struct {
	cat      *Catalog
	system   string
	datasets map[string]*scanDataset // by table name
	// account[t] is the number of other tables referring to account table
	// t's key; absent for other tables.
	account map[string]int
}

func newScanner(cat *Catalog, system string) *scanner {
	s := &scanner{cat: cat, system: system, datasets: map[string]*scanDataset{}, account: map[string]int{}}
	for _, name := range cat.TableNames() {
		t := cat.Tables[name]
		s.datasets[name] = &scanDataset{id: name, table: t, fields: map[string]scanGuess{}}
		if n := referringTables(t); n >= 2 && scanLastWordIn(name, "user", "users", "account", "accounts", "member", "members", "customer", "customers", "profile", "profiles") {
			s.account[name] = n
		}
	}
	for _, name := range cat.TableNames() {
		s.identities(s.datasets[name])
	}
	for _, name := range cat.TableNames() {
		s.references(s.datasets[name])
	}
	for _, name := range cat.TableNames() {
		ds := s.datasets[name]
		for _, col := range ds.table.Order {
			ds.fields[col] = s.category(ds.table, col, 0)
		}
		ds.timestamp = scanTimestamp(ds.table)
	}
	s.reach()
	return s
}

// referringTables counts the other tables whose single-column foreign keys
// refer to t's single-column primary key.
func referringTables(t *Table) int {
	if len(t.PrimaryKey) != 1 {
		return 0
	}
	seen := map[string]bool{}
	for _, fk := range t.Incoming {
		if fk.Table != t.Name && len(fk.RefColumns) == 1 && fk.RefColumns[0] == t.PrimaryKey[0] {
			seen[fk.Table] = true
		}
	}
	return len(seen)
}

// scanWords splits a name into its lower-cased words.
func scanWords(name string) []string { return strings.Split(strings.ToLower(name), "_") }

func scanLastWordIn(name string, words ...string) bool {
	w := scanWords(name)
	return slices.Contains(words, w[len(w)-1])
}

func scanHasWord(name string, words ...string) bool {
	for _, w := range scanWords(name) {
		if slices.Contains(words, w) {
			return true
		}
	}
	return false
}

func isEmailName(n string) bool {
	n = strings.ToLower(n)
	return n == "email" || n == "e_mail" || n == "email_address" || strings.HasSuffix(n, "_email") || strings.HasSuffix(n, "_email_address")
}

// identities finds the identity candidates of a dataset (see Scan).
func (s *scanner) identities(ds *scanDataset) {
	t := ds.table
	var pk string
	if len(t.PrimaryKey) == 1 {
		pk = t.PrimaryKey[0]
	}
	// needsAccount: every row must name an account.
	needsAccount := false
	for _, fk := range t.ForeignKeys {
		if _, ok := s.account[fk.RefTable]; ok && fk.RefTable != t.Name {
			all := true
			for _, c := range fk.Columns {
				all = all && t.Columns[c] != nil && t.Columns[c].NotNull
			}
			needsAccount = needsAccount || all
		}
	}
	provider := ""
	for _, p := range []string{"provider_id", "provider"} {
		if t.has(p) {
			provider = p
			break
		}
	}
	_, isAccount := s.account[t.Name]
	for _, name := range t.Order {
		col := t.Columns[name]
		if t.inFK(name) != nil {
			continue
		}
		if _, ok := col.keyCast(); !ok {
			continue
		}
		n := strings.ToLower(name)
		var id scanIdentity
		switch {
		case n == "tg_id" || n == "telegram_id":
			id = scanIdentity{typ: "tg", why: "a Telegram user id, from the column name"}
		case n == "stripe_customer_id":
			id = scanIdentity{typ: "stripe", why: "a Stripe customer id, from the column name"}
		case n == "creem_customer_id":
			id = scanIdentity{typ: "creem", why: "a Creem customer id, from the column name"}
		case (n == "account_id" || n == "provider_account_id") && provider != "":
			id = scanIdentity{typ: "oauth", provider: provider, why: "an OAuth account id, unique per " + scanShow(provider)}
		case isEmailName(name) && col.textLike() && isAccount:
			id = scanIdentity{typ: "email", why: "an email address on an account table"}
		case isEmailName(name) && col.textLike() && !needsAccount:
			id = scanIdentity{typ: "email", why: "an email address; no NOT NULL foreign key ties every row to an account table"}
		case name == pk && isAccount:
			id = scanIdentity{typ: "user", why: fmt.Sprintf("the account table's primary key (the table's name says accounts, and %d tables refer to it)", s.account[t.Name])}
		case name == pk && scanLastWordIn(t.Name, "visitor", "visitors"):
			id = scanIdentity{typ: "visitor", why: "primary key of a visitors table: an anonymous visitor id"}
		default:
			continue
		}
		id.field = name
		ds.identities = append(ds.identities, id)
	}
}

func (ds *scanDataset) identity(col string) *scanIdentity {
	for i := range ds.identities {
		if ds.identities[i].field == col {
			return &ds.identities[i]
		}
	}
	return nil
}

// references turns foreign keys into references (see Scan).
func (s *scanner) references(ds *scanDataset) {
	t := ds.table
	fks := slices.Clone(t.ForeignKeys)
	slices.SortStableFunc(fks, func(a, b *ForeignKey) int { return strings.Compare(a.Name, b.Name) })
	has := map[string]bool{}
	for _, fk := range fks {
		target := s.datasets[fk.RefTable]
		for i, col := range fk.Columns {
			if i >= len(fk.RefColumns) || target == nil {
				continue
			}
			on := fmt.Sprintf("foreign key %s to %s(%s)", scanShow(fk.Name), scanShow(fk.RefTable), scanShowList(fk.RefColumns))
			if len(fk.Columns) > 1 {
				on += fmt.Sprintf(", column %d of %d", i+1, len(fk.Columns))
			}
			switch {
			case fk.RefTable == t.Name:
				ds.notes = append(ds.notes, fmt.Sprintf("%s: %s left out as a reference: it refers to this table, and following it would reach other people's rows", scanShow(col), on))
			case has[col]:
				ds.notes = append(ds.notes, fmt.Sprintf("%s: %s left out as a reference: the column already has one", scanShow(col), on))
			default:
				has[col] = true
				why := on
				if fk.OnDelete != "" {
					why += ", ON DELETE " + fk.OnDelete
				}
				ds.refs = append(ds.refs, scanRef{field: col, to: s.system + "." + target.id + "." + fk.RefColumns[i], why: why, table: fk.RefTable})
			}
		}
	}
	// In table order, like the fields.
	slices.SortStableFunc(ds.refs, func(a, b scanRef) int { return slices.Index(t.Order, a.field) - slices.Index(t.Order, b.field) })
}

// scanRule is one name rule: a column matching it gets its category.
type scanRule struct {
	match    func(c scanCol) bool
	category string
	why      string
}

// scanCol is what a rule looks at.
type scanCol struct {
	*Column
	table *Table
	// n is the column name, lower-cased.
	n string
	// account: the table is an account table.
	account bool
}

// notDate: neither a date/time nor a boolean (password_changed_at is not a
// password, has_phone not a phone number).
func (c scanCol) notDate() bool { return c.Category != "D" && c.Category != "B" }

func (c scanCol) is(names ...string) bool { return slices.Contains(names, c.n) }

func (c scanCol) suffix(suffixes ...string) bool {
	for _, s := range suffixes {
		if strings.HasSuffix(c.n, s) {
			return true
		}
	}
	return false
}

func (c scanCol) hasWord(words ...string) bool { return scanHasWord(c.n, words...) }

func (c scanCol) lastWord(words ...string) bool { return scanLastWordIn(c.n, words...) }

func (c scanCol) ip() bool {
	return c.lastWord("ip") || strings.Contains(c.n, "ip_addr") || c.is("remote_addr") || c.Base == "inet" || c.Base == "cidr"
}

func (c scanCol) inLogTable() bool { return scanLastWordIn(c.table.Name, "log", "logs") }

// scanRules are Scan's name rules, in order. Every category here must exist
// in policies/data/categories.json (the tests check).
var scanRules = []scanRule{
	{func(c scanCol) bool { return isEmailName(c.n) && c.textLike() },
		"user.contact.email", "an email address, from the column name"},
	{func(c scanCol) bool {
		return c.notDate() && (c.hasWord("phone", "mobile", "telephone", "msisdn") || c.is("tel"))
	}, "user.contact", "a phone number, from the column name (categories.json has no phone category; user.contact is its parent)"},
	{func(c scanCol) bool { return c.ip() && c.inLogTable() },
		"system.log.ip_address", "an IP address in a log table, from the column name or type"},
	{func(c scanCol) bool { return c.ip() },
		"user.device.ip_address", "an IP address, from the column name or type"},
	{func(c scanCol) bool { return c.is("user_agent", "useragent", "ua") || c.suffix("_user_agent") },
		"user.device.browser", "a browser user agent, from the column name"},
	{func(c scanCol) bool {
		return c.notDate() && (c.is("password", "passwd", "secret", "token", "api_key", "apikey", "otp", "passcode") ||
			c.hasWord("password", "passwd") || c.suffix("_token", "_secret", "_api_key", "_otp"))
	}, "user.authorization.credentials", "a credential (password, token, secret or key), from the column name"},
	{func(c scanCol) bool { return c.textLike() && c.is("first_name", "firstname", "given_name") },
		"user.name.first", "a first name, from the column name"},
	{func(c scanCol) bool { return c.textLike() && c.is("last_name", "lastname", "family_name", "surname") },
		"user.name.last", "a last name, from the column name"},
	{func(c scanCol) bool {
		return c.textLike() && (c.is("username", "user_name", "login", "handle") || c.suffix("_username"))
	}, "user.account.username", "a username, from the column name"},
	{func(c scanCol) bool {
		if !c.textLike() {
			return false
		}
		if c.is("full_name", "fullname", "display_name", "displayname", "nickname", "real_name", "legal_name") {
			return true
		}
		w := scanWords(c.n)
		return len(w) == 2 && w[1] == "name" && slices.Contains([]string{"billing", "contact", "customer", "company", "holder", "cardholder", "recipient", "sender", "owner"}, w[0])
	}, "user.name", "a person's or company's name, from the column name"},
	{func(c scanCol) bool {
		return c.notDate() && c.hasWord("address", "street", "city", "postal", "postcode", "zip", "zipcode", "country")
	}, "user.contact.address", "part of a postal address, from the column name"},
	{func(c scanCol) bool {
		return c.notDate() && c.hasWord("latitude", "longitude", "lat", "lng", "lon", "geo", "location", "geolocation", "coordinates")
	}, "user.location", "a location, from the column name"},
	{func(c scanCol) bool { return c.is("timezone", "time_zone", "tz") },
		"user.location.imprecise", "a time zone, from the column name"},
	{func(c scanCol) bool { return c.is("lang") || c.lastWord("language", "locale") },
		"user.preferences.language", "a language preference, from the column name"},
	{func(c scanCol) bool {
		return c.hasWord("newsletter", "marketing", "subscribed", "unsubscribed", "opted", "optin", "optout", "opt")
	}, "user.preferences.marketing", "a marketing preference, from the column name"},
	{func(c scanCol) bool { return c.is("dob", "birthday", "birthdate", "birth_date", "date_of_birth") },
		"user", "a date of birth, from the column name (categories.json has no narrower category)"},
	{func(c scanCol) bool {
		return c.hasWord("avatar", "picture") || c.is("photo", "photo_url", "profile_image") ||
			c.account && c.is("image", "image_url")
	}, "user.content.self_image", "a profile picture, from the column name"},
	{func(c scanCol) bool { return c.hasWord("image", "images", "photo", "photos") },
		"user.content.image", "an image, from the column name"},
	{func(c scanCol) bool { return c.hasWord("prompt", "prompts") },
		"user.content.prompt", "a prompt, from the column name"},
	{func(c scanCol) bool { return c.hasWord("error", "errors", "exception", "stacktrace", "traceback") },
		"system.log.error", "an error message, from the column name"},
	{func(c scanCol) bool {
		return c.lastWord("message", "messages", "body", "comment", "comments", "note", "notes", "feedback", "subject", "text")
	}, "user.content.message", "a message or free text, from the column name"},
	{func(c scanCol) bool {
		return c.is("tax_id", "vat_id", "vat_number", "tax_number") || c.suffix("_tax_id", "_vat_id")
	}, "user.financial.tax_id", "a tax or VAT id, from the column name"},
	{func(c scanCol) bool { return c.hasWord("card", "last4", "iban", "bic") },
		"user.financial.payment_method", "a payment method, from the column name"},
	{func(c scanCol) bool { return c.hasWord("credit", "credits", "balance") },
		"user.financial.credits", "credits or a balance, from the column name"},
	{func(c scanCol) bool { return c.hasWord("amount", "currency", "price") },
		"user.financial.payment", "a payment amount or currency, from the column name"},
	{func(c scanCol) bool { return c.hasWord("ban", "banned", "blocked", "fraud", "risk", "suspended") },
		"user.security.risk", "a ban or risk flag, from the column name"},
	{func(c scanCol) bool { return strings.HasPrefix(c.n, "impersonat") },
		"user.security.impersonation", "an impersonation record, from the column name"},
	{func(c scanCol) bool { return c.is("role", "roles") },
		"user.account", "an account role, from the column name"},
	{func(c scanCol) bool { return c.is("user_id") || c.suffix("_user_id") },
		"user.unique_id", "an account id, from the column name"},
	{func(c scanCol) bool {
		return c.is("visitor_id", "device_id", "anonymous_id", "anon_id") || c.suffix("_visitor_id", "_device_id")
	}, "user.unique_id.pseudonymous", "a visitor or device id, from the column name"},
}

// scanLabels are last words of columns that usually hold an operational
// label rather than anything about a person.
var scanLabels = []string{"status", "state", "kind", "type", "provider", "source", "scope", "format", "mode", "version", "plan", "model", "method", "channel", "category", "tier", "level"}

// category guesses a column's category (see Scan). depth bounds the chase
// along foreign keys.
func (s *scanner) category(t *Table, name string, depth int) scanGuess {
	ds := s.datasets[t.Name]
	col := t.Columns[name]
	n := strings.ToLower(name)
	if id := ds.identity(name); id != nil {
		switch id.typ {
		case "email":
			return scanGuess{"user.contact.email", "holds the email identity"}
		case "visitor":
			return scanGuess{"user.unique_id.pseudonymous", "holds the visitor identity"}
		}
		return scanGuess{"user.unique_id", "holds the " + id.typ + " identity"}
	}
	if scanHasWord(n, "referrer", "referee", "referred", "referral", "referrals", "referring", "referer", "inviter", "invitee", "invited") {
		return scanGuess{"user.social.referral", "a referral, from the column name"}
	}
	for _, id := range ds.identities {
		if id.provider == name {
			return scanGuess{"user.account", "names the OAuth provider of " + scanShow(id.field)}
		}
	}
	if fk := t.inFK(name); fk != nil {
		i := slices.Index(fk.Columns, name)
		rt := s.cat.Tables[fk.RefTable]
		if rt != nil && i < len(fk.RefColumns) && depth < 8 && (fk.RefTable != t.Name || fk.RefColumns[i] != name) {
			ref := fk.RefColumns[i]
			if g := s.category(rt, ref, depth+1); strings.HasPrefix(g.value, "user.unique_id") {
				return scanGuess{g.value, fmt.Sprintf("refers to %s.%s, a person's id", scanShow(fk.RefTable), scanShow(ref))}
			}
			return scanGuess{"system.operations", fmt.Sprintf("a key of %s", scanShow(fk.RefTable))}
		}
		return scanGuess{"system.operations", "part of a foreign key"}
	}
	_, account := s.account[t.Name]
	c := scanCol{Column: col, table: t, n: n, account: account}
	for _, r := range scanRules {
		if r.match(c) {
			return scanGuess{r.category, r.why}
		}
	}
	if n == "name" {
		if len(ds.identities) > 0 {
			return scanGuess{"user.name", "a name on a table holding an identity: probably the person's"}
		}
		return scanGuess{scanTODO, "a name, but of a person (user.name) or of a thing?"}
	}
	switch {
	case slices.Contains(t.PrimaryKey, name):
		return scanGuess{"system.operations", "part of the primary key"}
	case n == "id" || strings.HasSuffix(n, "_id") || strings.HasSuffix(n, "_ids"):
		return scanGuess{"system.operations", "an id, from the column name"}
	case col.Category == "D":
		return scanGuess{"system.operations", "a date/time: operational, unless it says something about the person"}
	case col.Category == "B":
		return scanGuess{"system.operations", "a boolean: operational, unless it says something about the person"}
	case col.Category == "N":
		return scanGuess{"system.operations", "a number: operational, unless it says something about the person"}
	case col.Category == "E":
		return scanGuess{"system.operations", "an enum: operational, unless it says something about the person"}
	case col.Base == "uuid":
		return scanGuess{"system.operations", "a uuid: operational, unless it identifies the person"}
	case scanLastWordIn(n, scanLabels...):
		return scanGuess{"system.operations", "an operational label, from the column name"}
	}
	return scanGuess{scanTODO, fmt.Sprintf("no rule matched this %s column: give it a category if it holds personal data, or leave it out", scanShow(col.Type))}
}

// scanTimestamp picks the column that ages records (see Scan).
func scanTimestamp(t *Table) scanGuess {
	if c := t.Columns["created_at"]; c != nil && c.Category == "D" {
		return scanGuess{"created_at", "when the row was created ages it for retention"}
	}
	for _, name := range t.Order {
		if t.Columns[name].Base == "timestamptz" {
			return scanGuess{name, "the first timestamptz column; check it is the one that ages records"}
		}
	}
	for _, name := range t.Order {
		if t.Columns[name].Category == "D" {
			return scanGuess{name, "the first date/time column; check it is the one that ages records"}
		}
	}
	return scanGuess{}
}

// reach marks the datasets an identity reaches, directly or along
// references, as the data-map validator will.
func (s *scanner) reach() {
	next := map[string][]string{} // table -> tables whose references lead from it
	var queue []string
	for _, name := range s.cat.TableNames() {
		ds := s.datasets[name]
		for _, r := range ds.refs {
			next[r.table] = append(next[r.table], name)
		}
		if len(ds.identities) > 0 {
			ds.reachable = true
			queue = append(queue, name)
		}
	}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		for _, m := range next[n] {
			if ds := s.datasets[m]; !ds.reachable {
				ds.reachable = true
				queue = append(queue, m)
			}
		}
	}
}

// write renders the draft.
func (s *scanner) write(opt ScanOptions) []byte {
	var b strings.Builder
	line := func(indent int, text, comment string) {
		b.WriteString(strings.Repeat("  ", indent))
		b.WriteString(text)
		if comment != "" {
			if text != "" {
				b.WriteString("  ")
			}
			b.WriteString("# " + comment)
		}
		b.WriteString("\n")
	}
	review := func(why string) string { return "review: " + why }

	fmt.Fprintf(&b, `# DRAFT data map of the Postgres schema %q, generated by `+"`steward datamap scan`"+`.
#
# Nothing in this file is authoritative. Every category, identity, reference and
# timestamp is guessed from table and column names, types and foreign keys, and is
# marked "# review:" on its line: check each one, correct it, and delete the comment.
#
# To finish the draft:
#   - fill in every TODO: the system's name, products, processor and regions, and each
#     dataset's description, purpose (a processing_purposes id) and retention (a rule
#     id from retention.json); give every TODO field a category from categories.json;
#   - remove fields that hold no personal data, and datasets left with none;
#   - make sure each dataset is reached from an identity, and that each reference leads
#     only to the person's own rows: a reference through a shared table (teams,
#     organizations, plans) would hand one person's rows to another;
#   - add recipients and transfer_safeguard where they apply;
#   - merge the system under systems: in policies/data/datamap.yaml (next to version
#     and processing_purposes) and run `+"`steward policy test`"+`, which lists every problem.
#
# The format is described in docs/datamap.md.
`, s.cat.Schema)
	line(0, "systems:", "")
	line(1, s.system+":", "")
	if opt.Name != "" {
		line(2, "name: "+yamlScalar(opt.Name), "")
	} else {
		line(2, "name: "+scanTODO, "the system in words, e.g. Application database")
	}
	line(2, "kind: postgres", "")
	line(2, "connector: postgres", "")
	line(2, "products: ["+scanTODO+"]", "product ids from products.json whose data it holds")
	line(2, "processor: "+scanTODO, `who runs the database; "self" when the company does`)
	line(2, "regions: ["+scanTODO+"]", "where the data is stored or processed: EU, US, ...")
	line(2, "datasets:", "")
	ids := make([]string, 0, len(s.datasets))
	for name := range s.datasets {
		ids = append(ids, name)
	}
	slices.SortFunc(ids, func(a, b string) int { return strings.Compare(s.datasets[a].id, s.datasets[b].id) })
	for _, name := range ids {
		ds := s.datasets[name]
		t := ds.table
		var comment string
		switch {
		case !scanIDRe.MatchString(ds.id):
			comment = review(fmt.Sprintf("%s is not a valid dataset id (%s): rename the dataset and keep table", scanShow(ds.id), scanIDRe))
		case !ds.reachable:
			comment = review("no identity or reference reaches this table: if it holds personal data, say how a person is found; otherwise remove it")
		}
		line(3, yamlScalar(ds.id)+":", comment)
		line(4, "description: "+scanTODO, "")
		comment = ""
		if !scanIdentRe.MatchString(t.Name) {
			comment = review(fmt.Sprintf("not a safe SQL identifier (%s); the data map refuses it", scanIdentRe))
		}
		line(4, "table: "+yamlScalar(t.Name), comment)
		if len(ds.identities) > 0 {
			line(4, "identities:", "")
			for _, id := range ds.identities {
				v := "{field: " + yamlScalar(id.field) + ", type: " + id.typ
				if id.provider != "" {
					v += ", provider_field: " + yamlScalar(id.provider)
				}
				line(5, "- "+v+"}", review(id.why))
			}
		}
		if len(ds.refs) > 0 {
			line(4, "references:", "")
			for _, r := range ds.refs {
				line(5, "- {field: "+yamlScalar(r.field)+", to: "+yamlScalar(r.to)+"}", review(r.why))
			}
		}
		for _, n := range ds.notes {
			line(4, "", review(n))
		}
		if ds.timestamp.value != "" {
			line(4, "timestamp: "+yamlScalar(ds.timestamp.value), review(ds.timestamp.why))
		} else {
			line(4, "", review("no date/time column: a retention rule with a duration needs a timestamp field to age records by"))
		}
		line(4, "purpose: "+scanTODO, "")
		line(4, "retention: "+scanTODO, "")
		if len(t.Order) == 0 {
			line(4, "fields: {}", review("the table has no columns"))
			continue
		}
		line(4, "fields:", "")
		for _, col := range t.Order {
			g := ds.fields[col]
			why := g.why
			if !scanIdentRe.MatchString(col) {
				why += fmt.Sprintf("; not a safe SQL identifier (%s), the data map refuses it", scanIdentRe)
			}
			line(5, yamlScalar(col)+": {category: "+g.value+"}", review(why))
		}
	}
	return []byte(b.String())
}

// yamlScalar writes s as a YAML scalar usable in block and flow context:
// plain when it is an identifier-like word that YAML reads back as the same
// string, double-quoted otherwise (Go's quoting is valid YAML).
func yamlScalar(s string) string {
	if scanPlainRe.MatchString(s) {
		switch strings.ToLower(s) {
		case "true", "false", "null", "yes", "no", "on", "off", "y", "n":
		default:
			return s
		}
	}
	return strconv.Quote(s)
}

var scanPlainRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$`)

// scanShow writes a name inside a comment: as is when it is printable,
// quoted otherwise, so a hostile name cannot end the comment's line.
func scanShow(s string) string {
	if s != "" && !strings.ContainsFunc(s, func(r rune) bool { return !strconv.IsPrint(r) }) {
		return s
	}
	return strconv.Quote(s)
}

func scanShowList(names []string) string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = scanShow(n)
	}
	return strings.Join(out, ", ")
}
