package testpeer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PGCluster is a private PostgreSQL cluster (initdb into a temporary
// directory, its own loopback port and socket directory) that a test may
// stop, crash and restart at will: the database-fault tests must never touch
// the shared server every other test runs on.
//
// initdb and postgres refuse to run as root; when the test runs as root the
// cluster is created and run as the "postgres" OS user, in a directory that
// user owns.
type PGCluster struct {
	// Port is the loopback TCP port the cluster listens on.
	Port int
	// Dir holds the data directory, the socket directory and the server log.
	Dir string

	bin  string
	data string
	sock string
	log  string
	cred *syscall.Credential // nil when not running as root

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// ShutdownMode is how PostgreSQL is stopped: the signal the postmaster gets.
type ShutdownMode string

const (
	// Fast rolls back open transactions, disconnects clients and shuts
	// down cleanly (SIGINT, pg_ctl -m fast).
	Fast ShutdownMode = "fast"
	// Immediate aborts every process without a checkpoint, like a crash;
	// the next start runs crash recovery from the WAL (SIGQUIT, pg_ctl -m
	// immediate).
	Immediate ShutdownMode = "immediate"
)

// PGBinDir finds PostgreSQL's server binaries: `pg_config --bindir`, else
// Debian's /usr/lib/postgresql/<version>/bin.
func PGBinDir() (string, error) {
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		d := strings.TrimSpace(string(out))
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(matches) > 0 {
		return filepath.Dir(matches[len(matches)-1]), nil
	}
	return "", errors.New("initdb not found (pg_config --bindir, /usr/lib/postgresql/*/bin): install the postgresql server package (apt-get install postgresql)")
}

// PG starts a private cluster for the test and removes it when the test
// ends. It fails the test when PostgreSQL's server binaries are missing.
func PG(t testing.TB) *PGCluster {
	t.Helper()
	c, err := StartPG()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// StartPG runs initdb into a new temporary directory and starts the server.
// Close stops it and removes the directory.
func StartPG() (c *PGCluster, err error) {
	bin, err := PGBinDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "steward-pgcluster-")
	if err != nil {
		return nil, fmt.Errorf("pg cluster dir: %w", err)
	}
	c = &PGCluster{Dir: dir, bin: bin, data: filepath.Join(dir, "data"), sock: filepath.Join(dir, "sock"), log: filepath.Join(dir, "postgres.log")}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	if err := os.Mkdir(c.sock, 0o700); err != nil {
		return nil, fmt.Errorf("pg cluster socket dir: %w", err)
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root, initdb needs the postgres OS user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		for _, p := range []string{dir, c.sock} {
			if err := os.Chown(p, uid, gid); err != nil {
				return nil, fmt.Errorf("chown %s: %w", p, err)
			}
		}
	}
	initdb := c.command(filepath.Join(bin, "initdb"), "-D", c.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync")
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %w: %s", err, out)
	}
	if c.Port, err = pgFreePort(); err != nil {
		return nil, err
	}
	if err := c.Start(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *PGCluster) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = c.Dir
	// Its own process group, so ^C on the test does not reach it before
	// Close does; and a SIGQUIT (immediate shutdown, which also ends the
	// backends) if the test process dies without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGQUIT, Credential: c.cred}
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	return cmd
}

func pgFreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// URL is a connection URL for database name on the cluster (superuser
// postgres, trust authentication).
func (c *PGCluster) URL(name string) string {
	u := url.URL{Scheme: "postgres", User: url.User("postgres"), Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Port)), Path: "/" + name, RawQuery: "sslmode=disable"}
	return u.String()
}

// Start starts the server (after Stop) and waits until it accepts
// connections.
func (c *PGCluster) Start() error {
	c.mu.Lock()
	if c.cmd != nil {
		c.mu.Unlock()
		return errors.New("pg cluster: already running")
	}
	logf, err := os.OpenFile(c.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.mu.Unlock()
		return fmt.Errorf("pg cluster log: %w", err)
	}
	cmd := c.command(filepath.Join(c.bin, "postgres"), "-D", c.data, "-p", strconv.Itoa(c.Port), "-k", c.sock,
		"-c", "listen_addresses=127.0.0.1",
		// A test cluster: durability across an OS crash is not what is
		// tested (a PostgreSQL crash still replays the WAL), speed is.
		"-c", "fsync=off", "-c", "full_page_writes=off", "-c", "synchronous_commit=on",
		"-c", "max_connections=200", "-c", "shared_buffers=32MB")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		c.mu.Unlock()
		return fmt.Errorf("start postgres: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	c.cmd, c.done = cmd, done
	c.mu.Unlock()

	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, c.URL("postgres"))
		if err == nil {
			conn.Close(ctx)
			cancel()
			return nil
		}
		cancel()
		select {
		case <-done:
			return fmt.Errorf("postgres exited at start: %s", c.logTail())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres not accepting connections after 60 s: %v: %s", err, c.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop shuts the server down in mode and waits for the postmaster to exit.
func (c *PGCluster) Stop(mode ShutdownMode) error {
	c.mu.Lock()
	cmd, done := c.cmd, c.done
	c.cmd, c.done = nil, nil
	c.mu.Unlock()
	if cmd == nil {
		return nil
	}
	sig := syscall.SIGINT
	if mode == Immediate {
		sig = syscall.SIGQUIT
	}
	if err := cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signal postgres: %w", err)
	}
	select {
	case <-done:
		return nil
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("postgres did not stop (%s) within 60 s: %s", mode, c.logTail())
	}
}

// Restart stops the server in mode and starts it again.
func (c *PGCluster) Restart(mode ShutdownMode) error {
	if err := c.Stop(mode); err != nil {
		return err
	}
	return c.Start()
}

// TerminateBackends ends every client backend but the caller's own
// (pg_terminate_backend), as a failover or an administrator would, and
// returns how many it ended.
func (c *PGCluster) TerminateBackends(ctx context.Context) (int, error) {
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return 0, fmt.Errorf("connect to terminate backends: %w", err)
	}
	defer conn.Close(ctx)
	var n int
	err = conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))
		FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("terminate backends: %w", err)
	}
	return n, nil
}

// CreateDatabase creates an empty database on the cluster.
func (c *PGCluster) CreateDatabase(ctx context.Context, name string) error {
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// Log is the server's log so far, for failure reports.
func (c *PGCluster) Log() string {
	b, _ := os.ReadFile(c.log)
	return string(b)
}

func (c *PGCluster) logTail() string {
	s := c.Log()
	if len(s) > 2000 {
		s = s[len(s)-2000:]
	}
	return s
}

// Close stops the server immediately and removes its directory.
func (c *PGCluster) Close() {
	_ = c.Stop(Immediate)
	_ = os.RemoveAll(c.Dir)
}
