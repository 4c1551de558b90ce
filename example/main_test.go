package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mongohttp/mongohttp"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

func TestParseConfig(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		env     map[string]string
		want    config
		wantErr string
	}{
		{"defaults", nil, nil,
			config{addr: "127.0.0.1:8080", debugAddr: "127.0.0.1:6060", dbName: "mongohttp_example", dbAddr: "127.0.0.1:0", maxTime: 10 * time.Second}, ""},
		{"ADDR", nil, map[string]string{"ADDR": ":9000"},
			config{addr: ":9000", debugAddr: "127.0.0.1:6060", dbName: "mongohttp_example", dbAddr: "127.0.0.1:0", maxTime: 10 * time.Second}, ""},
		{"flag wins over ADDR", []string{"-addr", "127.0.0.1:0", "-max-time", "2s"}, map[string]string{"ADDR": ":9000"},
			config{addr: "127.0.0.1:0", debugAddr: "127.0.0.1:6060", dbName: "mongohttp_example", dbAddr: "127.0.0.1:0", maxTime: 2 * time.Second}, ""},
		{"MONGODB_URI and seed", []string{"-seed", "-db", "shop"}, map[string]string{"MONGODB_URI": "mongodb://db:27017"},
			config{addr: "127.0.0.1:8080", debugAddr: "127.0.0.1:6060", dbName: "shop", dbAddr: "127.0.0.1:0", seed: true, uri: "mongodb://db:27017", maxTime: 10 * time.Second}, ""},
		{"database only", []string{"-db-only", "-data", "d", "-db-addr", "127.0.0.1:27017"}, nil,
			config{addr: "127.0.0.1:8080", debugAddr: "127.0.0.1:6060", dataDir: "d", dbName: "mongohttp_example", dbAddr: "127.0.0.1:27017", dbOnly: true, maxTime: 10 * time.Second}, ""},
		{"database only with MONGODB_URI", []string{"-db-only"}, map[string]string{"MONGODB_URI": "mongodb://db"}, config{}, "unset MONGODB_URI"},
		{"data with MONGODB_URI", []string{"-data", "d"}, map[string]string{"MONGODB_URI": "mongodb://db"}, config{}, "-data is for the embedded database"},
		{"unknown flag", []string{"-port", "80"}, nil, config{}, errUsage.Error()},
		{"argument", []string{"serve"}, nil, config{}, errUsage.Error()},
		{"zero max time", []string{"-max-time", "0s"}, nil, config{}, errUsage.Error()},
		{"operator address", []string{"-addr", ":8080", "-debug-addr", "127.0.0.1:0"}, nil,
			config{addr: ":8080", debugAddr: "127.0.0.1:0", dbName: "mongohttp_example", dbAddr: "127.0.0.1:0", maxTime: 10 * time.Second}, ""},
		{"operator endpoints off", []string{"-debug-addr", ""}, nil,
			config{addr: "127.0.0.1:8080", dbName: "mongohttp_example", dbAddr: "127.0.0.1:0", maxTime: 10 * time.Second}, ""},
		{"operator on the public address", []string{"-debug-addr", "127.0.0.1:8080"}, nil, config{}, errUsage.Error()},
		{"operator on the public port of every interface", []string{"-addr", ":8080", "-debug-addr", "0.0.0.0:8080"}, nil, config{}, errUsage.Error()},
		{"public on every interface", []string{"-addr", ":8080", "-debug-addr", "127.0.0.1:8080"}, nil, config{}, errUsage.Error()},
		{"ADDR on the operator port", nil, map[string]string{"ADDR": ":6060"}, config{}, errUsage.Error()},
		{"malformed operator address", []string{"-debug-addr", "6060"}, nil, config{}, errUsage.Error()},
		{"malformed public address", []string{"-addr", "localhost"}, nil, config{}, errUsage.Error()},
		{"CURSOR_KEY", nil, map[string]string{"CURSOR_KEY": "0123456789abcdef"},
			config{addr: "127.0.0.1:8080", debugAddr: "127.0.0.1:6060", dbName: "mongohttp_example", dbAddr: "127.0.0.1:0", maxTime: 10 * time.Second, cursorKey: "0123456789abcdef"}, ""},
		{"short CURSOR_KEY", nil, map[string]string{"CURSOR_KEY": "short"}, config{}, errUsage.Error()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseConfig(c.args, func(k string) string { return c.env[k] }, io.Discard)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, c.wantErr)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, c.want)
			}
		})
	}
	// A refused operator address says why.
	var msg strings.Builder
	if _, err := parseConfig([]string{"-addr", ":8080", "-debug-addr", "localhost:8080"}, func(string) string { return "" }, &msg); !errors.Is(err, errUsage) ||
		!strings.Contains(msg.String(), "would share the public address :8080") {
		t.Fatalf("clash: %v, %q", err, msg.String())
	}
	// -h prints the usage and is no failure.
	var usage strings.Builder
	if _, err := parseConfig([]string{"-h"}, func(string) string { return "" }, &usage); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	for _, flag := range []string{"-db-only", "-debug-addr"} {
		if !strings.Contains(usage.String(), flag) {
			t.Fatalf("usage does not list %s:\n%s", flag, usage.String())
		}
	}
}

