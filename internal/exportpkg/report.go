package exportpkg

import (
	"archive/zip"
	"bufio"
	"cmp"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	htmltemplate "html/template"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/steward-privacy/steward/internal/notify"
)

// The report's words are files, one per language, so translators work on
// them directly (as internal/notify's templates); the one template takes
// them through t and tf. Messages are plain text: html/template escapes them
// like any value.
//
//go:embed i18n/*.json templates/index.html
var assets embed.FS

// The report is written in the languages of Steward's emails, chosen the
// same way.
var (
	languages         = notify.Languages
	normalizeLanguage = notify.NormalizeLanguage
)

// messages[lang][key] is the text; parsed once at start-up, and a broken
// file fails every test.
var messages = loadMessages()

func loadMessages() map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, lang := range languages {
		src, err := assets.ReadFile("i18n/" + lang + ".json")
		if err != nil {
			panic(err)
		}
		m := map[string]string{}
		if err := json.Unmarshal(src, &m); err != nil {
			panic(fmt.Sprintf("exportpkg: i18n/%s.json: %v", lang, err))
		}
		out[lang] = m
	}
	return out
}

var indexTemplates = parseTemplates()

func parseTemplates() map[string]*htmltemplate.Template {
	out := map[string]*htmltemplate.Template{}
	for _, lang := range languages {
		tr := translator(lang)
		funcs := htmltemplate.FuncMap{
			"t":    tr.t,
			"tf":   tr.tf,
			"join": func(s []string) string { return strings.Join(s, ", ") },
		}
		out[lang] = htmltemplate.Must(htmltemplate.New("index").Funcs(funcs).Option("missingkey=error").ParseFS(assets, "templates/index.html"))
	}
	return out
}

// translator looks messages up in one language; a missing key is an error,
// never a fallback to English.
type translator string

func (l translator) t(key string) (string, error) {
	s, ok := messages[string(l)][key]
	if !ok || s == "" {
		return "", fmt.Errorf("exportpkg: no %s message %q", string(l), key)
	}
	return s, nil
}

// tf is t with {name} placeholders replaced by the values given as name,
// value pairs.
func (l translator) tf(key string, pairs ...string) (string, error) {
	s, err := l.t(key)
	if err != nil {
		return "", err
	}
	if len(pairs)%2 != 0 {
		return "", fmt.Errorf("exportpkg: message %q: placeholders come in name, value pairs", key)
	}
	args := make([]string, 0, len(pairs))
	for i := 0; i < len(pairs); i += 2 {
		args = append(args, "{"+pairs[i]+"}", pairs[i+1])
	}
	return strings.NewReplacer(args...).Replace(s), nil
}

// must is t for Go code: the keys it is given are all tested.
func (l translator) must(key string) string {
	s, err := l.t(key)
	if err != nil {
		return key
	}
	return s
}

// plural picks the form of a "one|few|many" message for n, in CLDR order
// (English: one, other; Russian: one, few, many; Uzbek nouns do not change
// after a numeral).
func (l translator) plural(forms string, n int) string {
	f := strings.Split(forms, "|")
	pick := func(k int) string { return f[min(k, len(f)-1)] }
	switch l {
	case "ru":
		switch m10, m100 := n%10, n%100; {
		case m10 == 1 && m100 != 11:
			return pick(0)
		case m10 >= 2 && m10 <= 4 && (m100 < 12 || m100 > 14):
			return pick(1)
		default:
			return pick(2)
		}
	case "en":
		if n == 1 {
			return pick(0)
		}
		return pick(1)
	}
	return pick(0)
}

var periodRe = regexp.MustCompile(`^(\d{1,5}) (hour|day|week|month|year)s?$`)

// period renders a retention period as the policy words it ("5 years") in
// the language; a wording it does not know is shown as it is.
func (l translator) period(p string) string {
	m := periodRe.FindStringSubmatch(strings.TrimSpace(p))
	if m == nil {
		return p
	}
	n, _ := strconv.Atoi(m[1])
	return m[1] + " " + l.plural(l.must("unit."+m[2]), n)
}

// retention says how long a dataset is kept, in the language.
func (l translator) retention(r Retention) string {
	var until string
	if r.Until != "" {
		if s, err := l.t("ret.until." + r.Until); err == nil {
			until = s
		} else {
			until = r.Until
		}
	}
	var text string
	switch {
	case r.Period != "" && until != "":
		text, _ = l.tf("ret.period_or_until", "period", l.period(r.Period), "until", until)
	case r.Period != "":
		text, _ = l.tf("ret.period", "period", l.period(r.Period))
	case until != "":
		text = until
	default:
		return l.must("ret.unknown")
	}
	if then, err := l.t("ret.then." + r.Action); err == nil {
		text += "; " + then
	}
	return text
}

