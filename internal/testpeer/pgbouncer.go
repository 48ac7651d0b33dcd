package testpeer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// PgBouncerInstall is how to get the pgbouncer binary; the tests name it
// when the binary is missing. Debian bookworm's package is PgBouncer 1.18,
// which has no prepared-statement support in transaction mode: the
// configuration Steward must work with.
const PgBouncerInstall = "apt-get install -y pgbouncer (scripts/ensure-peers.sh pgbouncer)"

// ErrPgBouncerNotFound is returned by StartPgBouncer when no pgbouncer
// binary is found.
var ErrPgBouncerNotFound = errors.New("pgbouncer not found on PATH or in /usr/sbin: run make test (scripts/ensure-peers.sh installs it) or " + PgBouncerInstall)

// PgBouncerConfig tunes StartPgBouncer. Zero fields take the defaults noted.
type PgBouncerConfig struct {
	// PoolMode is pgbouncer's pool_mode; transaction.
	PoolMode string
	// PoolSize is default_pool_size, the server connections per database
	// and user; 4, smaller than Steward's own pool on purpose, so client
	// connections share server connections and anything that assumes a
	// session breaks.
	PoolSize int
}

// PgBouncer is a running pgbouncer in front of a PostgreSQL server: every
// database on the server is reachable through it under the same name.
type PgBouncer struct {
	// Addr is host:port of the pooler (127.0.0.1).
	Addr string

	cmd  *exec.Cmd
	done chan struct{}
	out  *versityGWLog // pgbouncer's log, for failure reports
	dir  string
	stop sync.Once
}

