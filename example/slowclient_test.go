package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mongohttp/mongohttp"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// cutWithin is the generous bound on how long a stalled client may hold a
// connection. The service's own limits are 5 to 10 s; a busy machine and
// the race detector add slack.
const cutWithin = 30 * time.Second

// dialSlowBody opens a connection to the service at base and sends the
// headers of a request that announces a body of 100 bytes, then nothing.
func dialSlowBody(base string) (net.Conn, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	c, err := net.DialTimeout("tcp", u.Host, 10*time.Second)
	if err != nil {
		return nil, err
	}
	_, err = fmt.Fprintf(c, "GET /users/not-an-id HTTP/1.1\r\nHost: %s\r\nContent-Length: 100\r\n\r\n", u.Host)
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// dialSlowBodies opens n such connections, a few at a time.
func dialSlowBodies(t *testing.T, base string, n int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			conns[i], errs[i] = dialSlowBody(base)
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("opening %d slow connections: %v", n, err)
	}
	return conns
}

// stillOpen reports whether the server has not closed c yet: a short read
// times out rather than ending.
func stillOpen(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	var b [1]byte
	_, err := c.Read(b[:])
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// waitCut reads c until the server closes it, and fails when that takes
// longer than limit.
func waitCut(c net.Conn, limit time.Duration) error {
	_ = c.SetReadDeadline(time.Now().Add(limit))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("still open after %s", limit)
	}
	return nil // EOF or a reset: the server closed it
}

