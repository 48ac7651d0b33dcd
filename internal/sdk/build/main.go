// Command build writes the consent SDK's bundle into internal/sdk/dist:
// `go generate ./internal/sdk` runs it (from internal/sdk). The output is
// committed and embedded, so building Steward needs neither this command
// nor esbuild.
package main

import (
	"fmt"
	"os"

	"github.com/steward-privacy/steward/internal/sdk/sdkbuild"
)

func main() {
	dir := "."
	if len(os.Args) > 1 {
		dir = os.Args[1]
	}
	name, err := sdkbuild.Write(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("wrote dist/steward-consent.js, dist/steward-consent.d.ts and dist/archive/%s\n", name)
}
