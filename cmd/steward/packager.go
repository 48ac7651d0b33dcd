package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/steward-privacy/steward/internal/dsar"
	"github.com/steward-privacy/steward/internal/exportpkg"
	"github.com/steward-privacy/steward/internal/policy"
)

// packager builds the package an access or export request ends with, from
// what its tasks disclosed, stores it sealed and returns the link to email.
// It is called from the engine's durable job, after every task succeeded.
func (a *application) packager(holder *policy.Holder) dsar.Packager {
	return func(ctx context.Context, requestID string) (string, time.Time, error) {
		d, err := a.requests.Get(ctx, requestID)
		if err != nil {
			return "", time.Time{}, err
		}
		recs, err := a.requests.DisclosedRecords(ctx, requestID)
		if err != nil {
			return "", time.Time{}, err
		}
		stored, err := a.requests.DisclosedFiles(ctx, requestID)
		if err != nil {
			return "", time.Time{}, err
		}
		e := holder.Current()
		facts, err := exportpkg.FactsFromEngine(e)
		if err != nil {
			return "", time.Time{}, err
		}
		// Describe what was searched: the datasets the plan reached.
		searched := map[string]bool{}
		for _, t := range d.Tasks {
			searched[t.System+"/"+t.Dataset] = true
			searched[t.System+"/"] = true
		}
		systems, err := exportpkg.DescribeSystems(e.DataMap, facts, func(system, dataset string) bool {
			return searched[system+"/"+dataset] || searched[system+"/"]
		})
		if err != nil {
			return "", time.Time{}, err
		}
		in := exportpkg.Input{
			RequestID: d.ID, RequestType: d.Type, Language: d.Language, Regime: d.Regime,
			ReceivedAt: d.ReceivedAt, GeneratedAt: a.clock.Now(),
			Systems: systems, Categories: facts.Categories,
		}
		product := "web"
		if d.SubjectKind == "tg" {
			product = "bot"
		}
		if p, ok := e.Products[product]; ok {
			in.Controller = exportpkg.Controller{Name: p.Controller.Name, Contact: p.Controller.Contact}
		}
		for _, id := range d.Identities {
			if id.Source == "given" {
				in.SubjectKinds = append(in.SubjectKinds, id.Kind)
			}
		}
		for _, r := range recs {
			in.Records = append(in.Records, exportpkg.Record{System: r.System, Record: r.Record})
		}
		for _, f := range stored {
			in.Files = append(in.Files, exportpkg.File{System: f.System, File: f.File, SHA256: f.SHA256,
				Open: func(ctx context.Context) (io.ReadCloser, error) {
					return a.requests.OpenFile(ctx, requestID, f.TaskID, f.Seq)
				}})
		}
		// What an earlier erasure kept, with its basis: the person asking
		// again learns what remains and why.
		prior, err := a.requests.PriorRetained(ctx, requestID)
		if err != nil {
			return "", time.Time{}, err
		}
		for _, rt := range prior {
			in.Retained = append(in.Retained, exportpkg.RetainedItem{System: rt.System, Dataset: rt.Dataset, Field: rt.Field,
				Category: rt.Category, Action: rt.Action, Basis: rt.Basis, Until: rt.Until})
		}
		p, token, err := a.exports.Create(ctx, requestID, func(w io.Writer) error {
			_, err := exportpkg.Build(ctx, w, in)
			return err
		})
		if err != nil {
			return "", time.Time{}, fmt.Errorf("export package: %w", err)
		}
		return exportLinkBase(a.cfg.ExportURL, a.cfg.Addr) + token, p.ExpiresAt, nil
	}
}

// exportLinkBase is where download links point: STEWARD_EXPORT_URL, or this
// replica's own address when unset (a local deployment).
func exportLinkBase(configured, addr string) string {
	if configured != "" {
		if !strings.HasSuffix(configured, "/") {
			configured += "/"
		}
		return configured
	}
	host := addr
	if strings.HasPrefix(host, ":") || strings.HasPrefix(host, "0.0.0.0:") {
		host = "127.0.0.1" + host[strings.LastIndex(host, ":"):]
	}
	return "http://" + host + "/v1/exports/"
}