// TestSlowBodyIsCut sends headers announcing a body and then nothing: the
// service must close the connection within a bounded time rather than wait
// for the body forever.
func TestSlowBodyIsCut(t *testing.T) {
	bases := []string{shared.base, shared.ops}
	conns := make([]net.Conn, len(bases))
	for i, base := range bases {
		c, err := dialSlowBody(base)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	began := time.Now()
	for i, c := range conns {
		if err := waitCut(c, cutWithin-time.Since(began)); err != nil {
			t.Fatalf("%s: a client that never sends its body: %v", bases[i], err)
		}
		t.Logf("%s: cut after %s", bases[i], time.Since(began).Round(100*time.Millisecond))
	}
}

// TestSlowBodiesDoNotStopOthers holds a thousand such connections open
// while normal requests go on, then checks that every one of them is cut.
func TestSlowBodiesDoNotStopOthers(t *testing.T) {
	const n = 1000
	began := time.Now()
	conns := dialSlowBodies(t, shared.base, n)
	stalled := 0
	for _, c := range conns[:20] {
		if stillOpen(c) {
			stalled++
		}
	}
	if stalled == 0 {
		t.Fatal("the slow connections were closed before the normal requests: the test proves nothing")
	}
	for _, path := range []string{
		"/healthz",
		"/users?limit=5&fields=name,age",
		"/users/" + someUser.ID.Hex(),
		"/posts?likes[gte]=1000&limit=10",
	} {
		resp, body := fetch(t, "GET", path)
		wantStatus(t, resp, body, 200, "application/json")
	}
	resp, body := fetch(t, "GET", shared.ops+"/debug/pool")
	wantStatus(t, resp, body, 200, "application/json")
	if time.Since(began) > cutWithin {
		t.Fatalf("normal requests took %s next to the slow connections", time.Since(began))
	}

	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		open []error
	)
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := waitCut(c, cutWithin-time.Since(began)+5*time.Second); err != nil {
				mu.Lock()
				open = append(open, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(open) > 0 {
		t.Fatalf("%d of %d slow connections not cut within %s of being opened: %v", len(open), n, cutWithin, open[0])
	}
	t.Logf("%d slow connections cut within %s", n, time.Since(began).Round(100*time.Millisecond))
}

// TestShutdownWithSlowClients stops the program with slow connections open
// on both listeners: it must still finish within its grace period and exit
// 0, where waiting for their bodies would overrun it and exit 1.
func TestShutdownWithSlowClients(t *testing.T) {
	p, err := startProcess([]string{"-addr", "127.0.0.1:0", "-debug-addr", "127.0.0.1:0", "-db", shared.dbName, "-max-time", testMaxTime.String()},
		"MONGODB_URI="+shared.dbURI)
	if err != nil {
		t.Fatal(err)
	}
	defer p.stop()
	m, err := p.stdout.wait(listeningRE, 2*time.Minute, exitErr(p))
	if err != nil {
		t.Fatalf("%v\nstderr:\n%s", err, p.stderr)
	}
	o, err := p.stdout.wait(operatorRE, time.Minute, exitErr(p))
	if err != nil || o[1] == "" {
		t.Fatalf("no operator listener (%v):\n%s", err, p.stdout)
	}
	base, ops := m[1], o[1]
	conns := append(dialSlowBodies(t, base, 200), dialSlowBodies(t, ops, 20)...)
	// Once a normal request is answered, the slow ones, sent before it, are
	// being handled too.
	resp, body := fetch(t, "GET", base+"/users/"+someUser.ID.Hex())
	wantStatus(t, resp, body, 200, "application/json")
	if !stillOpen(conns[0]) || !stillOpen(conns[len(conns)-1]) {
		t.Fatal("the slow connections were closed before the shutdown: the test proves nothing")
	}

	signalled := time.Now()
	code := p.signal(syscall.SIGTERM)
	took := time.Since(signalled)
	if code != 0 {
		t.Fatalf("exit status %d %s after SIGTERM with slow clients open (grace period %s); stderr:\n%s", code, took, shutdownTimeout, p.stderr)
	}
	if took > shutdownTimeout+5*time.Second {
		t.Errorf("the shutdown took %s, past its grace period of %s", took, shutdownTimeout)
	}
	for i, c := range conns {
		if err := waitCut(c, 5*time.Second); err != nil {
			t.Fatalf("slow connection %d after the program exited: %v", i, err)
		}
	}
	t.Logf("exit 0 %s after SIGTERM with %d slow connections open", took.Round(100*time.Millisecond), len(conns))
}

// The example's routes cap pages at 100 documents, about 25 KB, which the
// kernel's socket buffers absorb whole: none of their answers can make a
// write wait on its client. The two tests below therefore serve the same
// posts from the embedded database through the service's server (newServer
// and writeDeadlines, with limits of a second) and a Find handler whose cap
// allows an export of exportDocs documents, on connections whose buffers
// are small enough that the export lasts longer than every limit.
const exportDocs = 1000

// exportServer serves exportDocs posts as NDJSON at /posts through the
// service's server with lim, on connections with 16 KiB send buffers. It
// returns the base URL and a channel that receives once per finished
// request.
func exportServer(t *testing.T, lim serverLimits, naive bool) (string, <-chan struct{}) {
	t.Helper()
	ctx := context.Background()
	client, err := mongohttp.Connect(ctx, shared.dbURI)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close(context.Background()) })
	policy := postsPolicy
	policy.DefaultSort, policy.MaxLimit = "_id", exportDocs
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	find := mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{Client: client, Coll: client.Database(shared.dbName).Collection("posts"),
		// A look-ahead that holds the whole export, so that it is one answer
		// (pages end at the look-ahead).
		Policy: policy, Logger: quiet, MaxTime: testMaxTime, Lookahead: 64 << 20,
	})).Find()
	finished := make(chan struct{}, 16)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { finished <- struct{}{} }()
		find.ServeHTTP(w, r)
	})
	srv := newServer(h, lim, quiet)
	if naive {
		// The design writeDeadlines replaces: one deadline for the answer.
		srv.Handler, srv.WriteTimeout = h, lim.write
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(smallSendBuffers{l}) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + l.Addr().String(), finished
}

// smallSendBuffers gives every accepted connection a 16 KiB send buffer,
// so the server cannot write far ahead of its client.
type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(16 << 10)
	}
	return c, err
}

// exportClient reads answers through a 16 KiB receive buffer.
func exportClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		DisableCompression: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetReadBuffer(16 << 10)
			}
			return c, err
		},
	}}
}

var exportLimits = serverLimits{readHeader: time.Second, read: time.Second, write: time.Second, idle: time.Minute, maxHeaderBytes: 16 << 10}

