package dsar

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	"github.com/steward-privacy/steward/internal/exportpkg"
	"github.com/steward-privacy/steward/internal/exports"
	"github.com/steward-privacy/steward/internal/policy"
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

// controllersOf names who answers for a request's data: the controllers
// of the products (data map: each system's products) of the systems where
// the request's tasks found records or files or, when they found nothing,
// of the systems searched. A bundle with a single product needs no search:
// its controller answers for everything. Products are taken in id order;
// two products with the same controller name it once. With no system to go
// by (nothing planned), every product's controller is named.
func controllersOf(e *policy.Engine, found, searched []string) []exportpkg.Controller {
	products := map[string]bool{}
	if len(e.Products) == 1 {
		for p := range e.Products {
			products[p] = true
		}
	}
	for _, systems := range [][]string{found, searched} {
		if len(products) > 0 || e.DataMap == nil {
			break
		}
		for _, sys := range systems {
			for _, p := range e.DataMap.Systems[sys].Products {
				if _, ok := e.Products[p]; ok {
					products[p] = true
				}
			}
		}
	}
	if len(products) == 0 {
		for p := range e.Products {
			products[p] = true
		}
	}
	var out []exportpkg.Controller
	seen := map[exportpkg.Controller]bool{}
	for _, p := range slices.Sorted(maps.Keys(products)) {
		c := exportpkg.Controller{Name: e.Products[p].Controller.Name, Contact: e.Products[p].Controller.Contact}
		if (c.Name == "" && c.Contact == "") || seen[c] {
			continue
		}
		seen[c] = true
		out = append(out, c)
	}
	return out
}

// packageInput gathers what a request's package holds: the records and
// files its tasks disclosed, what was searched, what an earlier erasure
// kept and why, what was withheld because other people's data is in it,
// and who the controller is.
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
	var searchedSystems, foundSystems []string
	for _, t := range d.Tasks {
		searched[t.System+"/"+t.Dataset] = true
		searched[t.System+"/"] = true
		searchedSystems = append(searchedSystems, t.System)
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
	for _, id := range d.Identities {
		if givenBy(id.Source) {
			in.SubjectKinds = append(in.SubjectKinds, id.Kind)
		}
	}
	for _, r := range recs {
		in.Records = append(in.Records, exportpkg.Record{System: r.System, Record: r.Record})
		foundSystems = append(foundSystems, r.System)
	}
	for _, f := range stored {
		foundSystems = append(foundSystems, f.System)
	}
	in.Controllers = controllersOf(e, foundSystems, searchedSystems)
	for _, f := range stored {
		in.Files = append(in.Files, exportpkg.File{System: f.System, File: f.File, SHA256: f.SHA256,
			Open: func(ctx context.Context) (io.ReadCloser, error) {
				return s.OpenFile(ctx, requestID, f.TaskID, f.Seq)
			}})
	}
	if err := s.consentRecords(ctx, requestID, &in); err != nil {
		return exportpkg.Input{}, err
	}
	in.Withheld = withheldOf(d.Tasks)
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

// withheldOf is what the request's tasks reached but did not disclose
// because it is not the person's alone (their review items, as stored with
// each task): counts per system, dataset and reason, in task order, and
// never a reference or a holder count. An item without a dataset is
// counted under its task's.
func withheldOf(tasks []Task) []exportpkg.WithheldItem {
	var out []exportpkg.WithheldItem
	at := map[[3]string]int{}
	for _, t := range tasks {
		for _, r := range t.Review {
			if r.Records <= 0 {
				continue
			}
			k := [3]string{t.System, cmp.Or(r.Dataset, t.Dataset), r.Reason}
			if i, ok := at[k]; ok {
				out[i].Records += r.Records
				continue
			}
			at[k] = len(out)
			out = append(out, exportpkg.WithheldItem{System: k[0], Dataset: k[1], Reason: k[2], Records: r.Records})
		}
	}
	return out
}
