package postgres

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
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
	scanIdentRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]{0,62}$`)
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
// What is drafted. One dataset per table, partitioned tables included: a
// partition is not a dataset of its own (a query on the partitioned table
// reads it), and a foreign key declared on every partition rather than on
// the partitioned table counts as the table's (see relations.go); the
// dataset's notes list the partitions. Inheritance children are not
// drafted either: a query on the parent reads their rows, so the parent's
// dataset covers them, and the parent's notes name them and any columns
// only a child has. Views, materialized views and foreign tables are listed
// in the header as not drafted. A table whose name is not a dataset id
// (CustomerNotes) gets one derived from it (customer_notes) and keeps its
// name in table:; mixed-case names are quoted identifiers, which the data
// map and the connector take as they are.
//
// Names are read in snake_case: camelCase and PascalCase names are split at
// their capitals (billingEmail, IPAddress, dateOfBirth: billing_email,
// ip_address, date_of_birth), spaces and hyphens become "_", and the guess
// says how a name was read. A name rule that does not match a name is also
// tried on it without leading qualifiers such as billing_, shipping_,
// contact_, home_, work_, primary_, emergency_ (scanPrefixes):
// contact_first_name is a first name, work_tel a phone number.
//
// Each identity's comment says how the connector will compare the column
// by default (identityComparison): a citext column case-insensitively by
// its type; an email in another text column with lower(column), naming the
// index on lower(column) that serves it or giving the CREATE INDEX
// statement when there is none; everything else exactly.
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
//   - email, e_mail, email_address, mail, *_email, *_email_address holding text:
//     email, but only on an account table or on a table with no NOT NULL
//     foreign key to an account table (when every row must name an account,
//     the account reaches the row; otherwise the address may be the only way
//     to find it; invoices.billing_email is not an identity,
//     support_tickets.email is)
//   - the primary key of a table whose name's last word is visitor(s): visitor
//
// References. Each foreign-key column becomes `{field: col, to:
// system.table.refcol}` (a composite key gives one per column), listed in
// column order: the row is owned by whoever owns the row it refers to
// (orders.customer_id -> customers.id). Drafted with an ownership
// (datamap.Reference.Ownership) instead, the comment saying why:
//   - relationship: a self-referencing foreign key of a table with
//     identities (employees.manager_id, users.referred_by), and a foreign
//     key from a table with identities to another table with identities
//     whose column does not name that table (customers.support_rep_id ->
//     staff; customer_id -> customers, user_id or owner_user_id -> users
//     name it): two people, and owning would hand one's rows to the other;
//   - shared: a foreign key into a table that no identity reaches along
//     ownership (an address, a lookup table, plans, teams) is drafted on
//     that table's side, as an up reference from the referring table
//     (address: `{field: id, to: system.customers.address_id, ownership:
//     shared}`), with how many tables hold its rows; the referring table
//     notes it. The data map takes one reference a field, so further
//     referring tables get the same reference commented out; tables that
//     gain a reference this way are reached in turn (countries, referred
//     to by address).
//
// Left out, with a comment saying why: a column of a self-referencing
// foreign key of a table without identities (followed from the person's row
// it would reach other people's rows, such as replies to their comments), a
// column that already has a reference from a foreign key earlier in name
// order, and, commented out, a foreign key into a shared table from a table
// no identity reaches (stores.address_id).
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
//  4. name rules (scanRules below): email, phone (phone, mobile, cell, fax,
//     tel, msisdn; user.contact: there is no phone category),
//     ip/ip_address/*_ip/ipv4/ipv6 or type inet/cidr
//     (user.device.ip_address; system.log.ip_address in tables whose last
//     word is log or logs), user_agent, credentials (password, secret, token,
//     *_token, *_secret, api_key, ...), first, last, middle, full and
//     display names, username, address words (address, address1, street,
//     city, town, postal, postcode, zip, country, province, apartment, ...),
//     location, language, marketing preferences, images, prompts, errors,
//     free text a person wrote (message, body, comment, note, feedback,
//     subject, text, bio, about, reply, ...), tax ids, credits, payment
//     amounts (amount, currency, price, subtotal, cents, fee, discount,
//     refund, ...), payment methods, risk flags, impersonation, role,
//     user_id/*_user_id (user.unique_id), visitor and device ids
//     (user.unique_id.pseudonymous), dates and places of birth (dob,
//     birthday, birth_date, date_of_birth, born_on; user: there is no
//     narrower category)
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
	// compared says how the connector will compare the column (see
	// identityComparison), with the index it needs when it has none.
	compared string
}

