package integration_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mongohttp/mongohttp"
	"github.com/mongohttp/mongohttp/integration/testserver"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// The outage scenarios stop and restart the server, so they always run on
// a FerretDB of their own (testserver.Start), even when MONGODB_URI names
// another.

// cursorTracker follows server cursors from the client's side: a find or
// getMore that answers a non-zero cursor id opens it; a getMore that answers
// id 0 or a killCursors closes it. FerretDB reports no cursor metrics, so
// this is how the tests see that no cursor is left open.
type cursorTracker struct {
	mu        sync.Mutex
	open      map[int64]bool
	pending   map[int64]int64 // request id → cursor id of a getMore or killCursors
	kills     int
	maxTimeMS []int64 // maxTimeMS of every find sent
}

func newCursorTracker() *cursorTracker {
	return &cursorTracker{open: map[int64]bool{}, pending: map[int64]int64{}}
}

func (ct *cursorTracker) monitor() *event.CommandMonitor {
	return &event.CommandMonitor{
		Started: func(_ context.Context, e *event.CommandStartedEvent) {
			ct.mu.Lock()
			defer ct.mu.Unlock()
			switch e.CommandName {
			case "find":
				if v, err := e.Command.LookupErr("maxTimeMS"); err == nil {
					n, _ := v.AsInt64OK()
					ct.maxTimeMS = append(ct.maxTimeMS, n)
				} else {
					ct.maxTimeMS = append(ct.maxTimeMS, 0)
				}
			case "getMore":
				id, _ := e.Command.Lookup("getMore").AsInt64OK()
				ct.pending[e.RequestID] = id
			case "killCursors":
				vals, _ := e.Command.Lookup("cursors").Array().Values()
				if len(vals) > 0 {
					id, _ := vals[0].AsInt64OK()
					ct.pending[e.RequestID] = id
				}
			}
		},
		Succeeded: func(_ context.Context, e *event.CommandSucceededEvent) {
			ct.mu.Lock()
			defer ct.mu.Unlock()
			switch e.CommandName {
			case "find":
				if id, ok := e.Reply.Lookup("cursor", "id").AsInt64OK(); ok && id != 0 {
					ct.open[id] = true
				}
			case "getMore":
				if id, ok := e.Reply.Lookup("cursor", "id").AsInt64OK(); ok && id == 0 {
					delete(ct.open, ct.pending[e.RequestID])
				}
			case "killCursors":
				delete(ct.open, ct.pending[e.RequestID])
				ct.kills++
			}
			delete(ct.pending, e.RequestID)
		},
		Failed: func(_ context.Context, e *event.CommandFailedEvent) {
			ct.mu.Lock()
			defer ct.mu.Unlock()
			delete(ct.pending, e.RequestID)
		},
	}
}

func (ct *cursorTracker) forgetOpen() {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	clear(ct.open)
}

func (ct *cursorTracker) openCursors() int {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	return len(ct.open)
}

// scenario is one reliability test's world: a client with a cursor tracker,
// an HTTP server with the handlers, and the goroutine count before them.
type scenario struct {
	t          *testing.T
	goroutines int
	client     *mongohttp.Client
	cursors    *cursorTracker
	coll       *mongo.Collection
	srv        *httptest.Server
	http       *http.Client
}

func newScenario(t *testing.T, uri string, pool mongohttp.PoolConfig) *scenario {
	t.Helper()
	s := &scenario{t: t, goroutines: runtime.NumGoroutine(), cursors: newCursorTracker()}
	c, err := mongohttp.ConnectConfig(context.Background(), mongohttp.Config{
		URI: uri, Pool: pool, Options: options.Client().SetMonitor(s.cursors.monitor()),
	})
	if err != nil {
		t.Fatal(err)
	}
	s.client = c
	s.http = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 30 * time.Second}
	return s
}

