package consent

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/steward-privacy/steward/identity"
	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/audit"
	"github.com/steward-privacy/steward/internal/db"
	"github.com/steward-privacy/steward/internal/notify"
	"github.com/steward-privacy/steward/internal/policy"
)

// Notifier queues person-facing messages inside the caller's transaction
// (*notify.Outbox).
type Notifier interface {
	EnqueueEmail(ctx context.Context, tx pgx.Tx, e notify.Email) (string, error)
	EnqueueTelegram(ctx context.Context, tx pgx.Tx, m notify.TelegramMessage) (string, error)
}

// Announcement is what announcing a notice version did.
type Announcement struct {
	Product     string    `json:"product"`
	Version     string    `json:"version"`
	AnnouncedAt time.Time `json:"announced_at"`
	AnnouncedBy string    `json:"announced_by"`
	// Subjects consented under an older major version and must consent
	// again; the check answers reconsent_required for them until they do.
	Subjects int `json:"subjects"`
	// Emails and Telegrams are the messages queued; Unreachable counts
	// subjects with no email or Telegram identity of their own or linked
	// (a visitor: the banner asks them again on their next visit).
	Emails      int `json:"emails"`
	Telegrams   int `json:"telegrams"`
	Unreachable int `json:"unreachable"`
}

// noticeKeySpace derives the idempotency keys of announcement messages, so
// an announcement retried after a crash queues nothing twice.
var noticeKeySpace = uuid.MustParse("6f1f3b0e-2f4c-5c8e-9a57-3d1e3c0c9a11")

// AnnounceNotice tells everyone who consented to one of product's purposes
// under an older major version of its notice that version (the current
// one, a major change) is in force, on their channel: an email to each
// email identity and a bot message to each Telegram identity of theirs or
// linked to them, in the language they last chose in. It is recorded once
// per version (a second announcement is a conflict) and audited without
// personal data. Re-consent itself needs no writing: the check compares
// each stored consent's major version with the current one.
//
// Web notice (Policy updates): "For major changes we will also notify you
// via email or in-product messaging"; bot notice 11: "Sending a
// notification through the bot (for significant changes)".
func (s *Service) AnnounceNotice(ctx context.Context, product, version, actor string) (Announcement, error) {
	eng := s.Engine()
	if _, ok := eng.Products[product]; !ok {
		return Announcement{}, apperr.New(apperr.NotFound, "no such product")
	}
	n, ok := eng.Notice(product, version)
	if !ok {
		return Announcement{}, apperr.New(apperr.NotFound, "no such notice version")
	}
	if !n.Current {
		return Announcement{}, apperr.New(apperr.Conflict, "only the current version of a notice can be announced")
	}
	if n.Change != policy.ChangeMajor {
		return Announcement{}, apperr.New(apperr.Conflict, "a minor change keeps every consent valid: there is nothing to announce")
	}
	if s.notifier == nil {
		return Announcement{}, errors.New("consent: announce: no notifier configured")
	}
	a := Announcement{Product: product, Version: version, AnnouncedAt: s.now(), AnnouncedBy: actor}
	err := db.Tx(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO notice_announcements (product, version, announced_at, announced_by, subjects, messages)
			VALUES ($1, $2, $3, $4, 0, 0) ON CONFLICT DO NOTHING`, product, version, a.AnnouncedAt, actor)
		if err != nil {
			return fmt.Errorf("record announcement: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return apperr.New(apperr.Conflict, "this version was already announced")
		}
		ids, err := reconsentSubjects(ctx, tx, product, n.Major)
		if err != nil {
			return err
		}
		a.Subjects = len(ids)
		sent := map[string]bool{} // channel:keyed hash -> queued, across linked subjects
		for _, id := range ids {
			chans, lang, err := s.channels(ctx, tx, id)
			if err != nil {
				return err
			}
			if len(chans) == 0 {
				a.Unreachable++
				continue
			}
			for _, c := range chans {
				k := c.Kind() + ":" + hex.EncodeToString(s.kr.Hash(c))
				if sent[k] {
					continue
				}
				sent[k] = true
				if err := s.sendNotice(ctx, tx, eng, n, c, lang, k, &a); err != nil {
					return err
				}
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE notice_announcements SET subjects = $3, messages = $4 WHERE product = $1 AND version = $2`,
			product, version, a.Subjects, a.Emails+a.Telegrams); err != nil {
			return fmt.Errorf("record announcement: %w", err)
		}
		if s.audit == nil {
			return nil
		}
		return s.audit.Append(ctx, tx, audit.Record{Actor: actor, Action: "notice.announced", TargetType: "notice", TargetID: product + "/" + version,
			Details: map[string]any{"subjects": a.Subjects, "emails": a.Emails, "telegrams": a.Telegrams, "unreachable": a.Unreachable}})
	})
	if err != nil {
		return Announcement{}, fmt.Errorf("consent: announce %s %s: %w", product, version, err)
	}
	s.log.InfoContext(ctx, "notice announced", "product", product, "version", version, "subjects", a.Subjects,
		"emails", a.Emails, "telegrams", a.Telegrams, "unreachable", a.Unreachable)
	return a, nil
}

