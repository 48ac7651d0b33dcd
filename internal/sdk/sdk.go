// Package sdk holds Steward's consent SDK for the web product: the script
// built from TypeScript in src/ (by `go generate`, see sdkbuild) and
// committed in dist/, embedded here with its typings, its content hash, its
// Subresource Integrity hash and a gzipped copy. internal/api serves it
// under /sdk/v1/; docs/consent-sdk.md is the guide.
package sdk

import (
	"bytes"
	"compress/gzip"
	"crypto/sha512"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io/fs"
	"path"
	"strings"
)

//go:generate go run ./build

// Base is where the SDK is served; v1 is the API version of the script's
// contract (options, steward.consent), not of a build.
const Base = "/sdk/v1/"

// TypingsName is the typings' file name under Base.
const TypingsName = "steward-consent.d.ts"

//go:embed dist/steward-consent.js dist/steward-consent.d.ts dist/archive
var dist embed.FS

// Script is one build of the SDK.
type Script struct {
	// Name is the file name under Base: steward-consent.<hash>.js.
	Name string
	// Hash is the content hash in the name: the first 16 hex digits of
	// the SHA-384 of Body.
	Hash string
	// Integrity is the SRI value for a <script integrity> attribute.
	Integrity string
	Body      []byte
	// Gzip is Body gzipped (best compression), served to clients that
	// accept it.
	Gzip []byte
}

// URL is the script's path under Base.
func (s Script) URL() string { return Base + s.Name }

var (
	current  Script
	archive  = map[string]Script{}
	typings  []byte
	loadErrs []string
)

// The embedded files are read once: a broken dist/ (a missing file, an
// archived build under the wrong name) is a build mistake the tests catch
// through Err.
func init() {
	body, err := dist.ReadFile("dist/steward-consent.js")
	if err != nil {
		loadErrs = append(loadErrs, err.Error())
	}
	current = newScript(body)
	if typings, err = dist.ReadFile("dist/" + TypingsName); err != nil {
		loadErrs = append(loadErrs, err.Error())
	}
	ents, err := fs.ReadDir(dist, "dist/archive")
	if err != nil {
		loadErrs = append(loadErrs, err.Error())
	}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".js") {
			continue
		}
		b, err := dist.ReadFile(path.Join("dist/archive", e.Name()))
		if err != nil {
			loadErrs = append(loadErrs, err.Error())
			continue
		}
		s := newScript(b)
		if s.Name != e.Name() {
			loadErrs = append(loadErrs, fmt.Sprintf("dist/archive/%s holds a build whose hash names it %s", e.Name(), s.Name))
			continue
		}
		archive[s.Name] = s
	}
	if _, ok := archive[current.Name]; !ok {
		loadErrs = append(loadErrs, fmt.Sprintf("dist/archive lacks the current build %s", current.Name))
	}
	archive[current.Name] = current
}

func newScript(body []byte) Script {
	sum := sha512.Sum384(body)
	hash := hex.EncodeToString(sum[:])[:16]
	var gz bytes.Buffer
	w, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	_, _ = w.Write(body)
	_ = w.Close()
	return Script{
		Name: "steward-consent." + hash + ".js", Hash: hash,
		Integrity: "sha384-" + base64.StdEncoding.EncodeToString(sum[:]),
		Body:      body, Gzip: gz.Bytes(),
	}
}

// Err reports a broken embedded dist/ (tests call it; the server serves
// what there is).
func Err() error {
	if len(loadErrs) > 0 {
		return fmt.Errorf("sdk: %s", strings.Join(loadErrs, "; "))
	}
	return nil
}

// Current is the build this Steward serves as the latest.
func Current() Script { return current }

// Lookup finds a build by its file name (steward-consent.<hash>.js): the
// current one or an archived one.
func Lookup(name string) (Script, bool) {
	s, ok := archive[name]
	return s, ok
}

// Builds lists every build served, by name.
func Builds() []string {
	out := make([]string, 0, len(archive))
	for n := range archive {
		out = append(out, n)
	}
	return out
}

// Typings is the SDK's TypeScript declarations.
func Typings() []byte { return typings }

// Manifest describes the current build for pages and tooling:
// GET /sdk/v1/manifest.json.
type Manifest struct {
	Name       string `json:"name"`
	Version    string `json:"version"`
	URL        string `json:"url"`
	Hash       string `json:"hash"`
	Integrity  string `json:"integrity"`
	Bytes      int    `json:"bytes"`
	GzipBytes  int    `json:"gzip_bytes"`
	TypingsURL string `json:"typings_url"`
	LatestURL  string `json:"latest_url"`
}

// CurrentManifest is the manifest of the current build.
func CurrentManifest() Manifest {
	return Manifest{
		Name: "steward-consent", Version: "v1", URL: current.URL(), Hash: current.Hash, Integrity: current.Integrity,
		Bytes: len(current.Body), GzipBytes: len(current.Gzip), TypingsURL: Base + TypingsName,
		LatestURL: Base + "steward-consent.js",
	}
}
