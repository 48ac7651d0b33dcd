package api

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/audit"
)

var auditFilterParams = []string{"action", "target_type", "target_id", "actor", "since", "until"}

func auditFilter(c *fiber.Ctx) (audit.Filter, error) {
	f := audit.Filter{
		Action: strings.Clone(c.Query("action")), TargetType: strings.Clone(c.Query("target_type")),
		TargetID: strings.Clone(c.Query("target_id")), Actor: strings.Clone(c.Query("actor")),
	}
	var err error
	if f.Since, err = audit.ParseTime("since", c.Query("since")); err != nil {
		return f, err
	}
	if f.Until, err = audit.ParseTime("until", c.Query("until")); err != nil {
		return f, err
	}
	return f, nil
}

type auditPage struct {
	Entries    []audit.Entry `json:"entries"`
	NextCursor *string       `json:"next_cursor"`
}

func (s *server) listAudit(c *fiber.Ctx) error {
	if err := checkQuery(c, append(auditFilterParams, "cursor", "limit", "order")...); err != nil {
		return err
	}
	if err := s.authorize(c, "audit.read"); err != nil {
		return err
	}
	f, err := auditFilter(c)
	if err != nil {
		return err
	}
	f.Cursor = strings.Clone(c.Query("cursor"))
	f.Limit = 100
	if l := c.Query("limit"); l != "" {
		if f.Limit, err = strconv.Atoi(l); err != nil {
			return apperr.Field("limit", "must be a whole number between 1 and 1000")
		}
	}
	switch c.Query("order", "desc") {
	case "desc":
		f.Desc = true
	case "asc":
	default:
		return apperr.Field("order", "must be asc or desc")
	}
	entries, next, err := s.Audit.List(c.UserContext(), f)
	if err != nil {
		return err
	}
	page := auditPage{Entries: entries}
	if next != "" {
		page.NextCursor = &next
	}
	return c.JSON(page)
}

// exportAudit streams every matching entry, oldest first, as CSV or JSON
// lines; nothing is held in memory.
func (s *server) exportAudit(c *fiber.Ctx) error {
	if err := checkQuery(c, append(auditFilterParams, "format")...); err != nil {
		return err
	}
	if err := s.authorize(c, "audit.read"); err != nil {
		return err
	}
	f, err := auditFilter(c)
	if err != nil {
		return err
	}
	if err := f.Validate(); err != nil {
		return err
	}
	format := c.Query("format", "jsonl")
	switch format {
	case "csv":
		c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
	case "jsonl":
		c.Set(fiber.HeaderContentType, "application/jsonl")
	default:
		return apperr.Field("format", "must be csv or jsonl")
	}
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="steward-audit.`+format+`"`)
	rid, _ := c.Locals(localRequestID).(string)
	log := s.Log
	reader := s.Audit
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		// The request context ends when the handler returns; the stream
		// outlives it, bounded by its own timeout.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		var cw *csv.Writer
		if format == "csv" {
			cw = csv.NewWriter(w)
			_ = cw.Write([]string{"seq", "at", "actor", "action", "target_type", "target_id", "details", "policy_revision", "prev_hash", "hash"})
		}
		enc := json.NewEncoder(w)
		n := 0
		err := reader.Each(ctx, f, func(e audit.Entry) error {
			n++
			if cw != nil {
				return cw.Write([]string{strconv.FormatInt(e.Seq, 10), e.At.Format(time.RFC3339Nano), e.Actor, e.Action,
					e.TargetType, e.TargetID, string(e.Details), e.PolicyRevision, e.PrevHash.String(), e.Hash.String()})
			}
			return enc.Encode(e)
		})
		if cw != nil {
			cw.Flush()
		}
		_ = w.Flush()
		if err != nil {
			log.Error("audit export interrupted", "request_id", rid, "entries", n, "err", err)
		}
	})
	return nil
}

type verifyResponse struct {
	audit.Result
	Summary string `json:"summary"`
}

func (s *server) verifyAudit(c *fiber.Ctx) error {
	if err := checkQuery(c); err != nil {
		return err
	}
	if err := s.authorize(c, "audit.verify"); err != nil {
		return err
	}
	r, err := s.Audit.Verify(c.UserContext())
	if err != nil {
		return err
	}
	return c.JSON(verifyResponse{Result: r, Summary: r.String()})
}
