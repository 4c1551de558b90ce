package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestOperatorEndpoints checks that /debug/pool, /debug/vars and /metrics answer on
// the operator listener, on loopback, and nowhere on the public address.
func TestOperatorEndpoints(t *testing.T) {
	u, err := url.Parse(shared.ops)
	if err != nil || u.Hostname() != "127.0.0.1" || u.Port() == "6060" {
		t.Fatalf("operator listener at %q; the tests ask for a free loopback port", shared.ops)
	}
	if shared.ops == shared.base {
		t.Fatal("the operator listener is the public one")
	}

	resp, body := fetch(t, "GET", shared.ops+"/debug/vars")
	wantStatus(t, resp, body, 200, "application/json")
	vars := decode[map[string]json.RawMessage](t, body)
	for _, k := range []string{"cmdline", "memstats", "mongohttp.pool"} {
		if vars[k] == nil {
			t.Errorf("/debug/vars lacks %s: %v", k, keys(vars))
		}
	}
	resp, body = fetch(t, "HEAD", shared.ops+"/debug/pool")
	wantStatus(t, resp, body, 200, "application/json")

	for _, c := range []struct {
		method, path string
		status       int
		code         string
	}{
		{"POST", "/debug/pool", 405, "method_not_allowed"},
		{"POST", "/debug/vars", 405, "method_not_allowed"},
		{"POST", "/metrics", 405, "method_not_allowed"},
		{"GET", "/debug/pprof/", 404, "not_found"},
		{"GET", "/users", 404, "not_found"},
	} {
		resp, body := fetch(t, c.method, shared.ops+c.path)
		wantProblem(t, resp, body, c.status, c.code)
	}

	// The public address knows nothing of them, whatever the method.
	for _, path := range []string{"/debug/pool", "/debug/vars", "/debug/vars/", "/debug/pprof/", "/debug/", "/metrics"} {
		for _, method := range []string{"GET", "HEAD", "POST"} {
			resp, body := fetch(t, method, path)
			if method == "HEAD" {
				if resp.StatusCode != 404 || resp.Header.Get("Content-Type") != "application/problem+json" {
					t.Errorf("HEAD %s on the public address: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
				}
				continue
			}
			wantProblem(t, resp, body, 404, "not_found")
			if strings.Contains(string(body), "memstats") || strings.Contains(string(body), "cmdline") {
				t.Errorf("%s %s on the public address shows %s", method, path, body)
			}
		}
	}

	// The printed commands send each path to its listener.
	out := shared.stdout.String()
	for _, want := range []string{
		"operator endpoints on " + shared.ops + " ",
		"curl -g '" + shared.ops + "/debug/pool'",
		"curl -g '" + shared.ops + "/debug/vars'",
		"curl -g '" + shared.ops + "/metrics'",
		"curl -g '" + shared.base + "/healthz'",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the printout lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, shared.base+"/debug/") {
		t.Errorf("the printout sends /debug/ to the public address:\n%s", out)
	}
}

// TestOperatorEndpointsOff starts a service with -debug-addr "": no
// operator listener, nothing printed for it, and /debug/* still 404 on the
// public address.
func TestOperatorEndpointsOff(t *testing.T) {
	svc, err := startService([]string{"-addr", "127.0.0.1:0", "-debug-addr", "", "-db", shared.dbName, "-max-time", testMaxTime.String()},
		map[string]string{"MONGODB_URI": shared.dbURI})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := svc.stop(); err != nil {
			t.Errorf("run returned %v", err)
		}
	}()
	if svc.ops != "" {
		t.Fatalf("operator listener at %s with -debug-addr \"\"", svc.ops)
	}
	out := svc.stdout.String()
	if !strings.Contains(out, "operator endpoints off") || strings.Contains(out, "/debug/") {
		t.Fatalf("printout with the operator endpoints off:\n%s", out)
	}
	resp, body := fetch(t, "GET", svc.base+"/debug/vars")
	wantProblem(t, resp, body, 404, "not_found")
	resp, body = fetch(t, "GET", svc.base+"/healthz")
	wantStatus(t, resp, body, 200, "application/json")
}

// TestOperatorAddressTaken starts the service with an operator address
// something else holds: run fails, naming the operator listener, and
// releases the public address it had opened.
func TestOperatorAddressTaken(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	public, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	publicAddr := public.Addr().String()
	public.Close()

	stderr := newLines()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = run(ctx, []string{"-addr", publicAddr, "-debug-addr", taken.Addr().String(), "-db", shared.dbName},
		func(k string) string { return map[string]string{"MONGODB_URI": shared.dbURI}[k] }, io.Discard, stderr)
	if err == nil || !strings.Contains(err.Error(), "operator listener") {
		t.Fatalf("run with a taken operator address: %v\n%s", err, stderr)
	}
	l, err := net.Listen("tcp", publicAddr)
	if err != nil {
		t.Fatalf("the public address is still held: %v", err)
	}
	l.Close()
}

// TestOperatorOnPublicAddressIsAUsageError runs the program with an
// operator address that shares the public one: it must refuse to start
// with the usage status, 2, and say why.
func TestOperatorOnPublicAddressIsAUsageError(t *testing.T) {
	for _, args := range [][]string{
		{"-addr", "127.0.0.1:18080", "-debug-addr", ":18080"},
		{"-addr", ":18080", "-debug-addr", "localhost:18080"},
	} {
		p, err := startProcess(args, "MONGODB_URI="+shared.dbURI)
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-p.exited:
		case <-time.After(time.Minute):
			p.signal(syscall.SIGKILL)
			t.Fatalf("%q: still running after a minute", args)
		}
		if code := p.cmd.ProcessState.ExitCode(); code != 2 || !strings.Contains(p.stderr.String(), "would share the public address") {
			t.Fatalf("%q: exit status %d, stderr:\n%s", args, code, p.stderr)
		}
	}
}
