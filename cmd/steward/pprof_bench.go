//go:build stewardpprof

package main

// A bench build only (go build -tags stewardpprof): serves net/http/pprof on
// $STEWARD_PPROF_ADDR so scripts/bench.sh (BENCH_PPROF=1) can take a CPU
// profile of `steward serve` under wrk. Never part of a release build: the
// profiler would expose the process's memory to whoever reaches the port.

import (
	"log"
	"net/http"
	_ "net/http/pprof" // registers /debug/pprof on http.DefaultServeMux
	"os"
)

func init() {
	addr := os.Getenv("STEWARD_PPROF_ADDR")
	if addr == "" {
		return
	}
	go func() {
		if err := http.ListenAndServe(addr, nil); err != nil {
			log.Printf("pprof: %v", err)
		}
	}()
}