// size renders a byte count with binary units and the language's decimal
// separator.
func (l translator) size(n int64) string {
	units := []string{"size.B", "size.KiB", "size.MiB", "size.GiB"}
	v, u := float64(n), 0
	for v >= 1024 && u < len(units)-1 {
		v /= 1024
		u++
	}
	s := strconv.FormatInt(n, 10)
	if u > 0 {
		s = strconv.FormatFloat(v, 'f', 1, 64)
		if l != "en" {
			s = strings.Replace(s, ".", ",", 1)
		}
	}
	return s + "\u00a0" + l.must(units[u])
}

// The report's view: everything already worded, so the template only lays
// it out.
type view struct {
	Lang, RequestID, RequestType, Received, Generated string
	Controllers                                       []Controller
	// Contacts joins the controllers' contacts (each named when there
	// are several); Authority is the first supervisory authority given.
	Contacts, Authority string
	Kinds               []string
	// NothingFound: no record and no file; the report says so first.
	NothingFound bool
	Purposes     []purposeRow
	Categories   []categoryRow
	Sources      []sourceRow
	Providers    []providerRow
	Retention    []retentionRow
	Automated    string
	Retained     []retainedRow
	// Withheld lists, counts only, the records left out because other
	// people's data is in them; WithheldSummary says so in plain words.
	Withheld        []withheldRow
	WithheldSummary string
	Datasets        []datasetRow
	HasRecords      bool
	Files           []fileRow
	Renamed         bool
	NoteLanguage    bool
}

type purposeRow struct {
	Name  string
	Bases []string
	Data  []string
}

type categoryRow struct{ ID, Name, Description string }

type sourceRow struct{ Data, Source string }

type providerRow struct {
	Name, Provider     string
	Regions, Safeguard string
	Data               []string
}

type retentionRow struct {
	Data, Text string
	Categories []string
}

type retainedRow struct{ Data, Field, Category, How, Basis, Until string }

type withheldRow struct {
	Data, Reason string
	Records      int
}

type datasetRow struct {
	Data, Description string
	Records, Files    int
	CSV, CSVHref      string
}

type fileRow struct{ Path, Href, Size, Type, Data string }