type scanRef struct {
	field, to, why string
	// table is the table referred to (for a shared up reference, the
	// referring table).
	table string
	// refCol is the column referred to; fk describes the foreign key.
	refCol, fk string
	// ownership is drafted when not empty (the default, owns).
	ownership string
	// out says why the reference is drafted commented out, "" when it is
	// not.
	out string
}

type scanDataset struct {
	id string
	// idWhy says why the id is not the table's name ("" when it is).
	idWhy      string
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
	cat    *Catalog
	system string
	// names are the tables drafted as datasets, in name order: every table
	// but inheritance children.
	names    []string
	datasets map[string]*scanDataset // by table name
	// account[t] is the number of other tables referring to account table
	// t's key; absent for other tables.
	account map[string]int
}

func newScanner(cat *Catalog, system string) *scanner {
	s := &scanner{cat: cat, system: system, datasets: map[string]*scanDataset{}, account: map[string]int{}}
	for _, name := range cat.TableNames() {
		if t := cat.Tables[name]; len(t.Parents) == 0 {
			s.names = append(s.names, name)
		}
	}
	ids := scanDatasetIDs(s.names)
	for _, name := range s.names {
		t := cat.Tables[name]
		s.datasets[name] = &scanDataset{id: ids[name][0], idWhy: ids[name][1], table: t, fields: map[string]scanGuess{}}
		if n := referringTables(t); n >= 2 && scanLastWordIn(name, "user", "users", "account", "accounts", "member", "members", "customer", "customers", "profile", "profiles") {
			s.account[name] = n
		}
	}
	for _, name := range s.names {
		s.identities(s.datasets[name])
	}
	for _, name := range s.names {
		s.references(s.datasets[name])
		s.relations(s.datasets[name])
		s.triggers(s.datasets[name])
	}
	s.shared()
	for _, name := range s.names {
		ds := s.datasets[name]
		for _, col := range ds.table.Order {
			ds.fields[col] = s.category(ds.table, col, 0)
		}
		ds.timestamp = scanTimestamp(ds.table)
	}
	s.reach()
	return s
}

// scanDatasetIDs gives each table a dataset id: its name when that is a
// valid id, else the name in snake_case (CustomerNotes: customer_notes),
// made unique; with why for the latter.
func scanDatasetIDs(tables []string) map[string][2]string {
	out := map[string][2]string{}
	taken := map[string]bool{}
	for _, t := range tables {
		if scanIDRe.MatchString(t) {
			out[t] = [2]string{t, ""}
			taken[t] = true
		}
	}
	for _, t := range tables {
		if _, ok := out[t]; ok {
			continue
		}
		var b strings.Builder
		for _, r := range scanSnake(t) {
			if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' {
				b.WriteRune(r)
			}
		}
		base := strings.Trim(b.String(), "_")
		if base == "" || base[0] < 'a' || base[0] > 'z' {
			base = "t_" + base
		}
		if len(base) > 56 {
			base = base[:56]
		}
		id := base
		for i := 2; taken[id] || !scanIDRe.MatchString(id); i++ {
			id = fmt.Sprintf("%s_%d", strings.TrimRight(base, "_"), i)
		}
		taken[id] = true
		out[t] = [2]string{id, fmt.Sprintf("the table's name is not a dataset id (%s): the id is derived from it, and table: keeps the name", scanIDRe)}
	}
	return out
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

