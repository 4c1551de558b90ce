package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// The service every end-to-end test talks to, started once by TestMain
// through run, the code path of main, with MONGODB_URI set: to the server
// given in the environment (seeding a fresh database, dropped at the end),
// or else to this program's own -db-only mode, built without the race
// detector and run as a separate process with the sample data seeded. The
// database then runs at full speed under `go test -race`, which instruments
// only the service. TestEmbeddedService covers the default mode, with the
// embedded database in this process.
var shared *service

// The sample data the service was seeded with, for expected answers.
var (
	wantUsers, wantPosts = sampleData()
)

// testMaxTime is the services' time limit per request in tests: generous,
// because the database scans every document of a collection for each
// query, and a busy machine or the race detector makes that several times
// slower. The tests check answers, not speed.
const testMaxTime = 2 * time.Minute

func TestMain(m *testing.M) {
	code := runTests(m)
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func runTests(m *testing.M) int {
	flag.Parse() // for testing.Verbose
	began := time.Now()
	uri := os.Getenv("MONGODB_URI")
	dbName := fmt.Sprintf("mongohttp_example_test_%d", os.Getpid())
	if uri == "" {
		db, err := startDatabaseProcess(dbName)
		if err != nil {
			fmt.Fprintln(os.Stderr, "starting the database:", err)
			return 1
		}
		defer db.stop()
		uri = db.uri
	}
	svc, err := startService([]string{"-addr", "127.0.0.1:0", "-debug-addr", "127.0.0.1:0", "-db", dbName, "-seed", "-max-time", testMaxTime.String()},
		map[string]string{"MONGODB_URI": uri})
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the example service:", err)
		return 1
	}
	shared = svc
	if testing.Verbose() {
		fmt.Printf("service up in %s at %s (database %s)\n", time.Since(began).Round(time.Millisecond), svc.base, svc.dbName)
	}

	code := m.Run()

	if err := dropDatabase(uri, dbName); err != nil {
		fmt.Fprintln(os.Stderr, "dropping the test database:", err)
		code = 1
	}
	if err := svc.stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the example service:", err)
		code = 1
	}
	if n, leaks := web.report(); len(leaks) > 0 {
		fmt.Fprintf(os.Stderr, "%d of %d response bodies leaked a hidden field:\n%s\n", len(leaks), n, strings.Join(leaks, "\n"))
		code = 1
	} else if testing.Verbose() {
		fmt.Printf("checked %d response bodies: no password_hash anywhere\n", n)
	}
	return code
}

// binDir holds the built program, removed at the end.
var binDir string

// exampleBinary builds this program, without the race detector, once per
// test run, and returns its path.
var exampleBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "mongohttp-example-bin-")
	if err != nil {
		return "", err
	}
	binDir = dir
	bin := filepath.Join(dir, "example")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// process is a running copy of the program.
type process struct {
	cmd            *exec.Cmd
	stdout, stderr *lines
	exited         chan struct{}
	uri            string // for -db-only
}

// startProcess runs the built program with args and the test's
// environment, less MONGODB_URI and ADDR, plus env.
func startProcess(args []string, env ...string) (*process, error) {
	if err := checkDebugAddr(args); err != nil {
		return nil, err
	}
	bin, err := exampleBinary()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "MONGODB_URI=") || strings.HasPrefix(kv, "ADDR=")
	})
	cmd.Env = append(cmd.Env, env...)
	p := &process{cmd: cmd, stdout: newLines(), stderr: newLines(), exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// signal sends sig and returns the exit status, or -1 when the process has
// not exited within a minute (it is then killed).
func (p *process) signal(sig os.Signal) int {
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.exited:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(time.Minute):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return -1
	}
}

func (p *process) stop() { p.signal(syscall.SIGTERM) }

var uriLineRE = regexp.MustCompile(`(?m)^MONGODB_URI=(mongodb://\S+)$`)

