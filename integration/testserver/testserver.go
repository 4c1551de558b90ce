// Package testserver gives tests a real MongoDB-compatible server.
//
// By default it runs FerretDB (SQLite backend, data in a temporary
// directory, logs silenced) as a child process: the program in
// ferretdbproc, built once per test process with the go command from this
// module, without the race detector. The child exits when the test process
// does, because it stops when its standard input closes. The test process
// keeps a small TCP proxy in front of it (see Server). When MONGODB_URI is
// set, the same tests run against that server instead.
//
// It lives in a nested module so that FerretDB never enters the root go.mod,
// and only ferretdbproc imports FerretDB, so test binaries do not link it.
package testserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Server is a FerretDB child process behind a small TCP proxy in the test
// process, so that tests can take the database away and bring it back on
// the same address. Stop acts like a crash or a network partition: the
// proxy drops every connection at once, then FerretDB stops.
type Server struct {
	dir  string
	addr string // the proxy's host:port, fixed after the first start

	mu      sync.Mutex
	running bool
	ln      net.Listener
	conns   map[net.Conn]struct{}
	child   *child
	proxied sync.WaitGroup
}

// Start starts FerretDB storing its data in dir, reachable at addr, a
// loopback TCP address; "127.0.0.1:0" picks a free port.
func Start(dir, addr string) (*Server, error) {
	s := &Server{dir: dir, addr: addr}
	if err := s.start(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return errors.New("testserver: already running")
	}
	c, err := startChild(s.dir)
	if err != nil {
		return err
	}
	if s.addr == "" {
		s.addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		c.stop()
		return fmt.Errorf("testserver: %w", err)
	}
	s.addr = ln.Addr().String()
	s.ln, s.child, s.running = ln, c, true
	s.conns = map[net.Conn]struct{}{}
	s.proxied.Add(1)
	go s.accept(ln, c.addr)
	return nil
}

// accept proxies each client connection to FerretDB until ln closes.
func (s *Server) accept(ln net.Listener, backend string) {
	defer s.proxied.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		b, err := net.Dial("tcp", backend)
		if err != nil {
			c.Close()
			continue
		}
		s.mu.Lock()
		if !s.running {
			s.mu.Unlock()
			c.Close()
			b.Close()
			return
		}
		s.conns[c], s.conns[b] = struct{}{}, struct{}{}
		s.mu.Unlock()
		s.proxied.Add(2)
		pipe := func(dst, src net.Conn) {
			defer s.proxied.Done()
			_, _ = io.Copy(dst, src)
			dst.Close()
			src.Close()
		}
		go pipe(b, c)
		go pipe(c, b)
	}
}

// URI is the connection string of the server.
func (s *Server) URI() string { return "mongodb://" + s.addr + "/" }

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.addr }

// Stop drops every connection, stops FerretDB (SIGTERM, then SIGKILL if it
// has not exited in time) and waits until all is closed. Stopping a stopped
// server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	if !s.running {
		s.mu.Unlock()
		return
	}
	s.running = false
	s.ln.Close()
	for c := range s.conns {
		c.Close()
	}
	c := s.child
	s.mu.Unlock()
	s.proxied.Wait()
	c.stop()
}

// Restart starts a stopped server again on the same address and data.
func (s *Server) Restart() error { return s.start() }

// Main is a package's TestMain: it sets *uri to the server of URI, runs
// the tests, stops the server and exits with the tests' code.
func Main(m *testing.M, uri *string) {
	u, stop, err := URI()
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting test server:", err)
		os.Exit(1)
	}
	*uri = u
	code := m.Run()
	stop()
	os.Exit(code)
}

// URI returns the server tests should use: MONGODB_URI when set, otherwise
// the URI of a FerretDB started in a temporary directory. The returned stop
// function, for the end of TestMain, stops that server (there is none for
// MONGODB_URI) and removes its data and the built server program.
func URI() (uri string, stop func(), err error) {
	if uri := os.Getenv("MONGODB_URI"); uri != "" {
		return uri, removeProgram, nil
	}
	dir, err := os.MkdirTemp("", "mongohttp-ferretdb-")
	if err != nil {
		return "", nil, err
	}
	s, err := Start(dir, "127.0.0.1:0")
	if err != nil {
		os.RemoveAll(dir)
		removeProgram()
		return "", nil, err
	}
	return s.URI(), func() { s.Stop(); os.RemoveAll(dir); removeProgram() }, nil
}

