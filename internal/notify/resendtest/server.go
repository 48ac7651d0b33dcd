// Package resendtest is a stateful fake of Resend's contacts and email-sending
// API on a local httptest server, so tests can exercise real HTTP delivery
// (headers, retries, outages, lost responses) without the network or a Resend
// account. It keeps contacts per audience and the emails sent, records every
// request, and can be told to fail the next requests — before applying them
// (FailNext) or after (ApplyThenFailNext, a response lost on the way back).
//
// It mirrors the routes and JSON that resend-go v2 uses:
//
//	POST   /audiences/{audience}/contacts
//	GET    /audiences/{audience}/contacts
//	GET    /audiences/{audience}/contacts/{id_or_email}
//	PATCH  /audiences/{audience}/contacts/{id_or_email}
//	DELETE /audiences/{audience}/contacts/{id_or_email}
//	POST   /emails
//
// POST /emails honours the Idempotency-Key header as Resend does: a repeat
// with the same key and the same body gets the original answer (same id) and
// sends nothing; the same key with a different body is refused with 409.
// Unlike Resend, keys never expire (Resend forgets them after 24 hours).
//
// Any audience id is accepted (audiences spring into existence on first use);
// every request must carry "Authorization: Bearer <non-empty key>".
package resendtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

// Request is one request the server received.
type Request struct {
	Method         string
	Path           string // unescaped URL path, e.g. /audiences/a1/contacts/ann@example.com
	IdempotencyKey string
	Authorization  string
	Body           map[string]any // decoded JSON body; nil when there was none
	Status         int            // the status the server answered with
}

// Contact is a contact as the fake holds it.
type Contact struct {
	ID           string
	Email        string
	FirstName    string
	LastName     string
	Unsubscribed bool
	CreatedAt    time.Time
}

// SentEmail is an email the fake accepted. A repeat under the same
// idempotency key is not a new email, so it appears once.
type SentEmail struct {
	ID             string
	From           string
	To             []string
	Subject        string
	Text           string
	HTML           string
	IdempotencyKey string // "" when sent without one
}

// Server is the fake Resend API. Its methods are safe for concurrent use.
type Server struct {
	// URL is the base URL to give resend-go (resend.Client.BaseURL) or
	// notify.ResendConfig.BaseURL.
	URL string

	srv *httptest.Server

	mu         sync.Mutex
	requests   []Request
	audiences  map[string]map[string]*Contact // audience -> lowercased email -> contact
	emails     []SentEmail
	idempotent map[string]idempotentSend // Idempotency-Key -> the send it made
	failLeft   int
	failStatus int
	lostLeft   int
	lostStatus int
}

// idempotentSend remembers what a key was first used for.
type idempotentSend struct {
	body []byte // compacted request body
	id   string
}

// New starts a fake Resend API, closed when t ends.
func New(t testing.TB) *Server {
	t.Helper()
	s := NewServer()
	t.Cleanup(s.srv.Close)
	return s
}

