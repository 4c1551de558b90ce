package openapi

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
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
)

// The example service every test talks to: the example's own program,
// built without the race detector and run as a separate process on its
// embedded database, seeded with the sample data.
var service struct {
	base string // http://127.0.0.1:port
	doc  []byte // its /openapi.json
	dir  string // temporary files of the run

	// quick is a second copy whose queries time out at once (-max-time
	// 1ns), for the many requests that check only what the document and
	// the query parser say of a request.
	quick string

	// dbURI is the embedded database of the first copy, for handlers the
	// tests declare themselves.
	dbURI string
}

func TestMain(m *testing.M) {
	code, err := runTests(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

func runTests(m *testing.M) (int, error) {
	dir, err := os.MkdirTemp("", "mongohttp-openapi-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	service.dir = dir
	bin, err := buildExample(dir)
	if err != nil {
		return 0, err
	}
	var stops []func()
	defer func() {
		for _, stop := range stops {
			stop()
		}
	}()
	for _, s := range []struct {
		base, dbURI *string
		maxTime     string
	}{{&service.base, &service.dbURI, "2m"}, {&service.quick, new(string), "1ns"}} {
		stop, base, dbURI, err := startExample(bin, s.maxTime)
		if err != nil {
			return 0, err
		}
		stops = append(stops, stop)
		*s.base, *s.dbURI = base, dbURI
	}
	resp, err := http.Get(service.base + "/openapi.json")
	if err != nil {
		return 0, err
	}
	service.doc, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		return 0, fmt.Errorf("GET /openapi.json: status %d, %v\n%s", resp.StatusCode, err, service.doc)
	}
	return m.Run(), nil
}

var (
	listeningRE = regexp.MustCompile(`listening on (http://\S+)`)
	databaseRE  = regexp.MustCompile(`(mongodb://[^\s/]+)`)
)

// buildExample builds the example program, without the race detector.
func buildExample(dir string) (string, error) {
	bin := filepath.Join(dir, "example")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = filepath.Join("..", "example")
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the example: %v\n%s", err, out)
	}
	return bin, nil
}

// startExample runs the example on a free port with its embedded
// database, and returns a function that stops it, its base URL and the
// database's URI.
func startExample(bin, maxTime string) (func(), string, string, error) {
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0", "-debug-addr", "", "-max-time", maxTime)
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "MONGODB_URI=") || strings.HasPrefix(kv, "ADDR=")
	})
	var stdout, stderr lockedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return nil, "", "", err
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	deadline := time.Now().Add(5 * time.Minute)
	for {
		out := stdout.String()
		m, db := listeningRE.FindStringSubmatch(out), databaseRE.FindStringSubmatch(out)
		if m != nil && db != nil {
			return stop, m[1], db[1], nil
		}
		select {
		case <-exited:
			return nil, "", "", fmt.Errorf("the example exited before listening:\n%s\n%s", stdout.String(), stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return nil, "", "", fmt.Errorf("the example did not listen within 5 minutes:\n%s\n%s", stdout.String(), stderr.String())
		}
	}
}

// lockedBuffer is a bytes.Buffer written by a process and read by a test.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// get sends one request to the service and reads the whole answer.
func send(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(req.Context(), 2*time.Minute)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", req.Method, req.URL, err)
	}
	return resp, body
}
