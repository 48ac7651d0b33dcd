package policy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Holder serves the current Engine and replaces it on reload. Requests read
// the pointer once and keep their Engine for the whole decision, so a swap
// never drops or mixes a request. A bundle that does not compile, fails its
// own Rego tests or fails data validation is refused: the old one keeps
// serving and the refusal is reported.
type Holder struct {
	src     Source
	log     *slog.Logger
	current atomic.Pointer[Engine]
	mu      sync.Mutex // one reload at a time
	lastFP  string

	// OnLoaded and OnRejected are told about every reload outcome (the audit
	// log listens). They run inside Reload, after the swap.
	OnLoaded   func(ctx context.Context, e *Engine, source string) error
	OnRejected func(ctx context.Context, source string, err error) error
}

// NewHolder loads the bundle once; a bad bundle at start is an error, since
// there is nothing older to keep serving.
func NewHolder(ctx context.Context, src Source, log *slog.Logger) (*Holder, error) {
	h := &Holder{src: src, log: log}
	// The embedded bundle's tests ran when the binary was built and tested
	// (make test); a bundle from disk is tested before it serves.
	e, fp, err := h.load(ctx, !src.embedded)
	if err != nil {
		return nil, err
	}
	h.current.Store(e)
	h.lastFP = fp
	return h, nil
}

// Current is the engine in force.
func (h *Holder) Current() *Engine { return h.current.Load() }

// Source names where the bundle comes from.
func (h *Holder) Source() string { return h.src.Name }

// load opens, fingerprints, compiles, validates and (if test) tests a bundle.
func (h *Holder) load(ctx context.Context, test bool) (*Engine, string, error) {
	fsys, err := h.src.Open()
	if err != nil {
		return nil, "", err
	}
	fp, err := Fingerprint(fsys)
	if err != nil {
		return nil, "", fmt.Errorf("policy: read %s: %w", h.src.Name, err)
	}
	e, err := Load(ctx, fsys)
	if err != nil {
		return nil, fp, err
	}
	if !test {
		return e, fp, nil
	}
	// The bundle's own tests must pass before it may decide anything.
	failures, err := FailingTests(ctx, fsys)
	if errors.Is(err, ErrNoTests) && h.src.overlay {
		return e, fp, nil // an overlay of data: the base's tests ran at build
	}
	if err != nil {
		return nil, fp, fmt.Errorf("policy: tests: %w", err)
	}
	if len(failures) > 0 {
		return nil, fp, fmt.Errorf("policy: %d Rego test(s) fail: %s", len(failures), strings.Join(failures, ", "))
	}
	return e, fp, nil
}

// Reload loads the bundle again and swaps it in if it changed and passes.
// It reports whether the engine changed.
func (h *Holder) Reload(ctx context.Context) (bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e, fp, err := h.load(ctx, true)
	if err != nil {
		if fp != "" && fp == h.lastFP {
			return false, nil // the same broken files we already refused
		}
		h.lastFP = fp
		h.log.Error("policy bundle refused; the previous revision keeps serving", "source", h.src.Name, "revision", h.Current().Revision(), "err", err)
		if h.OnRejected != nil {
			if aerr := h.OnRejected(ctx, h.src.Name, err); aerr != nil {
				h.log.Error("recording the policy refusal failed", "err", aerr)
			}
		}
		return false, err
	}
	h.lastFP = fp
	if e.Revision() == h.Current().Revision() {
		return false, nil
	}
	old := h.Current().Revision()
	h.current.Store(e)
	h.log.Info("policy reloaded", "source", h.src.Name, "from", old, "to", e.Revision())
	if h.OnLoaded != nil {
		if aerr := h.OnLoaded(ctx, e, h.src.Name); aerr != nil {
			h.log.Error("recording the policy load failed", "err", aerr)
		}
	}
	return true, nil
}

// Watch reloads whenever the source's files change, checking every interval.
func (h *Holder) Watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fsys, err := h.src.Open()
		if err != nil {
			continue
		}
		fp, err := Fingerprint(fsys)
		h.mu.Lock()
		same := err == nil && fp == h.lastFP
		h.mu.Unlock()
		if same {
			continue
		}
		_, _ = h.Reload(ctx)
	}
}
