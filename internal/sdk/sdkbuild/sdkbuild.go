// Package sdkbuild builds the consent SDK (internal/sdk/src) into the
// minified script internal/sdk embeds, with esbuild's Go API: no Node, no
// npm. Only the generator (internal/sdk/build, run by `go generate
// ./internal/sdk`) and tests import it, so esbuild never links into the
// steward binary (cmd/steward's TestServerBinaryImports checks).
package sdkbuild

import (
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/evanw/esbuild/pkg/api"
)

// Entry is the SDK's entry point, relative to internal/sdk.
const Entry = "src/consent.ts"

// Typings is the SDK's hand-written public typings, relative to
// internal/sdk; the implementation imports its types from it, and it is
// served as is.
const Typings = "src/steward-consent.d.ts"

// Build bundles and minifies the SDK found in sdkDir (internal/sdk) into one
// IIFE script. The output depends only on the sources and the esbuild
// version pinned in go.mod, so a rebuild can be compared byte for byte.
func Build(sdkDir string) ([]byte, error) {
	abs, err := filepath.Abs(sdkDir)
	if err != nil {
		return nil, fmt.Errorf("sdk build: %w", err)
	}
	res := api.Build(api.BuildOptions{
		AbsWorkingDir: abs,
		EntryPoints:   []string{Entry},
		Outfile:       "steward-consent.js",
		Bundle:        true,
		Write:         false,
		Format:        api.FormatIIFE,
		Platform:      api.PlatformBrowser,
		// Every evergreen browser since 2020, which all have the <dialog>
		// element the preferences use.
		Target:            api.ES2020,
		MinifyWhitespace:  true,
		MinifyIdentifiers: true,
		MinifySyntax:      true,
		Charset:           api.CharsetUTF8,
		LegalComments:     api.LegalCommentsNone,
		TreeShaking:       api.TreeShakingTrue,
		LogLevel:          api.LogLevelSilent,
		// tsconfig.json is for editors and tsc; the bundle must not change
		// when someone edits it.
		TsconfigRaw: "{}",
		Banner:      map[string]string{"js": "/* Steward consent SDK (docs/consent-sdk.md) */"},
	})
	if len(res.Errors) > 0 {
		msgs := api.FormatMessages(res.Errors, api.FormatMessagesOptions{Kind: api.ErrorMessage})
		return nil, fmt.Errorf("sdk build: %s", strings.Join(msgs, "\n"))
	}
	if len(res.Warnings) > 0 {
		msgs := api.FormatMessages(res.Warnings, api.FormatMessagesOptions{Kind: api.WarningMessage})
		return nil, fmt.Errorf("sdk build: warnings are errors here:\n%s", strings.Join(msgs, "\n"))
	}
	if len(res.OutputFiles) != 1 {
		return nil, fmt.Errorf("sdk build: esbuild wrote %d files, want 1", len(res.OutputFiles))
	}
	return res.OutputFiles[0].Contents, nil
}

// ArchiveName is the file name an SDK build is kept and served under: its
// content hash (the first 16 hex digits of its SHA-384, the hash the SRI
// integrity attribute carries too).
func ArchiveName(js []byte) string {
	sum := sha512.Sum384(js)
	return "steward-consent." + hex.EncodeToString(sum[:])[:16] + ".js"
}

// Write builds the SDK in sdkDir and writes dist/steward-consent.js (the
// current build), dist/steward-consent.d.ts (the typings) and
// dist/archive/<ArchiveName> (every build ever written stays there, so a
// page that pinned an older build's URL and integrity keeps working after
// Steward is upgraded). It returns the archive name.
func Write(sdkDir string) (string, error) {
	js, err := Build(sdkDir)
	if err != nil {
		return "", err
	}
	dts, err := os.ReadFile(filepath.Join(sdkDir, Typings))
	if err != nil {
		return "", fmt.Errorf("sdk build: %w", err)
	}
	dist := filepath.Join(sdkDir, "dist")
	if err := os.MkdirAll(filepath.Join(dist, "archive"), 0o755); err != nil {
		return "", fmt.Errorf("sdk build: %w", err)
	}
	name := ArchiveName(js)
	for path, body := range map[string][]byte{
		filepath.Join(dist, "steward-consent.js"):   js,
		filepath.Join(dist, "steward-consent.d.ts"): dts,
		filepath.Join(dist, "archive", name):        js,
	} {
		if err := os.WriteFile(path, body, 0o644); err != nil {
			return "", fmt.Errorf("sdk build: %w", err)
		}
	}
	return name, nil
}