// href is a relative link to an entry: each segment percent-encoded, so a
// "#" or "%" in a name links to the file rather than elsewhere.
func href(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// label names a dataset for people: the system's name and the dataset id.
func label(g *group) string {
	name := g.system
	if g.sysInfo != nil && g.sysInfo.Name != "" {
		name = g.sysInfo.Name
	}
	return name + " · " + g.dataset
}

func (b *builder) view() view {
	tr := translator(b.lang)
	in := &b.in
	v := view{Lang: b.lang, RequestID: in.RequestID, Generated: b.mod.Format("2006-01-02 15:04 UTC"),
		Controllers: in.Controllers, NoteLanguage: b.lang != "en", NothingFound: len(in.Records) == 0 && len(in.Files) == 0}
	var contacts []string
	for _, c := range in.Controllers {
		switch {
		case c.Contact == "":
		case len(in.Controllers) > 1 && c.Name != "":
			contacts = append(contacts, c.Contact+" ("+c.Name+")")
		default:
			contacts = append(contacts, c.Contact)
		}
		v.Authority = cmp.Or(v.Authority, c.SupervisoryAuthority)
	}
	v.Contacts = strings.Join(contacts, ", ")
	v.RequestType = tr.must("type." + in.RequestType)
	if !in.ReceivedAt.IsZero() {
		v.Received = in.ReceivedAt.UTC().Format("2006-01-02")
	}
	for _, k := range in.SubjectKinds {
		if s, err := tr.t("kind." + k); err == nil {
			v.Kinds = append(v.Kinds, s)
		} else {
			v.Kinds = append(v.Kinds, k)
		}
	}
	v.Automated = in.AutomatedDecisions
	if strings.TrimSpace(v.Automated) == "" {
		v.Automated = tr.must("automated.none")
	}

	byKey := map[[2]string]*group{}
	// Purposes and providers are rows shared by datasets, in the order
	// first seen.
	var purposes []*purposeRow
	purposeByKey := map[string]*purposeRow{}
	var providers []*providerRow
	providerByID := map[string]*providerRow{}
	provider := func(id, name, processor string, regions []string, safeguard string) *providerRow {
		if p := providerByID[id]; p != nil {
			return p
		}
		p := &providerRow{Name: name, Provider: processor, Regions: "", Safeguard: safeguard}
		if p.Name == "" {
			p.Name = id
		}
		if processor == "" || processor == "self" {
			p.Provider = tr.must("provider.self")
		}
		rs := make([]string, 0, len(regions))
		for _, r := range regions {
			if r == "unspecified" {
				r = tr.must("region.unspecified")
			}
			rs = append(rs, r)
		}
		p.Regions = strings.Join(rs, ", ")
		if p.Regions == "" {
			p.Regions = tr.must("region.unspecified")
		}
		if p.Safeguard == "" {
			p.Safeguard = tr.must("safeguard.none")
		}
		providerByID[id] = p
		providers = append(providers, p)
		return p
	}
	cats := map[string]bool{}
	for _, g := range b.groups {
		byKey[[2]string{g.system, g.dataset}] = g
		data := label(g)
		row := datasetRow{Data: data, Records: len(g.records), Files: g.files, CSV: g.csvPath}
		if g.csvPath != "" {
			row.CSVHref = href(g.csvPath)
		}
		v.HasRecords = v.HasRecords || row.Records > 0 || row.Files > 0
		for _, i := range g.records {
			for _, f := range in.Records[i].Fields {
				cats[f.Category] = true
			}
		}
		if d := g.info; d != nil {
			row.Description = d.Description
			for _, c := range d.Categories {
				cats[c] = true
			}
			if pk := cmp.Or(d.Purpose.ID, d.Purpose.Name); pk != "" {
				p := purposeByKey[pk]
				if p == nil {
					p = &purposeRow{Name: cmp.Or(d.Purpose.Name, d.Purpose.ID)}
					for _, lb := range d.Purpose.LegalBasis {
						if s, err := tr.t("basis." + lb); err == nil {
							p.Bases = append(p.Bases, s)
						} else {
							p.Bases = append(p.Bases, lb)
						}
					}
					purposeByKey[pk] = p
					purposes = append(purposes, p)
				}
				p.Data = append(p.Data, data)
			}
			src := tr.must("source.subject")
			switch d.Source.Kind {
			case SourceAutomatic:
				src = tr.must("source.automatic")
			case SourceProcessor:
				src, _ = tr.tf("source.processor", "name", d.Source.Name)
			}
			v.Sources = append(v.Sources, sourceRow{Data: data, Source: src})
			v.Retention = append(v.Retention, retentionRow{Data: data, Text: tr.retention(d.Retention), Categories: b.categoryNames(d.Categories)})
			s := g.sysInfo
			p := provider(s.ID, s.Name, s.Processor, s.Regions, s.TransferSafeguard)
			p.Data = append(p.Data, data)
			for _, r := range d.Recipients {
				p := provider(r.ID, r.Name, r.Processor, r.Regions, r.TransferSafeguard)
				p.Data = append(p.Data, data)
			}
		}
		v.Datasets = append(v.Datasets, row)
	}
	for _, p := range purposes {
		v.Purposes = append(v.Purposes, *p)
	}
	for _, p := range providers {
		v.Providers = append(v.Providers, *p)
	}

	ids := make([]string, 0, len(cats))
	for c := range cats {
		if c != "" {
			ids = append(ids, c)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		c := in.Categories[id]
		row := categoryRow{ID: id, Name: c.Name, Description: c.Description}
		if row.Name == "" {
			row.Name = id
		}
		v.Categories = append(v.Categories, row)
	}

	for _, r := range in.Retained {
		data := r.System + " · " + r.Dataset
		if g := byKey[[2]string{r.System, r.Dataset}]; g != nil {
			data = label(g)
		}
		how := r.Action
		if s, err := tr.t("action." + r.Action); err == nil {
			how = s
		}
		v.Retained = append(v.Retained, retainedRow{Data: data, Field: r.Field, Category: b.categoryName(r.Category), How: how, Basis: r.Basis, Until: r.Until})
	}

	// Withheld records: named by system and dataset, with why and how
	// many, never a value.
	sysNames := map[string]string{}
	for _, s := range in.Systems {
		if s.Name != "" {
			sysNames[s.ID] = s.Name
		}
	}
	withheld := 0
	for _, w := range in.Withheld {
		reason := tr.must("withheld.reason.other")
		if s, err := tr.t("withheld.reason." + w.Reason); err == nil {
			reason = s
		}
		v.Withheld = append(v.Withheld, withheldRow{Data: cmp.Or(sysNames[w.System], w.System) + " · " + w.Dataset, Reason: reason, Records: w.Records})
		withheld += w.Records
	}
	if withheld > 0 {
		// English needs "was ... it" for one record; Russian and Uzbek put
		// the number after a label and say it the same way for any count.
		key := "withheld.summary.other"
		if withheld == 1 {
			key = "withheld.summary.one"
		}
		v.WithheldSummary, _ = tr.tf(key, "count", strconv.Itoa(withheld))
	}

	for _, pf := range b.files {
		data := pf.System + " · " + pf.Dataset
		if g := byKey[[2]string{pf.System, pf.Dataset}]; g != nil {
			data = label(g)
		}
		v.Files = append(v.Files, fileRow{Path: pf.path, Href: href(pf.path), Size: tr.size(pf.size), Type: pf.ContentType, Data: data})
		v.Renamed = v.Renamed || pf.renamed
	}
	return v
}

func (b *builder) categoryNames(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = b.categoryName(id)
	}
	return out
}

func (b *builder) writeIndex(ctx context.Context) error {
	v := b.view()
	_, err := b.entry(ctx, PathIndex, zip.Deflate, buffered(func(w *bufio.Writer) error {
		if err := indexTemplates[b.lang].ExecuteTemplate(w, "index", v); err != nil {
			return fmt.Errorf("exportpkg: render index.html: %w", err)
		}
		return nil
	}))
	return err
}