// TB is the part of testing.TB the helpers need.
type TB interface {
	Helper()
	Name() string
	Cleanup(func())
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
}

var dbSeq atomic.Int64

// Database returns a database of its own for the test, dropped when the
// test ends, so tests never see each other's data.
func Database(t TB, mc *mongo.Client) *mongo.Database {
	t.Helper()
	name := fmt.Sprintf("t%d_%d", os.Getpid()%100000, dbSeq.Add(1))
	db := mc.Database(name)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := db.Drop(ctx); err != nil {
			t.Logf("dropping %s: %v", name, err)
		}
	})
	return db
}

// The server program is built once per test process, into a temporary
// directory that removeProgram deletes.
var (
	buildOnce  sync.Once
	programDir string
	program    string
	buildErr   error
)

// programPackage is the import path of the server program.
const programPackage = "github.com/mongohttp/mongohttp/integration/testserver/ferretdbproc"

// build compiles the server program without the race detector, so that
// FerretDB runs at full speed whatever the tests run with. The go command
// runs in the working directory, a package directory of this module when
// run by go test, so this module's go.mod and go.sum apply.
func build() (string, error) {
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mongohttp-ferretdbproc-")
		if err != nil {
			buildErr = fmt.Errorf("testserver: %w", err)
			return
		}
		programDir = dir
		out := filepath.Join(dir, "ferretdbproc")
		cmd := exec.Command("go", "build", "-o", out, programPackage)
		if b, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("testserver: building the server program: %v\n%s", err, b)
			return
		}
		program = out
	})
	return program, buildErr
}

func removeProgram() {
	// Taking the Once orders this after a build under way and stops a
	// later one.
	buildOnce.Do(func() { buildErr = errors.New("testserver: the server program was removed") })
	if programDir != "" {
		os.RemoveAll(programDir)
	}
}

// child is a running server program.
type child struct {
	cmd    *exec.Cmd
	addr   string    // where FerretDB listens
	stdin  io.Closer // the program exits when this closes
	exited chan struct{}
}

// startLimit bounds how long the program may take to listen.
const startLimit = time.Minute

// startChild runs the server program on dir, with a free loopback port,
// and waits until it listens.
func startChild(dir string) (*child, error) {
	prog, err := build()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(prog, "-dir", dir, "-addr", "127.0.0.1:0")
	// The program logs nothing; its standard error only ever says why it
	// failed. Keep the start of it for the error, and pass it on.
	stderr := &limitedBuffer{max: 8 << 10}
	cmd.Stderr = io.MultiWriter(os.Stderr, stderr)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("testserver: %w", err)
	}
	// A pipe of our own, so the first line can be read while the program
	// runs on; it writes nothing after that line.
	stdout, stdoutW, err := os.Pipe()
	if err != nil {
		stdin.Close()
		return nil, fmt.Errorf("testserver: %w", err)
	}
	defer stdout.Close()
	cmd.Stdout = stdoutW
	err = cmd.Start()
	stdoutW.Close()
	if err != nil {
		stdin.Close()
		return nil, fmt.Errorf("testserver: %w", err)
	}
	c := &child{cmd: cmd, stdin: stdin, exited: make(chan struct{})}
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(c.exited)
	}()
	lines := make(chan string, 1)
	go func() {
		// Ends at the first line, or at the end of the output when the
		// program exits.
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		lines <- strings.TrimSpace(line)
	}()
	timer := time.NewTimer(startLimit)
	defer timer.Stop()
	var why string
	select {
	case c.addr = <-lines:
		if c.addr != "" {
			return c, nil
		}
		<-c.exited
		why = fmt.Sprintf("exited (%v) before listening", waitErr)
	case <-timer.C:
		c.stop()
		<-lines
		why = fmt.Sprintf("did not listen within %s", startLimit)
	}
	return nil, fmt.Errorf("testserver: the server program %s: %s", why, strings.TrimSpace(stderr.String()))
}

// stopLimit bounds how long the program may take to stop gracefully.
const stopLimit = 10 * time.Second

// stop stops the program gracefully, kills it if it takes too long, and
// waits until it has exited.
func (c *child) stop() {
	select {
	case <-c.exited:
		return
	default:
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		c.stdin.Close() // where signals do not exist, closing stdin stops it
	}
	timer := time.NewTimer(stopLimit)
	defer timer.Stop()
	select {
	case <-c.exited:
	case <-timer.C:
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n := b.max - len(b.buf); n > 0 {
		b.buf = append(b.buf, p[:min(n, len(p))]...)
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