// readExport asks for the export and reads it at about 160 KiB/s, so that
// it lasts several seconds. It returns the lines read and how the body
// ended (nil for a clean end).
func readExport(t *testing.T, base string) (int, time.Duration, error) {
	t.Helper()
	req, _ := http.NewRequest("GET", fmt.Sprintf("%s/posts?limit=%d", base, exportDocs), nil)
	req.Header.Set("Accept", "application/x-ndjson")
	began := time.Now()
	resp, err := exportClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	lines := 0
	br := bufio.NewReaderSize(resp.Body, 16<<10)
	buf := make([]byte, 8<<10)
	var partial []byte
	for {
		n, err := br.Read(buf)
		for _, b := range buf[:n] {
			partial = append(partial, b)
			if b == '\n' {
				if !strings.HasPrefix(string(partial), `{"_id":"`) {
					t.Fatalf("line %d is not a post: %.80s", lines+1, partial)
				}
				lines++
				partial = partial[:0]
			}
		}
		if err == io.EOF {
			return lines, time.Since(began), nil
		}
		if err != nil {
			return lines, time.Since(began), err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestLongExportCompletes reads an export for several times the limits of
// the server: a client that keeps reading gets every document. The same
// export through a server with a single WriteTimeout of the same length is
// cut, which shows the export did outlast it.
func TestLongExportCompletes(t *testing.T) {
	base, _ := exportServer(t, exportLimits, false)
	lines, took, err := readExport(t, base)
	if err != nil || lines != exportDocs {
		t.Fatalf("export: %d of %d documents in %s, then %v", lines, exportDocs, took, err)
	}
	t.Logf("export of %d documents read in %s, limits of %s", lines, took.Round(100*time.Millisecond), exportLimits.write)

	naive, _ := exportServer(t, exportLimits, true)
	lines, took, err = readExport(t, naive)
	if err == nil && lines == exportDocs {
		t.Fatalf("the export also completed under a %s WriteTimeout (in %s): it did not outlast the limits, so the test proves nothing", exportLimits.write, took)
	}
}

// TestStalledReaderIsCut starts the export and stops reading: the server's
// write must give up within a bounded time, ending the handler and the
// connection, instead of waiting for the client forever.
func TestStalledReaderIsCut(t *testing.T) {
	base, finished := exportServer(t, exportLimits, false)
	req, _ := http.NewRequest("GET", fmt.Sprintf("%s/posts?limit=%d", base, exportDocs), nil)
	req.Header.Set("Accept", "application/x-ndjson")
	resp, err := exportClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := io.ReadFull(resp.Body, make([]byte, 1024)); err != nil {
		t.Fatal(err)
	}
	// The client stops reading here.
	select {
	case <-finished:
	case <-time.After(cutWithin):
		t.Fatalf("the handler still writes to a client that stopped reading %s ago", cutWithin)
	}
	body, err := io.ReadAll(resp.Body)
	if lines := strings.Count(string(body), "\n"); err == nil && lines >= exportDocs-1 {
		t.Fatalf("the stalled client got the whole export (%d lines): the test proves nothing", lines)
	}
}

// TestServerLimitsFitTheShutdown checks the relation the limits rely on: a
// stalled client is cut before a graceful shutdown's grace period ends.
func TestServerLimitsFitTheShutdown(t *testing.T) {
	l := defaultLimits
	if l.read <= 0 || l.readHeader <= 0 || l.write <= 0 || l.idle <= 0 || l.maxHeaderBytes <= 0 {
		t.Fatalf("a limit is off: %+v", l)
	}
	if l.read >= shutdownTimeout || l.write >= shutdownTimeout {
		t.Fatalf("read %s and write %s must be shorter than the grace period %s", l.read, l.write, shutdownTimeout)
	}
	srv := newServer(http.NotFoundHandler(), l, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if srv.ReadHeaderTimeout != l.readHeader || srv.ReadTimeout != l.read || srv.IdleTimeout != l.idle ||
		srv.MaxHeaderBytes != l.maxHeaderBytes || srv.WriteTimeout != 0 {
		t.Fatalf("the server does not carry the limits %+v", l)
	}
}