// NewServer starts a fake Resend API outside a test (the demo deployment's
// email stand-in); the caller closes it.
func NewServer() *Server {
	s := &Server{audiences: map[string]map[string]*Contact{}, idempotent: map[string]idempotentSend{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /audiences/{audience}/contacts", s.createContact)
	mux.HandleFunc("GET /audiences/{audience}/contacts", s.listContacts)
	mux.HandleFunc("GET /audiences/{audience}/contacts/{contact}", s.getContact)
	mux.HandleFunc("PATCH /audiences/{audience}/contacts/{contact}", s.updateContact)
	mux.HandleFunc("DELETE /audiences/{audience}/contacts/{contact}", s.removeContact)
	mux.HandleFunc("POST /emails", s.sendEmail)
	s.srv = httptest.NewServer(s.middleware(mux))
	s.URL = s.srv.URL + "/"
	return s
}

// Close stops the server early, e.g. to simulate Resend being unreachable.
func (s *Server) Close() { s.srv.Close() }

// Requests returns a copy of every request received so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Contact returns the contact with email in audience, if it exists. Emails
// match case-insensitively, as in Resend.
func (s *Server) Contact(audience, email string) (Contact, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.audiences[audience][strings.ToLower(email)]
	if !ok {
		return Contact{}, false
	}
	return *c, true
}

// AddContact seeds a contact, e.g. an existing subscriber about to opt out.
func (s *Server) AddContact(audience, email string, unsubscribed bool) Contact {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := &Contact{ID: uuid.NewString(), Email: email, Unsubscribed: unsubscribed, CreatedAt: time.Now().UTC()}
	s.audience(audience)[strings.ToLower(email)] = c
	return *c
}

// FailNext makes the next n requests fail with status (e.g. 503 for an outage,
// 429 for rate limiting, 422 for a rejected request) without touching state.
func (s *Server) FailNext(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failLeft, s.failStatus = n, status
}

// ApplyThenFailNext makes the next n requests take effect and then answer
// with status, as when Resend did the work but its response was lost (a
// timeout, a proxy's 502). FailNext, when also pending, wins: a request it
// fails is not applied.
func (s *Server) ApplyThenFailNext(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lostLeft, s.lostStatus = n, status
}

// Emails returns every distinct email accepted so far, in order: a repeat
// under an idempotency key already used is not listed again.
func (s *Server) Emails() []SentEmail {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SentEmail, len(s.emails))
	for i, e := range s.emails {
		e.To = append([]string(nil), e.To...)
		out[i] = e
	}
	return out
}

func (s *Server) audience(id string) map[string]*Contact {
	a, ok := s.audiences[id]
	if !ok {
		a = map[string]*Contact{}
		s.audiences[id] = a
	}
	return a
}

// statusRecorder lets the middleware record the status a handler answered.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// middleware records the request, checks authorization and injects failures.
func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		rec := Request{
			Method:         r.Method,
			Path:           r.URL.Path,
			IdempotencyKey: r.Header.Get("Idempotency-Key"),
			Authorization:  r.Header.Get("Authorization"),
		}
		if len(raw) > 0 {
			_ = json.Unmarshal(raw, &rec.Body)
		}
		// Hand the decoded body to the handler without re-reading the wire.
		r.Body = io.NopCloser(strings.NewReader(string(raw)))

		s.mu.Lock()
		idx := len(s.requests)
		s.requests = append(s.requests, rec)
		fail, lost := 0, 0
		if s.failLeft > 0 {
			s.failLeft--
			fail = s.failStatus
		} else if s.lostLeft > 0 {
			s.lostLeft--
			lost = s.lostStatus
		}
		s.mu.Unlock()

		sr := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		switch {
		case fail != 0:
			writeError(sr, fail, "injected failure")
		case strings.TrimSpace(strings.TrimPrefix(rec.Authorization, "Bearer ")) == "" || !strings.HasPrefix(rec.Authorization, "Bearer "):
			writeError(sr, http.StatusUnauthorized, "Missing API key in the authorization header.")
		case lost != 0:
			// Apply the request, then throw its answer away.
			next.ServeHTTP(httptest.NewRecorder(), r)
			writeError(sr, lost, "injected failure after applying the request")
		default:
			next.ServeHTTP(sr, r)
		}

		s.mu.Lock()
		s.requests[idx].Status = sr.status
		s.mu.Unlock()
	})
}

// errorNames follow Resend's error "name" field.
var errorNames = map[int]string{
	http.StatusBadRequest:          "validation_error",
	http.StatusUnauthorized:        "missing_api_key",
	http.StatusForbidden:           "invalid_api_key",
	http.StatusNotFound:            "not_found",
	http.StatusConflict:            "conflict",
	http.StatusUnprocessableEntity: "validation_error",
	http.StatusTooManyRequests:     "rate_limit_exceeded",
	http.StatusInternalServerError: "internal_server_error",
	http.StatusServiceUnavailable:  "service_unavailable",
}

