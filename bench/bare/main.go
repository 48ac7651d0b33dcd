// Command bare is the baseline of scripts/bench.sh: a fiber v2 server whose
// GET /v1/consent/check answers with a constant JSON body shaped like
// Steward's, with no authentication, no database and no policy evaluation.
// Its throughput is the ceiling the HTTP stack alone allows on this machine.
//
// Usage:
//
//	bare -addr 127.0.0.1:18081
package main

import (
	"flag"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gofiber/fiber/v2"
)

// body is what Steward answers for a subject with no record under CCPA.
var body = []byte(`{"allow":true,"reason":"opt_out_default","policy_revision":"bench-constant","regime":"ccpa"}`)

func main() {
	addr := flag.String("addr", "127.0.0.1:18081", "listen address")
	flag.Parse()

	app := fiber.New(fiber.Config{
		Prefork:               false,
		DisableStartupMessage: true,
		AppName:               "steward-bench-bare",
		ReadTimeout:           10 * time.Second,
		WriteTimeout:          10 * time.Second,
		IdleTimeout:           60 * time.Second,
	})
	app.Get("/healthz", func(c *fiber.Ctx) error {
		return c.SendString("ok")
	})
	app.Get("/v1/consent/check", func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
		return c.Send(body)
	})

	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
		<-sig
		_ = app.ShutdownWithTimeout(5 * time.Second)
	}()
	if err := app.Listen(*addr); err != nil {
		log.Fatalf("bare: %v", err)
	}
}