// startDatabaseProcess runs the program's -db-only mode with the sample
// data seeded into dbName, its data in a temporary directory.
func startDatabaseProcess(dbName string) (*process, error) {
	p, err := startProcess([]string{"-db-only", "-seed", "-db", dbName})
	if err != nil {
		return nil, err
	}
	m, err := p.stdout.wait(uriLineRE, 3*time.Minute, exitErr(p))
	if err != nil {
		p.stop()
		return nil, fmt.Errorf("%w\nstderr:\n%s", err, p.stderr)
	}
	p.uri = m[1]
	return p, nil
}

// exitErr delivers when p exits.
func exitErr(p *process) <-chan error {
	c := make(chan error, 1)
	go func() {
		<-p.exited
		c <- fmt.Errorf("exit status %d", p.cmd.ProcessState.ExitCode())
	}()
	return c
}

func dropDatabase(uri, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mc, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		return err
	}
	defer func() { _ = mc.Disconnect(ctx) }()
	return mc.Database(name).Drop(ctx)
}

// checkDebugAddr makes sure a test never takes the real operator port
// (6060): a program that serves HTTP must be given -debug-addr, a free
// port or "".
func checkDebugAddr(args []string) error {
	if slices.Contains(args, "-db-only") || slices.Contains(args, "-debug-addr") {
		return nil
	}
	return fmt.Errorf("%q: tests pass -debug-addr 127.0.0.1:0 or \"\", never the default port", args)
}

// service is a running instance of run.
type service struct {
	base   string // http://host:port
	ops    string // the operator listener's http://host:port; "" when off
	dbURI  string // the database server's URI
	dbName string
	stdout *lines
	stderr *lines
	cancel context.CancelFunc
	done   chan error
}

var (
	listeningRE = regexp.MustCompile(`(?m)^mongohttp example listening on (http://\S+)$`)
	databaseRE  = regexp.MustCompile(`(?m)^database (\S+) on (?:the embedded FerretDB at (\S+)|MONGODB_URI)$`)
	operatorRE  = regexp.MustCompile(`(?m)^operator endpoints (?:on (http://\S+) \(|off \()`)
	stopHintRE  = regexp.MustCompile(`(?m)^Stop with Ctrl-C\.$`)
)

// startService calls run with args and an environment made of env alone,
// and waits until it listens.
func startService(args []string, env map[string]string) (*service, error) {
	if err := checkDebugAddr(args); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &service{stdout: newLines(), stderr: newLines(), cancel: cancel, done: make(chan error, 1)}
	go func() {
		s.done <- run(ctx, args, func(k string) string { return env[k] }, s.stdout, s.stderr)
	}()
	m, err := s.stdout.wait(listeningRE, 3*time.Minute, s.done)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("%w\nstderr:\n%s", err, s.stderr)
	}
	s.base = m[1]
	d, err := s.stdout.wait(databaseRE, time.Second, nil)
	if err != nil {
		cancel()
		return nil, err
	}
	o, err := s.stdout.wait(operatorRE, time.Second, nil)
	if err != nil {
		cancel()
		return nil, err
	}
	s.ops = o[1]
	if _, err := s.stdout.wait(stopHintRE, time.Minute, s.done); err != nil {
		cancel()
		return nil, err
	}
	s.dbName, s.dbURI = d[1], d[2]
	if s.dbURI == "" {
		s.dbURI = env["MONGODB_URI"]
	}
	return s, nil
}

// stop cancels the service's context, as a signal does, and returns what
// run returned.
func (s *service) stop() error {
	s.cancel()
	select {
	case err := <-s.done:
		return err
	case <-time.After(time.Minute):
		return errors.New("run did not return within a minute of the cancellation")
	}
}

// lines collects a writer's output and lets a test wait for a line.
type lines struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

