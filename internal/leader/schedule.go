package leader

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/go-co-op/gocron/v2"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Task is one piece of scheduled work: a plain function that does the work
// once (the scheduler only triggers it; tests call it directly). It
// returns how many things it did, for the log.
type Task struct {
	Name string
	// Every runs the task at this interval; Cron instead runs it on a
	// five-field cron expression in UTC (checked when configured).
	Every time.Duration
	Cron  string
	Run   func(ctx context.Context) (int, error)
}

// Scheduler runs tasks on whichever replica holds the lock (gocron with
// the Elector): the others skip each firing. A run still going when its
// next firing comes is not started twice.
type Scheduler struct {
	elector *Elector
	sched   gocron.Scheduler
}

// Schedule starts tasks on the replica elected by lock key on pool.
func Schedule(pool *pgxpool.Pool, key int64, log *slog.Logger, tasks ...Task) (*Scheduler, error) {
	e := NewElector(pool, key)
	s, err := gocron.NewScheduler(gocron.WithDistributedElector(e), gocron.WithLogger(gocronLogger{log}), gocron.WithLocation(time.UTC))
	if err != nil {
		e.Close()
		return nil, fmt.Errorf("scheduler: %w", err)
	}
	for _, t := range tasks {
		def := gocron.JobDefinition(gocron.DurationJob(t.Every))
		if t.Cron != "" {
			def = gocron.CronJob(t.Cron, false)
		}
		run := t.Run
		name := t.Name
		_, err := s.NewJob(def, gocron.NewTask(func(ctx context.Context) {
			n, err := run(ctx)
			switch {
			case err != nil:
				log.Error("scheduled task failed", "task", name, "err", err)
			case n > 0:
				log.Info("scheduled task done", "task", name, "count", n)
			}
		}), gocron.WithName(name), gocron.WithSingletonMode(gocron.LimitModeReschedule))
		if err != nil {
			_ = s.Shutdown()
			e.Close()
			return nil, fmt.Errorf("scheduler: task %s: %w", name, err)
		}
	}
	s.Start()
	return &Scheduler{elector: e, sched: s}, nil
}

// Stop stops firing tasks and gives up the lock.
func (s *Scheduler) Stop() {
	_ = s.sched.Shutdown()
	s.elector.Close()
}

// gocronLogger sends gocron's own messages to slog, its chatter at debug.
type gocronLogger struct{ l *slog.Logger }

func (g gocronLogger) Debug(msg string, args ...any) { g.l.Debug(msg, args...) }
func (g gocronLogger) Info(msg string, args ...any)  { g.l.Debug(msg, args...) }
func (g gocronLogger) Warn(msg string, args ...any)  { g.l.Warn(msg, args...) }
func (g gocronLogger) Error(msg string, args ...any) { g.l.Error(msg, args...) }