// TestSameListenAddress checks which pairs of listen addresses compete for
// one socket, the rule -debug-addr is checked with.
func TestSameListenAddress(t *testing.T) {
	for _, c := range []struct {
		a, b string
		same bool
	}{
		{"127.0.0.1:8080", "127.0.0.1:8080", true},
		{":8080", "0.0.0.0:8080", true},
		{":8080", "127.0.0.1:8080", true},
		{"0.0.0.0:8080", "127.0.0.1:8080", true},
		{"[::]:8080", "127.0.0.1:8080", true},
		{"0.0.0.0:8080", "[::1]:8080", true},
		{"localhost:8080", "127.0.0.1:8080", true},
		{"[::1]:8080", "localhost:8080", true},
		{"LocalHost:8080", "localhost:8080", true},
		{"[::ffff:127.0.0.1]:8080", "127.0.0.1:8080", true},
		{"127.0.0.1:http", "127.0.0.1:80", true},
		{"api.internal:8080", "API.internal:8080", true},
		{"api.internal:8080", ":8080", true},
		{"127.0.0.1:8080", "127.0.0.1:6060", false},
		{":8080", ":6060", false},
		{"127.0.0.1:8080", "127.0.0.2:8080", false},
		{"127.0.0.1:8080", "[::1]:8080", false},
		{"10.0.0.1:8080", "10.0.0.2:8080", false},
		{"127.0.0.1:0", "127.0.0.1:0", false}, // each takes a free port
		{":0", ":0", false},
		{"api.internal:8080", "10.0.0.1:8080", false}, // not resolved: the listen would fail instead
	} {
		for _, pair := range [][2]string{{c.a, c.b}, {c.b, c.a}} {
			same, err := sameListenAddress(pair[0], pair[1])
			if err != nil || same != c.same {
				t.Errorf("sameListenAddress(%q, %q) = %v, %v; want %v", pair[0], pair[1], same, err, c.same)
			}
		}
	}
	for _, bad := range []string{"8080", "localhost", "127.0.0.1:no-such-service", "[::1:8080"} {
		if _, err := sameListenAddress(bad, "127.0.0.1:8080"); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestCheckLoopback(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:0": true, "127.0.0.1:27017": true, "[::1]:0": true, "localhost:0": true,
		"0.0.0.0:0": false, ":27017": false, "10.0.0.1:27017": false, "example.com:27017": false, "nonsense": false,
	} {
		if err := checkLoopback(addr); (err == nil) != ok {
			t.Errorf("checkLoopback(%q) = %v", addr, err)
		}
	}
}

func TestSampleData(t *testing.T) {
	users, posts := sampleData()
	again, againPosts := sampleData()
	if !slices.EqualFunc(users, again, func(a, b seedUser) bool {
		return a.ID == b.ID && a.Email == b.Email && a.PasswordHash == b.PasswordHash && slices.Equal(a.Tags, b.Tags)
	}) || !slices.Equal(posts, againPosts) {
		t.Fatal("two calls give different data")
	}
	if len(users) != 1000 || len(posts) != 5000 {
		t.Fatalf("%d users and %d posts", len(users), len(posts))
	}
	// The documented URLs (docs/example.md) name this user: changing the data
	// means changing the docs too.
	first := slices.MinFunc(users, func(a, b seedUser) int { return bytes.Compare(a.ID[:], b.ID[:]) })
	if got := first.ID.Hex(); got != "5feee5b37448184aad5332d6" {
		t.Errorf("first user %s; the docs' examples use 5feee5b37448184aad5332d6", got)
	}
	ids := map[bson.ObjectID]bool{}
	emails := map[string]bool{}
	byID := map[bson.ObjectID]seedUser{}
	for _, u := range users {
		if ids[u.ID] || emails[u.Email] {
			t.Fatalf("duplicate id or email: %+v", u)
		}
		ids[u.ID], emails[u.Email], byID[u.ID] = true, true, u
		if !u.ID.Timestamp().Equal(u.Created.Truncate(time.Second)) {
			t.Errorf("user %s: id time %v, created %v", u.ID.Hex(), u.ID.Timestamp(), u.Created)
		}
		if !strings.HasPrefix(u.PasswordHash, passwordHashPrefix) || len(u.PasswordHash) != 60 {
			t.Errorf("password hash %q", u.PasswordHash)
		}
		if u.Age < 18 || len(u.Tags) == 0 || u.Profile.City == "" {
			t.Errorf("user %+v", u)
		}
	}
	for _, p := range posts {
		if ids[p.ID] {
			t.Fatalf("duplicate id %s", p.ID.Hex())
		}
		ids[p.ID] = true
		author, ok := byID[p.AuthorID]
		if !ok {
			t.Fatalf("post %s: no author %s", p.ID.Hex(), p.AuthorID.Hex())
		}
		if p.Published.Before(author.Created) {
			t.Errorf("post %s published before its author joined", p.ID.Hex())
		}
	}
}

// TestSeedIsIdempotent seeds the shared database again: nothing is added,
// and the indexes are there: those of the declarations (Resource.Indexes)
// and the service's own.
func TestSeedIsIdempotent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	mc, err := mongo.Connect(options.Client().ApplyURI(shared.dbURI))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = mc.Disconnect(ctx) }()
	db := mc.Database(shared.dbName)
	seeded, err := seed(ctx, db, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil || seeded {
		t.Fatalf("seed on seeded data: %v, %v", seeded, err)
	}
	for coll, want := range map[string]int64{"users": sampleUsers, "posts": samplePosts} {
		n, err := db.Collection(coll).CountDocuments(ctx, bson.D{})
		if err != nil || n != want {
			t.Errorf("%s: %d documents (%v), want %d", coll, n, err, want)
		}
	}
	specs, err := db.Collection("posts").Indexes().ListSpecifications(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range specs {
		names = append(names, s.Name)
	}
	for _, want := range []string{"author_id_1_published_-1__id_1", "published_1__id_1", "published_-1__id_1", "likes_1__id_1", "likes_-1__id_1"} {
		if !slices.Contains(names, want) {
			t.Errorf("posts indexes %v lack %s", names, want)
		}
	}
}

// TestGracefulShutdown starts a second service on the shared database (as
// with MONGODB_URI: no embedded server, no seeding), cancels its context
// while slow requests are in flight, and checks that they all complete,
// that run returns nil, and that the port is closed afterwards.
func TestGracefulShutdown(t *testing.T) {
	svc, err := startService([]string{"-addr", "127.0.0.1:0", "-debug-addr", "127.0.0.1:0", "-db", shared.dbName, "-max-time", testMaxTime.String()},
		map[string]string{"MONGODB_URI": shared.dbURI})
	if err != nil {
		t.Fatal(err)
	}
	const n = 4
	var (
		wrote    sync.WaitGroup
		mu       sync.Mutex
		finished []time.Time
		failures []string
		all      sync.WaitGroup
	)
	wrote.Add(n)
	all.Add(n)
	for i := range n {
		go func() {
			defer all.Done()
			once := sync.OnceFunc(wrote.Done)
			defer once()
			trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { once() }}
			req, _ := http.NewRequest("GET", fmt.Sprintf("%s/posts?sort=likes&likes[gte]=%d&limit=100", svc.base, i), nil)
			req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
			// A client of its own: no connection of another test is reused.
			c := &http.Client{Transport: &http.Transport{}, Timeout: time.Minute}
			resp, err := c.Do(req)
			var body []byte
			if err == nil {
				body, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			mu.Lock()
			defer mu.Unlock()
			finished = append(finished, time.Now())
			switch {
			case err != nil:
				failures = append(failures, err.Error())
			default:
				var got []postJSON
				if err := json.Unmarshal(body, &got); err != nil || resp.StatusCode != 200 || len(got) != 100 {
					failures = append(failures, fmt.Sprintf("status %d, %d bytes, %d posts, %v", resp.StatusCode, len(body), len(got), err))
				}
			}
		}()
	}
	wrote.Wait()
	// Wait until the server runs them all: each holds a pool connection
	// while it scans the 5,000 posts, so they are still running when the
	// shutdown begins.
	eventually(t, 30*time.Second, 5*time.Millisecond, func() (bool, string) {
		var st struct {
			Current struct {
				InUse int64 `json:"in_use"`
			} `json:"current"`
		}
		if _, body, err := tryFetch("GET", svc.ops+"/debug/pool"); err == nil {
			_ = json.Unmarshal(body, &st)
		}
		return st.Current.InUse >= n, fmt.Sprintf("%d of the %d requests hold a connection", st.Current.InUse, n)
	})
	cancelled := time.Now()
	if err := svc.stop(); err != nil {
		t.Fatalf("run returned %v", err)
	}
	stopped := time.Now()
	all.Wait()
	if len(failures) > 0 {
		t.Fatalf("requests in flight at shutdown failed: %v", failures)
	}
	late := 0
	for _, f := range finished {
		if f.After(cancelled) {
			late++
		}
		if f.After(stopped.Add(100 * time.Millisecond)) {
			t.Errorf("a request finished %s after run returned", f.Sub(stopped))
		}
	}
	if late == 0 {
		t.Fatal("every request finished before the shutdown began: the test proved nothing")
	}
	if _, _, err := tryFetch("GET", svc.base+"/healthz"); err == nil {
		t.Fatal("the service still answers after run returned")
	}
	if !strings.Contains(svc.stderr.String(), "shutting down") {
		t.Errorf("no shutdown log:\n%s", svc.stderr)
	}
}

// TestSignals runs the program as `go run .` would: SIGINT stops the HTTP
// service with exit status 0 after answering.
func TestSignals(t *testing.T) {
	p, err := startProcess([]string{"-addr", "127.0.0.1:0", "-debug-addr", "", "-db", shared.dbName, "-max-time", testMaxTime.String()},
		"MONGODB_URI="+shared.dbURI)
	if err != nil {
		t.Fatal(err)
	}
	defer p.stop()
	m, err := p.stdout.wait(listeningRE, 2*time.Minute, exitErr(p))
	if err != nil {
		t.Fatalf("%v\nstderr:\n%s", err, p.stderr)
	}
	resp, body := fetch(t, "GET", m[1]+"/users/"+someUser.ID.Hex())
	wantStatus(t, resp, body, 200, "application/json")
	if code := p.signal(os.Interrupt); code != 0 {
		t.Fatalf("exit status %d after SIGINT; stderr:\n%s", code, p.stderr)
	}
	if !strings.Contains(p.stderr.String(), "msg=stopped") {
		t.Errorf("no clean stop in the logs:\n%s", p.stderr)
	}
	if strings.Contains(p.stdout.String(), shared.dbURI) {
		t.Error("the service printed MONGODB_URI, which may hold a password")
	}
}

// TestDatabaseOnly runs -db-only twice on one -data directory: it prints a
// usable MONGODB_URI, stops with exit status 0 on SIGTERM, and the data
// written through it is still there the second time.
func TestDatabaseOnly(t *testing.T) {
	dir := t.TempDir()
	start := func() (*process, *mongo.Client) {
		p, err := startProcess([]string{"-db-only", "-data", dir})
		if err != nil {
			t.Fatal(err)
		}
		m, err := p.stdout.wait(uriLineRE, 2*time.Minute, exitErr(p))
		if err != nil {
			p.stop()
			t.Fatalf("%v\nstderr:\n%s", err, p.stderr)
		}
		if !strings.Contains(p.stdout.String(), "MONGODB_DATABASE=mongohttp_example\n") {
			t.Errorf("no MONGODB_DATABASE line:\n%s", p.stdout)
		}
		mc, err := mongo.Connect(options.Client().ApplyURI(m[1]))
		if err != nil {
			p.stop()
			t.Fatal(err)
		}
		return p, mc
	}
	stop := func(p *process, mc *mongo.Client) {
		_ = mc.Disconnect(context.Background())
		if code := p.signal(syscall.SIGTERM); code != 0 {
			t.Fatalf("exit status %d after SIGTERM; stderr:\n%s", code, p.stderr)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	p, mc := start()
	// No -seed: the database is empty.
	if n, err := mc.Database("mongohttp_example").Collection("users").CountDocuments(ctx, bson.D{}); err != nil || n != 0 {
		stop(p, mc)
		t.Fatalf("users without -seed: %d, %v", n, err)
	}
	if _, err := mc.Database("bench").Collection("kept").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "note", Value: "kept"}}); err != nil {
		stop(p, mc)
		t.Fatal(err)
	}
	stop(p, mc)
	if entries, err := os.ReadDir(dir); err != nil || len(entries) == 0 {
		t.Fatalf("-data %s is empty after the stop (%v)", dir, err)
	}

	p, mc = start()
	defer stop(p, mc)
	var doc struct {
		Note string `bson:"note"`
	}
	if err := mc.Database("bench").Collection("kept").FindOne(ctx, bson.D{{Key: "_id", Value: 1}}).Decode(&doc); err != nil || doc.Note != "kept" {
		t.Fatalf("after a restart on the same -data: %+v, %v", doc, err)
	}
}

