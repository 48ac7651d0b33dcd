package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Challenge is optional abuse protection for the forms that make a request
// or send a code: a provider that tells people from bots. Steward needs
// none (the per-client and per-address limits hold without one); a
// deployment under attack configures one.
type Challenge interface {
	// Field is the form field the provider's widget fills in.
	Field() string
	// Verify accepts or refuses the field's value from client ip.
	Verify(ctx context.Context, response, ip string) error
}

// SiteVerify is a challenge provider speaking the "siteverify" protocol
// that Cloudflare Turnstile, hCaptcha and reCAPTCHA share: POST secret,
// response and remoteip as a form; the answer is JSON with "success".
type SiteVerify struct {
	URL       string // e.g. https://challenges.cloudflare.com/turnstile/v0/siteverify
	Secret    string
	FieldName string // e.g. cf-turnstile-response
	Client    *http.Client
}

// ErrChallenge is a response the provider refused.
var ErrChallenge = errors.New("challenge not passed")

// Field implements Challenge.
func (s *SiteVerify) Field() string { return s.FieldName }

// Verify implements Challenge.
func (s *SiteVerify) Verify(ctx context.Context, response, ip string) error {
	if response == "" || len(response) > 4096 {
		return ErrChallenge
	}
	cl := s.Client
	if cl == nil {
		cl = &http.Client{Timeout: 5 * time.Second}
	}
	form := url.Values{"secret": {s.Secret}, "response": {response}}
	if ip != "" {
		form.Set("remoteip", ip)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL, strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("challenge: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := cl.Do(req)
	if err != nil {
		return fmt.Errorf("challenge: %w", err)
	}
	defer resp.Body.Close()
	var out struct {
		Success bool `json:"success"`
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("challenge: provider answered %d", resp.StatusCode)
	}
	if err := json.NewDecoder(http.MaxBytesReader(nil, resp.Body, 64<<10)).Decode(&out); err != nil {
		return fmt.Errorf("challenge: %w", err)
	}
	if !out.Success {
		return ErrChallenge
	}
	return nil
}