func newLines() *lines { return &lines{changed: make(chan struct{})} }

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	close(l.changed)
	l.changed = make(chan struct{})
	return len(p), nil
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// wait returns the submatches of re once the output has a match, and fails
// after limit or when done delivers (the program ended first).
func (l *lines) wait(re *regexp.Regexp, limit time.Duration, done <-chan error) ([]string, error) {
	deadline := time.After(limit)
	for {
		l.mu.Lock()
		m := re.FindStringSubmatch(l.buf.String())
		changed := l.changed
		out := l.buf.String()
		l.mu.Unlock()
		if m != nil {
			return m, nil
		}
		select {
		case <-changed:
		case err := <-done:
			return nil, fmt.Errorf("the program ended (%v) before printing %q; it printed:\n%s", err, re, out)
		case <-deadline:
			return nil, fmt.Errorf("no %q after %s; output:\n%s", re, limit, out)
		}
	}
}

// web is the HTTP client of every test. Its transport reads each response
// body whole and checks it for leaks of the hidden field.
var web = &leakCheckingClient{Client: &http.Client{Timeout: time.Minute}}

type leakCheckingClient struct {
	*http.Client
	mu     sync.Mutex
	bodies int
	leaks  []string
}

func init() {
	web.Client.Transport = roundTripFunc(func(req *http.Request) (*http.Response, error) {
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			return nil, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		leak := leakIn(req, resp, body)
		web.mu.Lock()
		web.bodies++
		if leak != "" {
			web.leaks = append(web.leaks, leak)
		}
		web.mu.Unlock()
		return resp, nil
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func (c *leakCheckingClient) report() (int, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bodies, append([]string(nil), c.leaks...)
}

// hashWindows holds every 16-byte window of the sample password hashes
// (past their common prefix): a body holding any of them leaks a hash,
// even cut or embedded in something else.
var hashWindows = func() map[string]bool {
	const w = 16
	m := make(map[string]bool)
	for _, u := range wantUsers {
		tail := strings.TrimPrefix(u.PasswordHash, passwordHashPrefix)
		for i := 0; i+w <= len(tail); i++ {
			m[tail[i:i+w]] = true
		}
	}
	return m
}()

// leakIn says how a response leaks the hidden field, or "" when it does not.
// No body may hold a password hash or a piece of one. The field's name may
// appear only in the problem answer to a request that named it itself (the
// error detail quotes the client's input).
func leakIn(req *http.Request, resp *http.Response, body []byte) string {
	where := req.Method + " " + req.URL.RequestURI()
	if bytes.Contains(body, []byte(passwordHashPrefix)) {
		return where + ": the body holds a password hash"
	}
	for i := 0; i+16 <= len(body); i++ {
		if hashWindows[string(body[i:i+16])] {
			return where + ": the body holds part of a password hash"
		}
	}
	if bytes.Contains(body, []byte(`"_etag"`)) {
		return where + ": the body holds the version field, which only the ETag header carries"
	}
	if !bytes.Contains(body, []byte("password_hash")) {
		return ""
	}
	asked, _ := url.PathUnescape(req.URL.RequestURI())
	asked, _ = url.QueryUnescape(asked)
	if !strings.Contains(asked, "password_hash") {
		return where + ": the body names password_hash, which the request did not"
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); resp.StatusCode < 400 || mt != "application/problem+json" {
		return where + ": a non-problem answer names password_hash"
	}
	return ""
}

// fetch makes a request to the shared service (or to an absolute URL) and
// returns the answer with its body.
func fetch(t *testing.T, method, target string, header ...string) (*http.Response, []byte) {
	t.Helper()
	if strings.HasPrefix(target, "/") {
		target = shared.base + target
	}
	resp, body, err := tryFetch(method, target, header...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	return resp, body
}

// tryFetch makes a request and returns the answer with its body; it may be
// called from any goroutine. A leak is an error.
func tryFetch(method, target string, header ...string) (*http.Response, []byte, error) {
	req, err := http.NewRequest(method, target, nil)
	if err != nil {
		return nil, nil, err
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := web.Do(req)
	if err != nil {
		return nil, nil, err
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, err
	}
	if leak := leakIn(req, resp, body); leak != "" {
		return resp, body, fmt.Errorf("LEAK %s\n%s", leak, body)
	}
	return resp, body, nil
}