// TestEmbeddedService runs the default mode in this process, as `go run .`
// does: the embedded database, seeded on first start, kept in -data, and
// not seeded again on the next start.
func TestEmbeddedService(t *testing.T) {
	dir := t.TempDir()
	for _, first := range []bool{true, false} {
		svc, err := startService([]string{"-addr", "127.0.0.1:0", "-debug-addr", "127.0.0.1:0", "-data", dir, "-max-time", testMaxTime.String()}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if svc.dbName != "mongohttp_example" || !strings.HasPrefix(svc.dbURI, "mongodb://127.0.0.1:") {
			t.Errorf("database %s at %s", svc.dbName, svc.dbURI)
		}
		// The printed URLs name the first user.
		firstUser := "5feee5b37448184aad5332d6"
		if !strings.Contains(svc.stdout.String(), "/users/"+firstUser+"/posts") {
			t.Errorf("the printed URLs do not name the first user:\n%s", svc.stdout)
		}
		resp, body := fetch(t, "GET", svc.base+"/users/"+firstUser)
		wantStatus(t, resp, body, 200, "application/json")
		resp, body = fetch(t, "GET", svc.base+"/users?count=exact&limit=1")
		wantStatus(t, resp, body, 200, "application/json")
		wantTotal(t, resp, sampleUsers)
		seeded := strings.Contains(svc.stderr.String(), "seeded sample data")
		if err := svc.stop(); err != nil {
			t.Fatalf("run returned %v", err)
		}
		if seeded != first {
			t.Errorf("first start %v, seeded %v:\n%s", first, seeded, svc.stderr)
		}
	}
}

// TestEmbeddedTempDirRemoved checks that the embedded database without
// -data leaves nothing behind.
func TestEmbeddedTempDirRemoved(t *testing.T) {
	db, err := startEmbedded("127.0.0.1:0", "", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	c, err := mongohttp.Connect(context.Background(), db.URI())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	_ = c.Close(ctx)
	dir := db.dir
	if _, err := os.Stat(filepath.Join(dir)); err != nil {
		t.Fatalf("data directory: %v", err)
	}
	db.Stop()
	db.Stop() // twice is fine
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("temporary data directory %s still there: %v", dir, err)
	}
}

// eventually polls cond every interval until it holds, and fails the test
// with cond's account of the state once timeout has passed without.
func eventually(t testing.TB, timeout, interval time.Duration, cond func() (ok bool, state string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", timeout, state)
		}
		time.Sleep(interval)
	}
}