// scanSnake writes a name in lower snake_case, the form the rules match:
// camelCase and PascalCase are split at their capitals (billingEmail,
// IPAddress, userID: billing_email, ip_address, user_id), and spaces,
// hyphens and other punctuation become "_".
func scanSnake(name string) string {
	rs := []rune(name)
	var b strings.Builder
	for i, r := range rs {
		switch {
		case unicode.IsUpper(r):
			if i > 0 && (unicode.IsLower(rs[i-1]) || unicode.IsDigit(rs[i-1]) ||
				unicode.IsUpper(rs[i-1]) && i+1 < len(rs) && unicode.IsLower(rs[i+1])) {
				b.WriteByte('_')
			}
			b.WriteRune(unicode.ToLower(r))
		case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

// scanWords splits a name into its lower-cased words (see scanSnake).
func scanWords(name string) []string { return strings.Split(scanSnake(name), "_") }

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
	n = scanSnake(n)
	return n == "email" || n == "e_mail" || n == "email_address" || n == "emailaddress" || n == "mail" ||
		strings.HasSuffix(n, "_email") || strings.HasSuffix(n, "_email_address") || strings.HasSuffix(n, "_e_mail")
}

// scanPrefixes are first words that say whose or which a value is
// (billing_phone, contact_first_name, shipping_zip): the rules also look at
// the name without them.
var scanPrefixes = []string{"billing", "shipping", "delivery", "mailing", "postal", "invoice", "contact", "customer", "client",
	"home", "work", "business", "company", "personal", "private", "primary", "secondary", "alt", "alternate", "alternative",
	"other", "backup", "recovery", "emergency", "legal", "recipient", "sender", "owner", "holder", "cardholder", "guardian",
	"parent", "spouse", "current", "previous", "former", "new", "old", "main", "preferred", "verified", "unverified", "user", "account", "profile"}

// scanUnprefixed is a snake_case name without its leading scanPrefixes,
// one more stripped each time while a word is left:
// emergency_contact_name gives contact_name, then name.
func scanUnprefixed(n string) []string {
	w := strings.Split(n, "_")
	var out []string
	for i := 0; i < len(w)-1 && slices.Contains(scanPrefixes, w[i]); i++ {
		out = append(out, strings.Join(w[i+1:], "_"))
	}
	return out
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
		for _, name := range t.Order {
			if scanSnake(name) == p && t.Columns[name].textLike() {
				provider = name
				break
			}
		}
		if provider != "" {
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
		n := scanSnake(name)
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
			id = scanIdentity{typ: "email", why: "an email address" + scanRead(name, n) + " on an account table"}
		case isEmailName(name) && col.textLike() && !needsAccount:
			id = scanIdentity{typ: "email", why: "an email address" + scanRead(name, n) + "; no NOT NULL foreign key ties every row to an account table"}
		case name == pk && isAccount:
			id = scanIdentity{typ: "user", why: fmt.Sprintf("the account table's primary key (the table's name says accounts, and %d tables refer to it)", s.account[t.Name])}
		case name == pk && scanLastWordIn(t.Name, "visitor", "visitors"):
			id = scanIdentity{typ: "visitor", why: "primary key of a visitors table: an anonymous visitor id"}
		default:
			continue
		}
		id.field = name
		id.compared = scanCompared(s.cat.Schema, t, col, id.typ)
		ds.identities = append(ds.identities, id)
	}
}

// scanCompared says how the connector compares an identity column by
// default (identityComparison), and for lower(column) whether an index
// serves it or which statement creates one.
func scanCompared(schema string, t *Table, col *Column, typ string) string {
	switch identityComparison(col, typ, "", false) {
	case compareCitext:
		return "citext: compared case-insensitively (the column's type)"
	case compareLower:
		if ix := t.LowerIndex(col.Name); ix != nil {
			return fmt.Sprintf("compared case-insensitively: lower(%s), served by index %s", scanShow(col.Name), scanShow(ix.Name))
		}
		return fmt.Sprintf("compared case-insensitively: lower(%s); no index on lower(%s), so each lookup reads the table: %s, or add match: exact if the application stores the values lower-cased",
			scanShow(col.Name), scanShow(col.Name), scanShow(CreateLowerIndex(schema, t, col.Name)))
	}
	return "compared exactly"
}

func (ds *scanDataset) identity(col string) *scanIdentity {
	for i := range ds.identities {
		if ds.identities[i].field == col {
			return &ds.identities[i]
		}
	}
	return nil
}

// references turns foreign keys into references (see Scan): a
// relationship between two people's tables is drafted as such, the rest as
// ownership for now (shared turns the ones into shared tables around).
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
			if fk.OnPartitions {
				on = fmt.Sprintf("foreign key %s (and its like on every partition or child) to %s(%s)", scanShow(fk.Name), scanShow(fk.RefTable), scanShowList(fk.RefColumns))
			}
			if len(fk.Columns) > 1 {
				on += fmt.Sprintf(", column %d of %d", i+1, len(fk.Columns))
			}
			why := on
			if fk.OnDelete != "" {
				why += ", ON DELETE " + fk.OnDelete
			}
			ref := scanRef{field: col, to: s.system + "." + target.id + "." + fk.RefColumns[i], why: why, table: fk.RefTable, refCol: fk.RefColumns[i], fk: on}
			switch {
			case has[col]:
				ds.notes = append(ds.notes, fmt.Sprintf("%s: %s left out as a reference: the column already has one", scanShow(col), on))
				continue
			case fk.RefTable == t.Name && len(ds.identities) == 0:
				ds.notes = append(ds.notes, fmt.Sprintf("%s: %s left out as a reference: it refers to this table, and following it would reach other people's rows", scanShow(col), on))
				continue
			case fk.RefTable == t.Name:
				ref.ownership = "relationship"
				ref.why += "; it refers to this table, whose rows are people's (it has identities): " + scanRelationshipWhy
			case len(ds.identities) > 0 && len(target.identities) > 0 && !scanNamesTable(col, fk.RefColumns[i], fk.RefTable):
				ref.ownership = "relationship"
				ref.why += fmt.Sprintf("; both tables hold identities and %s does not name %s: %s", scanShow(col), scanShow(fk.RefTable), scanRelationshipWhy)
			}
			has[col] = true
			ds.refs = append(ds.refs, ref)
		}
	}
	s.sortRefs(ds)
}

