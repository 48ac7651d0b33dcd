package testutil

import (
	"slices"
	"time"
)

// Paired compares a path with its baseline, measured in the same run, for
// the benchmarks that report a ratio. Each round times both for the same
// number of operations, alternating which goes first, so both meet the same
// load; the median of the rounds' ratios resists a machine whose other work
// comes and goes, where one long run each would mostly measure the
// scheduler.
type Paired struct {
	Took, BaseTook time.Duration // summed over every round
	Ops            int           // operations per side
	ratios         []float64
}

// Rounds runs rounds pairs of per operations: path(n) and base(n) do n
// operations and return how long they took.
func (p *Paired) Rounds(rounds, per int, path, base func(n int) time.Duration) {
	for r := range rounds {
		var took, baseTook time.Duration
		if r%2 == 0 {
			baseTook = base(per)
			took = path(per)
		} else {
			took = path(per)
			baseTook = base(per)
		}
		p.Took += took
		p.BaseTook += baseTook
		p.Ops += per
		p.ratios = append(p.ratios, baseTook.Seconds()/took.Seconds())
	}
}

// Ratio is the median of the rounds' baseline/path time ratios: 1 is as
// fast as the baseline, 0.5 half as fast. 0 before any round.
func (p *Paired) Ratio() float64 {
	if len(p.ratios) == 0 {
		return 0
	}
	r := slices.Clone(p.ratios)
	slices.Sort(r)
	return r[len(r)/2]
}

// Rates are the path's and the baseline's operations per second.
func (p *Paired) Rates() (path, base float64) {
	return float64(p.Ops) / p.Took.Seconds(), float64(p.Ops) / p.BaseTook.Seconds()
}
