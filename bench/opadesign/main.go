// Command opadesign is the "OPA sidecar" design that scripts/bench.sh measures
// Steward against: a fiber v2 server whose GET /v1/consent/check validates the
// same query parameters as Steward, builds the same policy input for a subject
// with no stored record, and asks a separate OPA server for the decision over
// HTTP (POST /v1/data/steward/consent/decision) instead of evaluating the
// policy in process. It does no authentication and no database lookup, so it
// flatters the design: the gap to Steward is at least the cost of the hop.
//
// Usage:
//
//	opadesign -addr 127.0.0.1:18083 -opa http://127.0.0.1:18182
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/steward-privacy/steward/identity"
)

// opaInput mirrors the input Steward's consent engine builds; Jurisdiction is
// omitted when unknown, and there is no "stored" object (no record).
type opaInput struct {
	Purpose      string `json:"purpose"`
	Jurisdiction string `json:"jurisdiction,omitempty"`
	Product      string `json:"product"`
	GPC          bool   `json:"gpc"`
}

type opaRequest struct {
	Input opaInput `json:"input"`
}

type decision struct {
	Allow  bool   `json:"allow"`
	Reason string `json:"reason"`
	Rule   string `json:"rule"`
	Regime string `json:"regime"`
}

type opaResponse struct {
	Result *decision `json:"result"`
}

type checkResponse struct {
	Allow          bool   `json:"allow"`
	Reason         string `json:"reason"`
	PolicyRevision string `json:"policy_revision"`
	Regime         string `json:"regime"`
}

type sidecar struct {
	client   *http.Client
	url      string
	revision string
}

func main() {
	addr := flag.String("addr", "127.0.0.1:18083", "listen address")
	opa := flag.String("opa", "http://127.0.0.1:8181", "base URL of the OPA server")
	revision := flag.String("policy-revision", "opa-sidecar", "policy_revision to report")
	timeout := flag.Duration("timeout", 5*time.Second, "timeout of one OPA request")
	flag.Parse()

	s := &sidecar{
		client:   newClient(*timeout),
		url:      strings.TrimRight(*opa, "/") + "/v1/data/steward/consent/decision",
		revision: *revision,
	}

	app := fiber.New(fiber.Config{
		Prefork:               false,
		DisableStartupMessage: true,
		AppName:               "steward-bench-opadesign",
		ReadTimeout:           10 * time.Second,
		WriteTimeout:          10 * time.Second,
		IdleTimeout:           60 * time.Second,
	})
	app.Get("/healthz", func(c *fiber.Ctx) error {
		return c.SendString("ok")
	})
	app.Get("/v1/consent/check", s.check)

	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
		<-sig
		_ = app.ShutdownWithTimeout(5 * time.Second)
	}()
	if err := app.Listen(*addr); err != nil {
		log.Fatalf("opadesign: %v", err)
	}
}

// newClient returns a keep-alive client sized for a few dozen concurrent
// requests to one host, so connection setup never shows in the numbers.
func newClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy: nil, // loopback only; never honour HTTP(S)_PROXY
			DialContext: (&net.Dialer{
				Timeout:   2 * time.Second,
				KeepAlive: 30 * time.Second,
			}).DialContext,
			MaxIdleConns:          256,
			MaxIdleConnsPerHost:   128,
			IdleConnTimeout:       90 * time.Second,
			DisableCompression:    true,
			ForceAttemptHTTP2:     false,
			ResponseHeaderTimeout: timeout,
		},
	}
}

func badRequest(c *fiber.Ctx, msg string) error {
	return c.Status(fiber.StatusBadRequest).JSON(fiber.Map{"error": "invalid_request", "message": msg})
}

func (s *sidecar) check(c *fiber.Ctx) error {
	if _, err := identity.Parse(c.Query("subject")); err != nil {
		return badRequest(c, err.Error())
	}
	purpose := c.Query("purpose")
	if !validPurpose(purpose) {
		return badRequest(c, "purpose must be 1-64 characters a-z, 0-9 or '_', starting with a letter")
	}
	jurisdiction := strings.ToUpper(c.Query("jurisdiction"))
	if jurisdiction != "" && !validJurisdiction(jurisdiction) {
		return badRequest(c, "jurisdiction must be an ISO 3166 code such as DE or US-CA")
	}
	product := c.Query("product", "web")
	if !validPurpose(product) {
		return badRequest(c, "invalid product")
	}
	in := opaInput{
		Purpose:      purpose,
		Jurisdiction: jurisdiction,
		Product:      product,
		GPC:          c.Get("Sec-GPC") == "1",
	}

	d, err := s.decide(c.UserContext(), in)
	if err != nil {
		if errors.Is(err, errUndefined) {
			return c.Status(fiber.StatusUnprocessableEntity).JSON(fiber.Map{"error": "unknown_purpose_or_product"})
		}
		return c.Status(fiber.StatusBadGateway).JSON(fiber.Map{"error": "policy_unavailable", "message": err.Error()})
	}
	return c.JSON(checkResponse{
		Allow:          d.Allow,
		Reason:         d.Reason,
		PolicyRevision: s.revision,
		Regime:         d.Regime,
	})
}

var errUndefined = errors.New("policy decision undefined")

func (s *sidecar) decide(ctx context.Context, in opaInput) (decision, error) {
	body, err := json.Marshal(opaRequest{Input: in})
	if err != nil {
		return decision{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return decision{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return decision{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		return decision{}, fmt.Errorf("opa answered %s", resp.Status)
	}
	var out opaResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil {
		return decision{}, fmt.Errorf("opa response: %w", err)
	}
	// Drain so the connection goes back to the pool.
	_, _ = io.Copy(io.Discard, resp.Body)
	if out.Result == nil || out.Result.Reason == "" {
		return decision{}, errUndefined
	}
	return *out.Result, nil
}

func validPurpose(p string) bool {
	if len(p) == 0 || len(p) > 64 || p[0] < 'a' || p[0] > 'z' {
		return false
	}
	for i := 1; i < len(p); i++ {
		c := p[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// validJurisdiction accepts "CC" or "CC-SSS" (ISO 3166-1 alpha-2, optionally
// with a 3166-2 subdivision of 1-3 characters), upper case.
func validJurisdiction(j string) bool {
	if len(j) < 2 || !upper(j[0]) || !upper(j[1]) {
		return false
	}
	if len(j) == 2 {
		return true
	}
	if j[2] != '-' || len(j) < 4 || len(j) > 6 {
		return false
	}
	for i := 3; i < len(j); i++ {
		if !upper(j[i]) && !(j[i] >= '0' && j[i] <= '9') {
			return false
		}
	}
	return true
}

func upper(c byte) bool { return c >= 'A' && c <= 'Z' }