// serve mounts Find and FindOne on coll with the given limits.
func (s *scenario) serve(coll *mongo.Collection, maxTime time.Duration, lookahead int) {
	s.coll = coll
	p := mongohttp.Policy{Filter: map[string]mongohttp.Type{"name": mongohttp.String}, Sort: []string{"name"},
		MaxLimit: 5000, MaxSkip: 10}
	// No admission bound: these scenarios test what the driver's pool and
	// the server do with every request let through.
	res := mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{
		Client: s.client,
		Coll:   coll, Policy: p, MaxTime: maxTime, Lookahead: lookahead, Admission: mongohttp.Admission{MaxActive: -1},
	}))
	mux := http.NewServeMux()
	mux.Handle("/docs", res.Find())
	mux.Handle("/docs/{id}", res.FindOne())
	mux.Handle("/healthz", &mongohttp.HealthHandler{Client: s.client})
	s.srv = httptest.NewServer(mux)
}

type answer struct {
	status  int
	code    string
	retry   string
	elapsed time.Duration
	err     error
}

func (s *scenario) get(target string) answer {
	start := time.Now()
	resp, err := s.http.Get(s.srv.URL + target)
	if err != nil {
		return answer{err: err, elapsed: time.Since(start)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, retry: resp.Header.Get("Retry-After"), elapsed: time.Since(start), err: err}
	if resp.StatusCode >= 400 {
		var p struct {
			Code string `json:"code"`
		}
		if resp.Header.Get("Content-Type") != "application/problem+json" || json.Unmarshal(body, &p) != nil || p.Code == "" {
			a.err = fmt.Errorf("status %d without a problem document: %q", resp.StatusCode, body)
		}
		a.code = p.Code
	}
	return a
}

// finish closes everything and checks that nothing leaked: no connection in
// use, no cursor open on the server, goroutines back to their baseline.
func (s *scenario) finish() {
	t := s.t
	t.Helper()
	eventually(t, 10*time.Second, "pool in-use back to 0", func() bool { return s.client.Stats().InUse == 0 })
	// Cursor kills queue for the pool like any operation: allow them time.
	eventually(t, 30*time.Second, "no open server cursors", func() bool { return s.cursors.openCursors() == 0 })
	if s.srv != nil {
		s.srv.Close()
	}
	s.http.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.client.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
	// FerretDB runs in a process of its own, so the count is of this
	// process's goroutines: the client's, the handlers', the test server's
	// proxy and its watch over the server process. A client left open
	// leaves about ten. A small fixed margin covers runtime goroutines that
	// come and go.
	eventually(t, 10*time.Second, fmt.Sprintf("goroutines back to the baseline of %d", s.goroutines), func() bool {
		return runtime.NumGoroutine() <= s.goroutines+3
	})
}

// embedded starts a FerretDB of the test's own on a free port, in a data
// directory of its own.
func embedded(t *testing.T) *testserver.Server {
	t.Helper()
	srv, err := testserver.Start(t.TempDir(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	return srv
}

func insertDocs(t *testing.T, coll *mongo.Collection, n, padding int) []bson.ObjectID {
	t.Helper()
	ids := make([]bson.ObjectID, n)
	docs := make([]any, n)
	pad := strings.Repeat("x", padding)
	for i := range docs {
		ids[i] = bson.NewObjectID()
		docs[i] = bson.D{{Key: "_id", Value: ids[i]}, {Key: "name", Value: fmt.Sprintf("n%05d", (i*7919)%n)}, {Key: "pad", Value: pad}}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for i := 0; i < n; i += 500 {
		if _, err := coll.InsertMany(ctx, docs[i:min(i+500, n)]); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

func TestDatabaseUnreachableAtStart(t *testing.T) {
	addr := closedPort(t)
	s := newScenario(t, "mongodb://"+addr+"/", mongohttp.PoolConfig{ServerSelectionTimeout: time.Second})
	coll := s.client.Database("outage").Collection("docs")
	s.serve(coll, 5*time.Second, 0)
	id := bson.NewObjectID()

	for _, target := range []string{"/healthz", "/docs", "/docs/" + id.Hex()} {
		a := s.get(target)
		if a.err != nil {
			t.Fatalf("%s: %v", target, a.err)
		}
		if a.status != 503 || a.code != "unavailable" || a.retry == "" {
			t.Fatalf("%s with the database down: %d %q Retry-After %q, want 503 unavailable with Retry-After", target, a.status, a.code, a.retry)
		}
		if a.elapsed > 3*time.Second {
			t.Fatalf("%s answered after %s, want within 3 s", target, a.elapsed)
		}
	}

	// The database comes up on the same address: the same client recovers.
	srv, err := testserver.Start(t.TempDir(), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	eventually(t, 30*time.Second, "requests succeed once the database is up", func() bool {
		return s.get("/healthz").status == 200
	})
	if _, err := coll.InsertOne(context.Background(), bson.D{{Key: "_id", Value: id}, {Key: "name", Value: "back"}}); err != nil {
		t.Fatal(err)
	}
	if a := s.get("/docs/" + id.Hex()); a.status != 200 {
		t.Fatalf("FindOne after recovery: %d %v", a.status, a.err)
	}
	if a := s.get("/docs"); a.status != 200 {
		t.Fatalf("Find after recovery: %d %v", a.status, a.err)
	}
	srv.Stop() // it started after the goroutine baseline was taken
	s.finish()
}

func TestDatabaseStoppedUnderLoad(t *testing.T) {
	srv := embedded(t)
	const maxTime = 2 * time.Second
	s := newScenario(t, srv.URI(), mongohttp.PoolConfig{ServerSelectionTimeout: time.Second})
	coll := s.client.Database("load").Collection("docs")
	ids := insertDocs(t, coll, 200, 10)
	s.serve(coll, maxTime, 0)

	var (
		stop                    atomic.Bool
		ok, unavailable, failed atomic.Int64
		okAfterRestart          atomic.Bool
		restarted               atomic.Bool
		wg                      sync.WaitGroup
		mu                      sync.Mutex
		problems                []string
	)
	for w := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				target := "/docs?limit=20"
				if (w+i)%2 == 0 {
					target = "/docs/" + ids[(w*31+i)%len(ids)].Hex()
				}
				a := s.get(target)
				switch {
				case a.err != nil:
					failed.Add(1)
					mu.Lock()
					problems = append(problems, fmt.Sprintf("%s: %v", target, a.err))
					mu.Unlock()
				case a.status == 200:
					ok.Add(1)
					if restarted.Load() {
						okAfterRestart.Store(true)
					}
				case a.status == 503 || a.status == 504:
					unavailable.Add(1)
				default:
					failed.Add(1)
					mu.Lock()
					problems = append(problems, fmt.Sprintf("%s: status %d %s", target, a.status, a.code))
					mu.Unlock()
				}
				// Nothing may hang past the time limit (plus server
				// selection and a margin for the race detector).
				if a.elapsed > maxTime+3*time.Second {
					failed.Add(1)
					mu.Lock()
					problems = append(problems, fmt.Sprintf("%s took %s", target, a.elapsed))
					mu.Unlock()
				}
			}
		}()
	}
	eventually(t, 10*time.Second, "successes before the outage", func() bool { return ok.Load() > 50 })
	srv.Stop()
	// Let the load run into the outage: several requests answered 503/504
	// while the database is down.
	before := unavailable.Load()
	eventually(t, 30*time.Second, "503/504 answers while the database is stopped", func() bool { return unavailable.Load() >= before+8 })
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	// Cursors open before the stop died with the server process (their
	// killCursors could not reach it); only later ones must be closed.
	s.cursors.forgetOpen()
	restarted.Store(true)
	eventually(t, 30*time.Second, "successes after the restart", okAfterRestart.Load)
	stop.Store(true)
	wg.Wait()
	t.Logf("200: %d, 503/504: %d, failures: %d", ok.Load(), unavailable.Load(), failed.Load())
	if failed.Load() > 0 {
		t.Fatalf("%d answers were neither a success nor a 503/504 problem, e.g. %v", failed.Load(), problems[:min(5, len(problems))])
	}
	if unavailable.Load() == 0 {
		t.Fatalf("no 503/504 while the database was stopped: the outage was not seen")
	}
	s.finish()
}

func TestSlowQueryTimesOut(t *testing.T) {
	s := newScenario(t, serverURI, mongohttp.PoolConfig{})
	coll := testserver.Database(t, s.client.Mongo()).Collection("slow")
	insertDocs(t, coll, 1500, 1000)
	const maxTime = 25 * time.Millisecond
	s.serve(coll, maxTime, 0)
	// A pooled connection is ready, so the time limit is spent on the query
	// rather than on opening a connection (which would be a 503).
	if err := s.client.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Sorting on an unindexed field makes the server read and sort every
	// document (1.5 MB), which takes far longer than maxTime here.
	a := s.get("/docs?sort=-name&limit=1")
	if a.err != nil {
		t.Fatal(a.err)
	}
	if a.status != 504 || a.code != "timeout" {
		t.Fatalf("slow query: %d %q, want 504 timeout", a.status, a.code)
	}
	if a.elapsed > maxTime+time.Second {
		t.Fatalf("answered after %s, want within %s plus a small margin", a.elapsed, maxTime)
	}
	// The server was told the limit, so it abandons the work itself.
	s.cursors.mu.Lock()
	sent := append([]int64(nil), s.cursors.maxTimeMS...)
	s.cursors.mu.Unlock()
	if len(sent) == 0 {
		t.Fatal("no find was sent")
	}
	for _, ms := range sent {
		if ms <= 0 || ms > maxTime.Milliseconds() {
			t.Fatalf("find sent with maxTimeMS %d, want 1..%d", ms, maxTime.Milliseconds())
		}
	}
	s.finish()
}

func TestClientHangsUpMidStream(t *testing.T) {
	s := newScenario(t, serverURI, mongohttp.PoolConfig{})
	coll := testserver.Database(t, s.client.Mongo()).Collection("big")
	insertDocs(t, coll, 3000, 1000)
	s.serve(coll, 30*time.Second, 64<<10)

	for _, accept := range []string{"application/json", "application/x-ndjson"} {
		req, _ := http.NewRequest("GET", s.srv.URL+"/docs?limit=3000", nil)
		req.Header.Set("Accept", accept)
		resp, err := s.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4096)
		if _, err := io.ReadFull(resp.Body, buf); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close() // hang up with most of the answer unread
	}
	eventually(t, 10*time.Second, "the abandoned cursors are killed", func() bool {
		s.cursors.mu.Lock()
		defer s.cursors.mu.Unlock()
		return s.cursors.kills >= 2 && len(s.cursors.open) == 0
	})
	s.finish()
}

func TestPoolExhaustion(t *testing.T) {
	s := newScenario(t, serverURI, mongohttp.PoolConfig{MaxPoolSize: 2, ServerSelectionTimeout: time.Minute})
	coll := testserver.Database(t, s.client.Mongo()).Collection("pool")
	insertDocs(t, coll, 100, 100)
	s.serve(coll, 60*time.Second, 0)

	// 64 requests on 2 connections: all wait their turn and succeed.
	var maxWaiting atomic.Int64
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			default:
				if w := s.client.Stats().Waiting; w > maxWaiting.Load() {
					maxWaiting.Store(w)
				}
				runtime.Gosched()
			}
		}
	}()
	answers := make([]answer, 64)
	var wg sync.WaitGroup
	for i := range answers {
		wg.Add(1)
		go func() { defer wg.Done(); answers[i] = s.get("/docs?limit=50") }()
	}
	wg.Wait()
	close(done)
	for i, a := range answers {
		if a.err != nil || a.status != 200 {
			t.Fatalf("request %d: %d %q %v", i, a.status, a.code, a.err)
		}
	}
	st := s.client.Stats()
	if st.InUse > 2 || st.Open > 2 {
		t.Fatalf("pool went past MaxPoolSize 2: %+v", st)
	}
	if maxWaiting.Load() == 0 || st.CheckoutWaitMax <= 0 {
		t.Fatalf("no checkout waited (max waiting %d, longest wait %s)", maxWaiting.Load(), st.CheckoutWaitMax)
	}
	s.finish()
}