// StartPgBouncerT starts a pgbouncer in front of the server that upstream
// (a PostgreSQL URL) names, and stops it when the test ends. It fails the
// test when the binary is missing: a pooler test that did not run must
// not look like one that passed.
func StartPgBouncerT(t testing.TB, upstream string, cfg PgBouncerConfig) *PgBouncer {
	t.Helper()
	p, err := StartPgBouncer(upstream, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return p
}

// findPgBouncer looks on PATH, then in /usr/sbin (Debian installs it
// there, which is not on every user's PATH).
func findPgBouncer() (string, error) {
	if p, err := findBinary("pgbouncer"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/pgbouncer", "/usr/local/sbin/pgbouncer", "/usr/local/bin/pgbouncer"} {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", ErrPgBouncerNotFound
}

// StartPgBouncer starts a pgbouncer outside a test; the caller must call
// Stop.
func StartPgBouncer(upstream string, cfg PgBouncerConfig) (*PgBouncer, error) {
	bin, err := findPgBouncer()
	if err != nil {
		return nil, err
	}
	up, err := pgconn.ParseConfig(upstream)
	if err != nil {
		return nil, fmt.Errorf("pgbouncer: upstream URL: %w", err)
	}
	if cfg.PoolMode == "" {
		cfg.PoolMode = "transaction"
	}
	if cfg.PoolSize <= 0 {
		cfg.PoolSize = 4
	}
	// The port is found by binding and releasing it, so another process
	// can take it first; pgbouncer then exits at once and a new port is
	// tried.
	var last error
	for range 5 {
		p, err := startPgBouncer(bin, up, cfg)
		if err == nil {
			return p, nil
		}
		last = err
	}
	return nil, last
}

func startPgBouncer(bin string, up *pgconn.Config, cfg PgBouncerConfig) (*PgBouncer, error) {
	// Not t.TempDir: pgbouncer refuses to run as root, so as root it is
	// started with -u postgres, which must be able to read its files, and
	// a test's temporary directory is private to the user running go test.
	dir, err := os.MkdirTemp("", "pgbouncer-")
	if err != nil {
		return nil, err
	}
	p := &PgBouncer{dir: dir, done: make(chan struct{}), out: &versityGWLog{}}
	fail := func(err error) (*PgBouncer, error) {
		p.Stop()
		return nil, err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return fail(err)
	}
	port, err := pgbouncerPort()
	if err != nil {
		return fail(err)
	}
	p.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	upUser := up.User
	if upUser == "" {
		upUser = "postgres"
	}
	// trust: the test server trusts loopback connections; the user must
	// still be listed in the auth file.
	users := fmt.Sprintf("%q %q\n", upUser, "")
	if err := os.WriteFile(filepath.Join(dir, "userlist.txt"), []byte(users), 0o644); err != nil {
		return fail(err)
	}
	// "*" routes every database name to the same-named database on the
	// upstream server, so a test database created after the pooler
	// started is reachable too. No unix socket: two poolers would fight
	// over /tmp/.s.PGSQL.<port>. No pidfile: it runs in the foreground as
	// this process's child. The log goes to stderr (captured).
	ini := fmt.Sprintf(`[databases]
* = host=%s port=%d

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = trust
auth_file = %s
admin_users = %s
stats_users = %s
pool_mode = %s
default_pool_size = %d
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = 1000
max_db_connections = 0
ignore_startup_parameters = extra_float_digits
pidfile =
logfile =
log_connections = 0
log_disconnections = 0
server_reset_query =
`, up.Host, up.Port, port, filepath.Join(dir, "userlist.txt"), upUser, upUser, cfg.PoolMode, cfg.PoolSize)
	iniPath := filepath.Join(dir, "pgbouncer.ini")
	if err := os.WriteFile(iniPath, []byte(ini), 0o644); err != nil {
		return fail(err)
	}
	args := []string{iniPath}
	if os.Geteuid() == 0 {
		// pgbouncer will not run as root; it drops to this user itself.
		if _, err := user.Lookup("postgres"); err != nil {
			return fail(fmt.Errorf("pgbouncer refuses to run as root and there is no postgres user to run it as: %w", err))
		}
		args = []string{"-u", "postgres", iniPath}
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		return fail(fmt.Errorf("start pgbouncer: %w", err))
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	if err := p.wait(up.Database, upUser, 15*time.Second); err != nil {
		return fail(err)
	}
	return p, nil
}

// pgbouncerPort returns a loopback TCP port that was free a moment ago.
func pgbouncerPort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// wait polls until a query through the pooler answers while our process
// is still running (a pgbouncer that lost the port to another process
// exits, and the answer would be the other's).
func (p *PgBouncer) wait(database, usr string, limit time.Duration) error {
	if database == "" {
		database = "postgres"
	}
	url := fmt.Sprintf("postgres://%s@%s/%s?sslmode=disable&default_query_exec_mode=simple_protocol&connect_timeout=2", usr, p.Addr, database)
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return fmt.Errorf("pgbouncer exited at start: %s", p.out.String())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		conn, err := pgx.Connect(ctx, url)
		if err == nil {
			_, err = conn.Exec(ctx, "SELECT 1")
			_ = conn.Close(ctx)
		}
		cancel()
		if err == nil {
			select {
			case <-p.done:
				return fmt.Errorf("pgbouncer exited at start: %s", p.out.String())
			case <-time.After(50 * time.Millisecond):
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("pgbouncer did not answer on %s within %v: %s", p.Addr, limit, p.out.String())
}

// URL returns direct (a PostgreSQL URL) with its host and port replaced
// by the pooler's: the same database and user, through pgbouncer.
func (p *PgBouncer) URL(direct string) (string, error) {
	if !strings.Contains(direct, "://") {
		return "", fmt.Errorf("pgbouncer: want a postgres:// URL, got a key=value string")
	}
	scheme, rest, _ := strings.Cut(direct, "://")
	userinfo := ""
	if at := strings.LastIndex(strings.SplitN(rest, "/", 2)[0], "@"); at >= 0 {
		userinfo, rest = rest[:at+1], rest[at+1:]
	}
	hostport, tail := rest, ""
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		hostport, tail = rest[:i], rest[i:]
	}
	if hostport == "" {
		return "", fmt.Errorf("pgbouncer: URL has no host")
	}
	return scheme + "://" + userinfo + p.Addr + tail, nil
}

// Show runs an admin console command (SHOW POOLS, SHOW STATS, ...) and
// returns its rows as column-name maps of text values.
func (p *PgBouncer) Show(ctx context.Context, usr, what string) ([]map[string]string, error) {
	url := fmt.Sprintf("postgres://%s@%s/pgbouncer?sslmode=disable&default_query_exec_mode=simple_protocol", usr, p.Addr)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("pgbouncer admin: %w", err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SHOW "+what)
	if err != nil {
		return nil, fmt.Errorf("pgbouncer admin: SHOW %s: %w", what, err)
	}
	defer rows.Close()
	var out []map[string]string
	for rows.Next() {
		vals := rows.RawValues()
		m := map[string]string{}
		for i, f := range rows.FieldDescriptions() {
			m[f.Name] = string(vals[i])
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// Log returns what pgbouncer has logged so far.
func (p *PgBouncer) Log() string { return p.out.String() }

// Stop kills pgbouncer (this process's own child), waits for it and
// removes its files.
func (p *PgBouncer) Stop() {
	p.stop.Do(func() {
		if p.cmd != nil && p.cmd.Process != nil {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if p.dir != "" {
			_ = os.RemoveAll(p.dir)
		}
	})
}
