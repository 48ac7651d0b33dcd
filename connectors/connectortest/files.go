package connectortest

import (
	"strings"

	"github.com/steward-privacy/steward/connectors"
)

// fileDigest is a disclosed file in a comparable form: its description
// and a digest of its content.
type fileDigest struct {
	connectors.File
	SHA256 string `json:"sha256"`
}

// archivePath reports whether name can be a path inside an export
// archive without escaping it.
func archivePath(name string) bool {
	if name == "" || strings.HasPrefix(name, "/") || strings.Contains(name, `\`) {
		return false
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	return true
}
