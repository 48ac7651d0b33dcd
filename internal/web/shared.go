package web

import "time"

// What the staff console (internal/web/console) shares with the privacy
// center, so the two read as one product: the stylesheet, the language
// negotiation and the date format.

// StylesheetPath is the shared stylesheet, served by the center under
// its own (public, cacheable) static route.
const StylesheetPath = Prefix + "/static/site.css"

// Languages are the page languages, in switcher order.
func Languages() []string { return append([]string(nil), languages...) }

// LanguageName is a language's name in itself ("Русский").
func LanguageName(lang string) string { return langNames[lang] }

// ValidLanguage reports whether lang is a page language.
func ValidLanguage(lang string) bool { return validLang(lang) }

// NegotiateLanguage picks the page language from an Accept-Language header.
func NegotiateLanguage(acceptLanguage string) string { return negotiate(acceptLanguage) }

// FormatDate writes a date (UTC) the way lang does.
func FormatDate(lang string, t time.Time) string { return formatDate(lang, t) }
