package consent

import (
	"context"

	"github.com/steward-privacy/steward/internal/policy"
	"github.com/steward-privacy/steward/internal/receipt"
)

// Receipt is the ISO/IEC TS 27560 receipt of a recorded event, with the
// purpose, regime and controller as the bundle eng describes them. The API
// and the privacy center both hand these out, so both build them here.
func Receipt(ctx context.Context, eng *policy.Engine, ev Event) receipt.Receipt {
	p := eng.Purposes[ev.Purpose]
	prod := eng.Products[ev.Product]
	regime := ""
	if ev.Jurisdiction != "" {
		// The smallest input that makes the policy name the regime the
		// event was recorded under.
		in := policy.ConsentInput{Purpose: ev.Purpose, Jurisdiction: ev.Jurisdiction, Product: ev.Product, Age: -1}
		if d, err := eng.DecideConsent(ctx, in); err == nil {
			regime = d.Regime
		}
	}
	return receipt.Build(receipt.Event{
		ID: ev.ID, SubjectHash: ev.SubjectHash, SubjectType: ev.SubjectKind, Purpose: ev.Purpose, DataUse: p.DataUse,
		DPVPurpose: p.DPV, PurposeName: p.Name, State: ev.State, Source: ev.Source, NoticeVersion: ev.NoticeVersion,
		Jurisdiction: ev.Jurisdiction, Regime: regime, Language: ev.Language, Product: ev.Product, GPC: ev.GPC,
		UserAgent: ev.UserAgent, IPHash: ev.IPHash, RecordedAt: ev.RecordedAt, PolicyRevision: ev.PolicyRevision,
	}, receipt.Controller{Name: prod.Controller.Name, Contact: prod.Controller.Contact})
}