func writeError(w http.ResponseWriter, status int, msg string) {
	name := errorNames[status]
	if name == "" {
		name = strings.ToLower(strings.ReplaceAll(http.StatusText(status), " ", "_"))
	}
	if status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, status, map[string]any{"statusCode": status, "name": name, "message": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func contactJSON(c *Contact) map[string]any {
	return map[string]any{
		"object":       "contact",
		"id":           c.ID,
		"email":        c.Email,
		"first_name":   c.FirstName,
		"last_name":    c.LastName,
		"created_at":   c.CreatedAt.Format(time.RFC3339Nano),
		"unsubscribed": c.Unsubscribed,
	}
}

// find looks a contact up by id or email, as Resend's {id_or_email} does.
// Callers hold s.mu.
func (s *Server) find(audience, idOrEmail string) (string, *Contact) {
	a := s.audience(audience)
	if c, ok := a[strings.ToLower(idOrEmail)]; ok {
		return strings.ToLower(idOrEmail), c
	}
	for k, c := range a {
		if c.ID == idOrEmail {
			return k, c
		}
	}
	return "", nil
}

type contactBody struct {
	Email        string `json:"email"`
	FirstName    string `json:"first_name"`
	LastName     string `json:"last_name"`
	Unsubscribed *bool  `json:"unsubscribed"`
}

func decodeBody(r *http.Request) (contactBody, error) {
	var b contactBody
	err := json.NewDecoder(r.Body).Decode(&b)
	if err == io.EOF {
		err = nil
	}
	return b, err
}

func (s *Server) createContact(w http.ResponseWriter, r *http.Request) {
	b, err := decodeBody(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "Invalid JSON body.")
		return
	}
	if !strings.Contains(b.Email, "@") {
		writeError(w, http.StatusUnprocessableEntity, "Invalid `email` field.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.audience(r.PathValue("audience"))
	if _, exists := a[strings.ToLower(b.Email)]; exists {
		writeError(w, http.StatusConflict, "Contact already exists.")
		return
	}
	c := &Contact{ID: uuid.NewString(), Email: b.Email, FirstName: b.FirstName, LastName: b.LastName, CreatedAt: time.Now().UTC()}
	if b.Unsubscribed != nil {
		c.Unsubscribed = *b.Unsubscribed
	}
	a[strings.ToLower(b.Email)] = c
	writeJSON(w, http.StatusCreated, map[string]any{"object": "contact", "id": c.ID})
}

func (s *Server) listContacts(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	data := []map[string]any{}
	for _, c := range s.audience(r.PathValue("audience")) {
		data = append(data, contactJSON(c))
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data, "has_more": false})
}

func (s *Server) getContact(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, c := s.find(r.PathValue("audience"), r.PathValue("contact"))
	if c == nil {
		writeError(w, http.StatusNotFound, "Contact not found.")
		return
	}
	writeJSON(w, http.StatusOK, contactJSON(c))
}

func (s *Server) updateContact(w http.ResponseWriter, r *http.Request) {
	b, err := decodeBody(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "Invalid JSON body.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	aud := r.PathValue("audience")
	key, c := s.find(aud, r.PathValue("contact"))
	if c == nil {
		writeError(w, http.StatusNotFound, "Contact not found.")
		return
	}
	if b.Unsubscribed != nil {
		c.Unsubscribed = *b.Unsubscribed
	}
	if b.FirstName != "" {
		c.FirstName = b.FirstName
	}
	if b.LastName != "" {
		c.LastName = b.LastName
	}
	if b.Email != "" && !strings.EqualFold(b.Email, c.Email) {
		a := s.audience(aud)
		delete(a, key)
		c.Email = b.Email
		a[strings.ToLower(b.Email)] = c
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "contact", "id": c.ID})
}

func (s *Server) removeContact(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key, c := s.find(r.PathValue("audience"), r.PathValue("contact"))
	if c == nil {
		writeError(w, http.StatusNotFound, "Contact not found.")
		return
	}
	delete(s.audience(r.PathValue("audience")), key)
	writeJSON(w, http.StatusOK, map[string]any{"object": "contact", "id": c.ID, "deleted": true})
}

// emailBody is the part of POST /emails the fake understands. Resend takes
// "to" as a string or an array; resend-go always sends an array.
type emailBody struct {
	From    string          `json:"from"`
	To      json.RawMessage `json:"to"`
	Subject string          `json:"subject"`
	HTML    string          `json:"html"`
	Text    string          `json:"text"`
}

func (b emailBody) recipients() []string {
	var many []string
	if json.Unmarshal(b.To, &many) == nil {
		return many
	}
	var one string
	if json.Unmarshal(b.To, &one) == nil && one != "" {
		return []string{one}
	}
	return nil
}

func (s *Server) sendEmail(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	var b emailBody
	if err := json.Unmarshal(raw, &b); err != nil {
		writeError(w, http.StatusBadRequest, "Invalid JSON body.")
		return
	}
	to := b.recipients()
	switch {
	case !strings.Contains(b.From, "@"):
		writeError(w, http.StatusUnprocessableEntity, "Invalid `from` field.")
		return
	case len(to) == 0:
		writeError(w, http.StatusUnprocessableEntity, "Missing `to` field.")
		return
	case strings.TrimSpace(b.Subject) == "":
		writeError(w, http.StatusUnprocessableEntity, "Missing `subject` field.")
		return
	case b.HTML == "" && b.Text == "":
		writeError(w, http.StatusUnprocessableEntity, "Missing `html` or `text` field.")
		return
	}
	for _, a := range to {
		if !strings.Contains(a, "@") {
			// Resend's message does not echo the address either.
			writeError(w, http.StatusUnprocessableEntity, "Invalid `to` field.")
			return
		}
	}
	var compact bytes.Buffer
	_ = json.Compact(&compact, raw)
	key := r.Header.Get("Idempotency-Key")

	s.mu.Lock()
	defer s.mu.Unlock()
	if key != "" {
		if prev, ok := s.idempotent[key]; ok {
			if !bytes.Equal(prev.body, compact.Bytes()) {
				writeJSON(w, http.StatusConflict, map[string]any{
					"statusCode": http.StatusConflict, "name": "invalid_idempotent_request",
					"message": "Same idempotency key used with a different request payload.",
				})
				return
			}
			writeJSON(w, http.StatusOK, map[string]any{"id": prev.id})
			return
		}
	}
	e := SentEmail{ID: uuid.NewString(), From: b.From, To: to, Subject: b.Subject, Text: b.Text, HTML: b.HTML, IdempotencyKey: key}
	s.emails = append(s.emails, e)
	if key != "" {
		s.idempotent[key] = idempotentSend{body: compact.Bytes(), id: e.ID}
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": e.ID})
}

// String summarises a request for test failure messages.
func (r Request) String() string {
	return fmt.Sprintf("%s %s -> %d (idempotency key %q)", r.Method, r.Path, r.Status, r.IdempotencyKey)
}