// scanRelationshipWhy is the review comment of a relationship reference.
const scanRelationshipWhy = "a relationship between two people, not ownership: following it would hand one person's rows to the other"

// sortRefs puts a dataset's references in table order, like the fields.
func (s *scanner) sortRefs(ds *scanDataset) {
	t := ds.table
	slices.SortStableFunc(ds.refs, func(a, b scanRef) int { return slices.Index(t.Order, a.field) - slices.Index(t.Order, b.field) })
}

// scanNamesTable reports whether a foreign-key column names the table it
// refers to, as a column holding its owner's key does (user_id or
// owner_user_id -> users, customer_id -> customers, tg_user_id ->
// tg_users(tg_id), address_id -> addresses, or the referenced column's own
// name), rather than a role (support_rep_id -> staff, reports_to,
// assigned_to, created_by).
func scanNamesTable(col, refCol, table string) bool {
	c, rc := scanSnake(col), scanSnake(refCol)
	if c == rc {
		return true
	}
	base := c
	switch {
	case strings.HasSuffix(c, "_"+rc):
		base = strings.TrimSuffix(c, "_"+rc)
	case strings.HasSuffix(c, "_id"):
		base = strings.TrimSuffix(c, "_id")
	}
	forms := func(n string) []string {
		out := []string{n, strings.TrimSuffix(n, "s"), strings.TrimSuffix(n, "es")}
		if strings.HasSuffix(n, "ies") {
			out = append(out, strings.TrimSuffix(n, "ies")+"y")
		}
		return out
	}
	tn := scanSnake(table)
	w := strings.Split(tn, "_")
	names := append(forms(tn), forms(w[len(w)-1])...)
	for _, b := range append([]string{base}, scanUnprefixed(base)...) {
		if slices.Contains(names, b) {
			return true
		}
	}
	return false
}

