package config

import (
	"slices"
	"strings"
	"testing"
)

// TestCORSOriginsAndGeoHeader: STEWARD_CORS_ORIGINS is a list of origins,
// normalized as browsers send them; anything else (a path, another
// scheme) stops Steward naming the variable, as does a geo header that is
// not a header name.
func TestCORSOriginsAndGeoHeader(t *testing.T) {
	t.Parallel()
	env := func(vars map[string]string) func(string) string { return func(k string) string { return vars[k] } }
	cfg, err := Load(env(map[string]string{
		"STEWARD_CORS_ORIGINS": " https://Shop.Example , http://localhost:5173,",
		"STEWARD_GEO_HEADER":   "CF-IPCountry",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"https://shop.example", "http://localhost:5173"}; !slices.Equal(cfg.CORSOrigins, want) {
		t.Errorf("CORSOrigins = %q, want %q", cfg.CORSOrigins, want)
	}
	if cfg.GeoHeader != "CF-IPCountry" {
		t.Errorf("GeoHeader = %q", cfg.GeoHeader)
	}
	if cfg, err := Load(env(nil)); err != nil || cfg.CORSOrigins != nil || cfg.GeoHeader != "" {
		t.Errorf("unset: %q %q %v", cfg.CORSOrigins, cfg.GeoHeader, err)
	}
	for name, val := range map[string]string{
		"STEWARD_CORS_ORIGINS": "https://shop.example/checkout",
		"STEWARD_GEO_HEADER":   "CF IPCountry",
	} {
		if _, err := Load(env(map[string]string{name: val})); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%q: %v", name, val, err)
		}
	}
	if _, err := Load(env(map[string]string{"STEWARD_CORS_ORIGINS": "ftp://shop.example"})); err == nil {
		t.Error("an ftp origin was accepted")
	}
}