// reconsentSubjects are the subjects whose current grant of one of the
// product's purposes was given under an older major version.
func reconsentSubjects(ctx context.Context, tx pgx.Tx, product string, major int) ([]int64, error) {
	rows, err := tx.Query(ctx, `
		SELECT DISTINCT cs.subject_id FROM consent_state cs JOIN consent_events e ON e.id = cs.event_id
		WHERE e.product = $1 AND cs.state = 'granted'
		  AND split_part(cs.notice_version, '.', 1)::int < $2
		ORDER BY 1`, product, major)
	if err != nil {
		return nil, fmt.Errorf("find subjects to ask again: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("find subjects to ask again: %w", err)
	}
	return ids, nil
}

// channels are the email and Telegram identities of a subject and of the
// subjects linked to it (decrypted only to hand them to the outbox, which
// seals them again), and the language of its latest consent event.
func (s *Service) channels(ctx context.Context, tx pgx.Tx, id int64) ([]identity.Subject, string, error) {
	rows, err := tx.Query(ctx, `
		SELECT s.kind, s.ciphertext, s.enc_kid FROM subjects s
		WHERE s.kind IN ('email', 'tg') AND s.forgotten_at IS NULL AND s.id IN (
			SELECT $1::bigint
			UNION SELECT linked_id FROM subject_links WHERE subject_id = $1
			UNION SELECT subject_id FROM subject_links WHERE linked_id = $1)
		ORDER BY s.id`, id)
	if err != nil {
		return nil, "", fmt.Errorf("subject channels: %w", err)
	}
	defer rows.Close()
	var out []identity.Subject
	for rows.Next() {
		var kind, kid string
		var ct []byte
		if err := rows.Scan(&kind, &ct, &kid); err != nil {
			return nil, "", fmt.Errorf("subject channels: %w", err)
		}
		pt, err := s.kr.Open(kid, ct, []byte(kind))
		if err != nil {
			return nil, "", fmt.Errorf("subject channels: %w", err)
		}
		subj, err := identity.Parse(string(pt))
		if err != nil {
			return nil, "", fmt.Errorf("subject channels: stored identity of kind %s does not parse", kind)
		}
		out = append(out, subj)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("subject channels: %w", err)
	}
	var lang string
	err = tx.QueryRow(ctx, `SELECT coalesce(language, '') FROM consent_events WHERE subject_id = $1 AND language IS NOT NULL
		ORDER BY recorded_at DESC LIMIT 1`, id).Scan(&lang)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, "", fmt.Errorf("subject language: %w", err)
	}
	return out, notify.NormalizeLanguage(lang), nil
}

func (s *Service) sendNotice(ctx context.Context, tx pgx.Tx, eng *policy.Engine, n policy.Notice, to identity.Subject, lang, channelKey string, a *Announcement) error {
	data := map[string]string{
		"product_name": eng.Products[n.Product].Name, "version": n.Version, "effective_date": n.Effective, "summary": n.Summary,
	}
	if s.publicURL != "" {
		data["notice_url"] = s.publicURL + "/v1/notices/" + url.PathEscape(n.Product) + "/" + url.PathEscape(n.Version) + "?lang=" + lang
	}
	key := uuid.NewSHA1(noticeKeySpace, []byte(n.Product+"\x00"+n.Version+"\x00"+channelKey)).String()
	var err error
	switch to.Type {
	case identity.Email:
		_, err = s.notifier.EnqueueEmail(ctx, tx, notify.Email{To: to.Value, Template: notify.TemplateNoticeChanged, Language: lang, Data: data, Key: key})
		if err == nil {
			a.Emails++
		}
	case identity.Telegram:
		chat, perr := strconv.ParseInt(to.Value, 10, 64)
		if perr != nil {
			return fmt.Errorf("telegram identity is not a user id")
		}
		_, err = s.notifier.EnqueueTelegram(ctx, tx, notify.TelegramMessage{ChatID: chat, Template: notify.TemplateNoticeChanged, Language: lang, Data: data, Key: key})
		if err == nil {
			a.Telegrams++
		}
	}
	if errors.Is(err, notify.ErrAlreadyQueued) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("queue %s message: %w", to.Kind(), err)
	}
	return nil
}

// normalizePublicURL trims a trailing slash.
func normalizePublicURL(u string) string { return strings.TrimRight(u, "/") }