// shared drafts the references into shared tables (see Scan): a foreign key
// into a table no identity reaches along ownership (an address, a lookup
// table, plans, teams) is drafted from that table's side, as a shared up
// reference from the referring table, so the table is reviewed instead of
// handed to whoever references a row of it.
func (s *scanner) shared() {
	owned := s.reachFrom(func(r scanRef) bool { return r.ownership == "" })
	type pending struct {
		ds  *scanDataset
		ref scanRef
	}
	var todo []pending
	for _, name := range s.names {
		ds := s.datasets[name]
		var keep []scanRef
		for _, r := range ds.refs {
			if r.ownership == "" && !owned[r.table] && r.table != name {
				todo = append(todo, pending{ds, r})
				continue
			}
			keep = append(keep, r)
		}
		ds.refs = keep
	}
	if len(todo) == 0 {
		return
	}
	// Referring tables with identities first, so a table held by people's
	// rows is drafted from them.
	slices.SortStableFunc(todo, func(a, b pending) int {
		ai, bi := len(a.ds.identities) > 0, len(b.ds.identities) > 0
		switch {
		case ai && !bi:
			return -1
		case bi && !ai:
			return 1
		}
		return strings.Compare(a.ds.id, b.ds.id)
	})
	reached := maps.Clone(owned)
	done := make([]bool, len(todo))
	for changed := true; changed; {
		changed = false
		for i, p := range todo {
			if done[i] || !reached[p.ds.table.Name] {
				continue
			}
			done[i], changed = true, true
			target := s.datasets[p.ref.table]
			reached[p.ref.table] = true
			holders := scanHolders(target.table)
			up := scanRef{field: p.ref.refCol, to: s.system + "." + p.ds.id + "." + p.ref.field, table: p.ds.table.Name, ownership: "shared",
				why: fmt.Sprintf("%s.%s: %s, drafted from this side as no identity reaches this table along ownership: held by %d %s (%s); set owns only if a row referenced by one person alone is theirs",
					scanShow(p.ds.table.Name), scanShow(p.ref.field), p.ref.fk, len(holders), scanPlural(len(holders), "table", "tables"), scanShowSome(holders))}
			if slices.ContainsFunc(target.refs, func(r scanRef) bool { return r.field == up.field && r.out == "" }) {
				up.out = fmt.Sprintf("%s already has a reference and the data map takes one a field; this one would be shared too, so leaving it out hides nothing", scanShow(up.field))
			}
			target.refs = append(target.refs, up)
			p.ds.notes = append(p.ds.notes, fmt.Sprintf("%s: %s is drafted in %s as a shared reference: %s is held by %d %s, not by one person", scanShow(p.ref.field), p.ref.fk, target.id, scanShow(p.ref.table), len(holders), scanPlural(len(holders), "table", "tables")))
		}
	}
	for i, p := range todo {
		if done[i] {
			continue
		}
		target := s.datasets[p.ref.table]
		holders := scanHolders(target.table)
		r := p.ref
		r.out = fmt.Sprintf("no identity reaches this table or %s, which is held by %d %s (%s): a row of it is no one person's, so following this reference would hand this table's rows to nobody, or to the wrong person once it is set to owns",
			scanShow(p.ref.table), len(holders), scanPlural(len(holders), "table", "tables"), scanShowSome(holders))
		p.ds.refs = append(p.ds.refs, r)
	}
	for _, name := range s.names {
		s.sortRefs(s.datasets[name])
	}
}

