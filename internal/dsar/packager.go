package dsar

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/steward-privacy/steward/internal/exportpkg"
	"github.com/steward-privacy/steward/internal/exports"
)

// exportPackager is the Packager of a deployment with an export store: it
// builds the package from what the request's tasks disclosed (exportpkg),
// stores it sealed in store and returns its link under linkBase. It runs
// in the engine's durable job, after every task succeeded.
func (s *Service) exportPackager(store *exports.Store, linkBase string) Packager {
	return func(ctx context.Context, requestID string) (string, time.Time, error) {
		in, err := s.packageInput(ctx, requestID)
		if err != nil {
			return "", time.Time{}, err
		}
		p, token, err := store.Create(ctx, requestID, func(w io.Writer) error {
			_, err := exportpkg.Build(ctx, w, in)
			return err
		})
		if err != nil {
			return "", time.Time{}, fmt.Errorf("export package: %w", err)
		}
		return linkBase + token, p.ExpiresAt, nil
	}
}

// productOf is the product whose controller answers a request: the bot's
// for a request made by Telegram identity, else the web product's.
func productOf(subjectKind string) string {
	if subjectKind == "tg" {
		return "bot"
	}
	return "web"
}

// packageInput gathers what a request's package holds: the records and
// files its tasks disclosed, what was searched, what an earlier erasure
// kept and why, and who the controller is.
func (s *Service) packageInput(ctx context.Context, requestID string) (exportpkg.Input, error) {
	d, err := s.Get(ctx, requestID)
	if err != nil {
		return exportpkg.Input{}, err
	}
	recs, err := s.DisclosedRecords(ctx, requestID)
	if err != nil {
		return exportpkg.Input{}, err
	}
	stored, err := s.DisclosedFiles(ctx, requestID)
	if err != nil {
		return exportpkg.Input{}, err
	}
	e := s.Policies.Current()
	facts, err := exportpkg.FactsFromEngine(e)
	if err != nil {
		return exportpkg.Input{}, err
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
		return exportpkg.Input{}, err
	}
	in := exportpkg.Input{
		RequestID: d.ID, RequestType: d.Type, Language: d.Language, Regime: d.Regime,
		ReceivedAt: d.ReceivedAt, GeneratedAt: s.Clock.Now(),
		Systems: systems, Categories: facts.Categories,
	}
	if p, ok := e.Products[productOf(d.SubjectKind)]; ok {
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
				return s.OpenFile(ctx, requestID, f.TaskID, f.Seq)
			}})
	}
	// What an earlier erasure kept, with its basis: the person asking
	// again learns what remains and why.
	prior, err := s.PriorRetained(ctx, requestID)
	if err != nil {
		return exportpkg.Input{}, err
	}
	for _, rt := range prior {
		in.Retained = append(in.Retained, exportpkg.RetainedItem{System: rt.System, Dataset: rt.Dataset, Field: rt.Field,
			Category: rt.Category, Action: rt.Action, Basis: rt.Basis, Until: rt.Until})
	}
	return in, nil
}