func TestPoolWaitEndsIn503(t *testing.T) {
	s := newScenario(t, serverURI, mongohttp.PoolConfig{MaxPoolSize: 1})
	coll := testserver.Database(t, s.client.Mongo()).Collection("pool")
	insertDocs(t, coll, 1500, 1000)
	const maxTime = 300 * time.Millisecond
	s.serve(coll, maxTime, 0)
	// One slow query holds the only connection; the rest wait for it until
	// their time limit and then answer 503 (pool) or 504 (query) — never
	// 500, never later than the limit allows.
	answers := make([]answer, 16)
	var wg sync.WaitGroup
	for i := range answers {
		wg.Add(1)
		go func() { defer wg.Done(); answers[i] = s.get("/docs?sort=-name&limit=1") }()
	}
	wg.Wait()
	var gaveUp int
	for i, a := range answers {
		if a.err != nil {
			t.Fatalf("request %d: %v", i, a.err)
		}
		switch a.status {
		case 503, 504:
			// 503 when the wait for a connection ran out, 504 when the
			// connection came too late for the query to finish in time.
			gaveUp++
			if a.elapsed < maxTime*8/10 {
				t.Fatalf("request %d: %d after %s, before the configured wait of %s", i, a.status, a.elapsed, maxTime)
			}
			if a.status == 503 && (a.code != "unavailable" || a.retry == "") {
				t.Fatalf("request %d: 503 %q Retry-After %q", i, a.code, a.retry)
			}
		case 200:
		default:
			t.Fatalf("request %d: status %d %q", i, a.status, a.code)
		}
		if a.elapsed > maxTime+2*time.Second {
			t.Fatalf("request %d answered after %s", i, a.elapsed)
		}
	}
	if gaveUp == 0 {
		t.Fatalf("no request gave up waiting: %+v", answers)
	}
	if st := s.client.Stats(); st.CheckoutWaitMax < maxTime/2 {
		t.Fatalf("Stats shows no long checkout wait: %+v", st)
	}
	s.finish()
}

// TestFirstRequestAfterRestartSucceeds: after the database restarts, the
// pool still holds connections to the old process. The first request that
// picks one up must not turn the blip into an error: the query is retried
// once, as the driver's retryable reads would.
func TestFirstRequestAfterRestartSucceeds(t *testing.T) {
	srv := embedded(t)
	s := newScenario(t, srv.URI(), mongohttp.PoolConfig{MinPoolSize: 2})
	coll := s.client.Database("restart").Collection("docs")
	ids := insertDocs(t, coll, 10, 10)
	s.serve(coll, 10*time.Second, 0)
	for _, target := range []string{"/docs?limit=3", "/docs/" + ids[0].Hex()} {
		if a := s.get(target); a.status != 200 {
			t.Fatalf("%s before the restart: %d %v", target, a.status, a.err)
		}
		srv.Stop()
		if err := srv.Restart(); err != nil {
			t.Fatal(err)
		}
		s.cursors.forgetOpen()
		if a := s.get(target); a.status != 200 {
			t.Fatalf("%s first after the restart: %d %q %v", target, a.status, a.code, a.err)
		}
	}
	s.finish()
}