// scanHolders are the other tables whose foreign keys refer to t, in name
// order.
func scanHolders(t *Table) []string {
	var out []string
	for _, fk := range t.Incoming {
		if fk.Table != t.Name && !slices.Contains(out, fk.Table) {
			out = append(out, fk.Table)
		}
	}
	slices.Sort(out)
	return out
}

func scanPlural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// scanListMax bounds the names a note lists.
const scanListMax = 8

func scanShowSome(names []string) string {
	if len(names) <= scanListMax {
		return scanShowList(names)
	}
	return fmt.Sprintf("%s and %d more", scanShowList(names[:scanListMax]), len(names)-scanListMax)
}

// relations notes a partitioned table's partitions and an inheritance
// parent's children, which are not datasets of their own (see Scan).
func (s *scanner) relations(ds *scanDataset) {
	t := ds.table
	if t.Partitioned {
		if len(t.Partitions) == 0 {
			ds.notes = append(ds.notes, "a partitioned table without partitions yet")
		} else {
			ds.notes = append(ds.notes, fmt.Sprintf("a partitioned table: its partitions (%s) are not datasets of their own; a query on it reads them all", scanShowSome(t.Partitions)))
		}
	}
	if len(t.Children) == 0 {
		return
	}
	var all, extra []string
	var walk func(name string)
	walk = func(name string) {
		for _, c := range s.cat.Tables[name].Children {
			if slices.Contains(all, c) {
				continue
			}
			all = append(all, c)
			for _, col := range s.cat.Tables[c].Order {
				if !t.has(col) {
					extra = append(extra, c+"."+col)
				}
			}
			walk(c)
		}
	}
	walk(t.Name)
	note := fmt.Sprintf("inheritance children %s are not drafted as datasets: a query on this table reads their rows too, so this dataset covers them", scanShowSome(all))
	if len(extra) > 0 {
		note += fmt.Sprintf("; columns only a child has are not reached through it (%s): map that child as a dataset of its own if they hold personal data, knowing its rows are then reached twice", scanShowSome(extra))
	}
	ds.notes = append(ds.notes, note)
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
	return c.lastWord("ip", "ipv4", "ipv6", "ipaddr", "ipaddress") || strings.Contains(c.n, "ip_addr") ||
		c.is("remote_addr", "x_forwarded_for", "forwarded_for") || c.Base == "inet" || c.Base == "cidr"
}

func (c scanCol) inLogTable() bool { return scanLastWordIn(c.table.Name, "log", "logs") }

