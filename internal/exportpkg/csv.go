package exportpkg

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// KeyColumn heads the first column of every CSV: the record's key.
const KeyColumn = "record_key"

// utf8BOM starts every CSV so that spreadsheet programs read it as UTF-8
// (Excel otherwise shows Cyrillic as mojibake); CSV readers skip it.
const utf8BOM = "\ufeff"

// writeCSVs writes one CSV per dataset with records.
func (b *builder) writeCSVs(ctx context.Context) error {
	for _, g := range b.groups {
		if g.csvPath == "" {
			continue
		}
		_, err := b.entry(ctx, g.csvPath, zip.Deflate, func(w io.Writer) error {
			return b.encodeCSV(ctx, g, w)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func (b *builder) encodeCSV(ctx context.Context, g *group, w io.Writer) error {
	if _, err := io.WriteString(w, utf8BOM); err != nil {
		return err
	}
	cw := csv.NewWriter(w) // buffered
	cw.UseCRLF = true      // RFC 4180
	col := make(map[string]int, len(g.columns))
	row := make([]string, len(g.columns)+1)
	row[0] = neutralize(KeyColumn)
	for i, c := range g.columns {
		col[c] = i + 1
		row[i+1] = neutralize(strings.ToValidUTF8(c, "\uFFFD"))
	}
	if err := cw.Write(row); err != nil {
		return err
	}
	set := make([]bool, len(row))
	for n, ri := range g.records {
		if n%256 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		r := &b.in.Records[ri]
		clear(row)
		clear(set)
		row[0] = neutralize(strings.ToValidUTF8(r.Key, "\uFFFD"))
		for _, f := range r.Fields {
			i := col[f.Field]
			if set[i] {
				continue // a repeated field: data.json has every occurrence
			}
			set[i] = true
			text, err := cellText(f.Value)
			if err != nil {
				return fmt.Errorf("exportpkg: record %d (%s/%s) field %q: %w", ri, r.System, r.Dataset, f.Field, err)
			}
			row[i] = text
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// cellText renders a value as a CSV cell: text as it is, numbers and
// booleans as JSON writes them, null as an empty cell, objects and arrays
// as compact JSON; the result is neutralized (see neutralize), except a
// number's, which a spreadsheet reads as a number whatever its sign.
func cellText(v any) (string, error) {
	switch x := v.(type) {
	case nil:
		return "", nil
	case string:
		return neutralize(strings.ToValidUTF8(x, "\uFFFD")), nil
	case bool:
		return strconv.FormatBool(x), nil
	case json.Number:
		if _, err := strconv.ParseFloat(string(x), 64); err != nil {
			return neutralize(string(x)), nil
		}
		return string(x), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return "", fmt.Errorf("value is not a finite number")
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", fmt.Errorf("value is not representable as JSON: %w", err)
	}
	out := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	switch {
	case len(out) > 0 && out[0] == '"': // a type that marshals to a string (time.Time, ...)
		var s string
		if err := json.Unmarshal(out, &s); err != nil {
			return "", err
		}
		return neutralize(s), nil
	case string(out) == "null":
		return "", nil
	case len(out) > 0 && (out[0] == '-' || out[0] >= '0' && out[0] <= '9'):
		return string(out), nil // a number
	}
	return neutralize(string(out)), nil
}

// neutralize defends against CSV (formula) injection: a cell that a
// spreadsheet would run as a formula, one starting with = + - @, a tab, a
// carriage return or a line feed (or their full-width forms, which some
// spreadsheets read as the ASCII ones), possibly after spaces, gets a
// single quote in front, so it is shown as text. The quote is part of the
// cell's text; data.json has the value unchanged.
func neutralize(s string) string {
	t := strings.TrimLeft(s, " ")
	if t == "" {
		return s
	}
	r, _ := utf8.DecodeRuneInString(t)
	switch r {
	case '=', '+', '-', '@', '\t', '\r', '\n', '＝', '＋', '－', '＠':
		return "'" + s
	}
	return s
}