// scanRules are Scan's name rules, in order. Every category here must exist
// in policies/data/categories.json (the tests check).
var scanRules = []scanRule{
	{func(c scanCol) bool { return isEmailName(c.n) && c.textLike() },
		"user.contact.email", "an email address, from the column name"},
	{func(c scanCol) bool {
		return c.notDate() && (c.hasWord("phone", "phones", "phonenumber", "mobile", "telephone", "msisdn", "cellphone", "cell", "fax", "whatsapp") || c.is("tel"))
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
	{func(c scanCol) bool {
		return c.textLike() && c.is("first_name", "firstname", "given_name", "givenname", "forename", "fname")
	}, "user.name.first", "a first name, from the column name"},
	{func(c scanCol) bool {
		return c.textLike() && c.is("last_name", "lastname", "family_name", "familyname", "surname", "lname")
	}, "user.name.last", "a last name, from the column name"},
	{func(c scanCol) bool {
		return c.textLike() && (c.is("username", "user_name", "login", "handle") || c.suffix("_username"))
	}, "user.account.username", "a username, from the column name"},
	{func(c scanCol) bool {
		if !c.textLike() {
			return false
		}
		if c.is("full_name", "fullname", "display_name", "displayname", "nickname", "real_name", "legal_name", "middle_name", "maiden_name", "person_name", "name_full") {
			return true
		}
		w := scanWords(c.n)
		return len(w) == 2 && w[1] == "name" && slices.Contains([]string{"billing", "contact", "customer", "company", "holder", "cardholder", "recipient", "sender", "owner"}, w[0])
	}, "user.name", "a person's or company's name, from the column name"},
	{func(c scanCol) bool {
		return c.notDate() && c.hasWord("address", "address1", "address2", "address3", "addr", "street", "street1", "street2",
			"city", "town", "postal", "postcode", "postalcode", "zip", "zipcode", "country", "province", "county", "apartment", "apt", "suite", "house")
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
	{func(c scanCol) bool {
		return c.Category != "B" && c.hasWord("dob", "birthday", "birthdate", "birth", "birthplace", "born")
	}, "user", "a date or place of birth, from the column name (categories.json has no narrower category)"},
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
		return c.lastWord("message", "messages", "msg", "body", "comment", "comments", "note", "notes", "feedback", "subject", "text",
			"bio", "biography", "about", "reply", "answer", "question", "transcript", "remarks") || c.is("about_me")
	}, "user.content.message", "a message or free text a person wrote, from the column name"},
	{func(c scanCol) bool {
		return c.is("tax_id", "vat_id", "vat_number", "tax_number") || c.suffix("_tax_id", "_vat_id")
	}, "user.financial.tax_id", "a tax or VAT id, from the column name"},
	{func(c scanCol) bool { return c.hasWord("card", "last4", "iban", "bic") },
		"user.financial.payment_method", "a payment method, from the column name"},
	{func(c scanCol) bool { return c.hasWord("credit", "credits", "balance") },
		"user.financial.credits", "credits or a balance, from the column name"},
	{func(c scanCol) bool {
		return c.notDate() && c.hasWord("amount", "amounts", "currency", "price", "subtotal", "cents", "fee", "fees", "discount", "tip", "refund", "refunded", "paid", "revenue")
	}, "user.financial.payment", "a payment amount or currency, from the column name"},
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
	if ds == nil {
		ds = &scanDataset{table: t} // an inheritance child, reached along a foreign key
	}
	col := t.Columns[name]
	n := scanSnake(name)
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
	bare := scanUnprefixed(n) // the name without its prefixes (billing_, contact_, ...)
	for _, r := range scanRules {
		if r.match(c) {
			return scanGuess{r.category, r.why + scanRead(name, n)}
		}
		for _, u := range bare {
			if b := c; r.match(scanCol{Column: b.Column, table: b.table, n: u, account: b.account}) {
				return scanGuess{r.category, r.why + fmt.Sprintf(" (%s read as %s after its prefix)", scanShow(name), u)}
			}
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

// scanRead says how a name that is not snake_case was read, "" when it is.
func scanRead(name, snake string) string {
	if name == snake {
		return ""
	}
	return fmt.Sprintf(" (%s read as %s)", scanShow(name), snake)
}

// scanTimestamp picks the column that ages records (see Scan).
func scanTimestamp(t *Table) scanGuess {
	for _, name := range t.Order {
		if c := t.Columns[name]; scanSnake(name) == "created_at" && c.Category == "D" {
			return scanGuess{name, "when the row was created ages it for retention"}
		}
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
	for name := range s.reachFrom(func(scanRef) bool { return true }) {
		s.datasets[name].reachable = true
	}
}

// reachFrom is the tables an identity reaches, directly or along the
// drafted references follow accepts.
func (s *scanner) reachFrom(follow func(scanRef) bool) map[string]bool {
	next := map[string][]string{} // table -> tables whose references lead from it
	reached := map[string]bool{}
	var queue []string
	for _, name := range s.names {
		ds := s.datasets[name]
		for _, r := range ds.refs {
			if r.out == "" && follow(r) {
				next[r.table] = append(next[r.table], name)
			}
		}
		if len(ds.identities) > 0 {
			reached[name] = true
			queue = append(queue, name)
		}
	}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		for _, m := range next[n] {
			if !reached[m] {
				reached[m] = true
				queue = append(queue, m)
			}
		}
	}
	return reached
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
#   - put the system under systems: in your own data map, data/datamap.yaml of a
#     directory you lay over the embedded bundle (STEWARD_POLICY_OVERLAY), next to
#     version, processing_purposes and your products, purposes and retention rules;
#     do not edit the reference map, whose systems are another company's;
#   - run `+"`steward policy test`"+` with STEWARD_POLICY_OVERLAY set: it lists every problem.
#
# The format is described in docs/datamap.md; docs/own-database.md walks the whole way.
`, s.cat.Schema)
	if len(s.cat.Skipped) > 0 {
		var skipped []string
		for _, name := range slices.Sorted(maps.Keys(s.cat.Skipped)) {
			skipped = append(skipped, fmt.Sprintf("%s (%s)", scanShow(name), s.cat.Skipped[name]))
		}
		b.WriteString("#\n# Not drafted: views and materialized views have no rows of their own (map the tables they read),\n")
		b.WriteString("# and a foreign table's rows live in another server:\n")
		for _, line := range skipped {
			b.WriteString("#   " + line + "\n")
		}
	}
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
	ids := slices.Clone(s.names)
	slices.SortFunc(ids, func(a, b string) int { return strings.Compare(s.datasets[a].id, s.datasets[b].id) })
	for _, name := range ids {
		ds := s.datasets[name]
		t := ds.table
		var comment string
		switch {
		case ds.idWhy != "" && !ds.reachable:
			comment = review(ds.idWhy + "; no identity or reference reaches this table: if it holds personal data, say how a person is found; otherwise remove it")
		case ds.idWhy != "":
			comment = review(ds.idWhy)
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
				line(5, "- "+v+"}", review(id.why+"; "+id.compared))
			}
		}
		if len(ds.refs) > 0 {
			if slices.ContainsFunc(ds.refs, func(r scanRef) bool { return r.out == "" }) {
				line(4, "references:", "")
			} else {
				line(4, "", "references:") // all left out: an empty list is refused
			}
			for _, r := range ds.refs {
				v := "- {field: " + yamlScalar(r.field) + ", to: " + yamlScalar(r.to)
				if r.ownership != "" {
					v += ", ownership: " + r.ownership
				}
				v += "}"
				if r.out != "" {
					line(5, "# "+v, review(r.why+"; left out: "+r.out))
					continue
				}
				line(5, v, review(r.why))
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

// triggers notes the table's triggers that fire on UPDATE or DELETE, the
// statements an erasure runs: what a trigger function writes cannot be
// known from the schema, so each is listed for review, with the table's
// columns and the schema's other tables its source mentions.
func (s *scanner) triggers(ds *scanDataset) {
	for _, tg := range ds.table.writeTriggers() {
		note := fmt.Sprintf("trigger %s fires on an erasure's %s: it may write columns of the row or rows of other tables, which cannot be known from the schema",
			scanShow(tg.Describe()), strings.Join(slices.DeleteFunc(slices.Clone(tg.Events), func(e string) bool { return e != "UPDATE" && e != "DELETE" }), " and "))
		var others []string
		for _, n := range s.cat.TableNames() {
			if n != ds.table.Name {
				others = append(others, n)
			}
		}
		cols, tables := tg.Mentions(ds.table.Order), tg.Mentions(others)
		switch {
		case tg.Source == "":
			note += "; its function's source cannot be read"
		case len(cols) == 0 && len(tables) == 0:
			note += "; its source names none of the table's columns nor another table of the schema"
		}
		if len(cols) > 0 {
			note += fmt.Sprintf("; its source mentions the columns %s: a field it re-stamps on every UPDATE (a timestamp, a counter) is reported as kept, not erased", scanShowList(cols))
		}
		if len(tables) > 0 {
			note += fmt.Sprintf("; its source mentions the tables %s: if it copies the row there (an audit history), map that table too, so the copies are found and erased", scanShowList(tables))
		}
		ds.notes = append(ds.notes, note)
	}
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
