package integration_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mongohttp/mongohttp"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

func TestCloseTwiceAndConcurrently(t *testing.T) {
	c := connect(t, mongohttp.PoolConfig{})
	coll := database(t, c).Collection("things")
	ctx := context.Background()
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "n", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 16)
	for i := range errs {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = c.Close(ctx) }()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("concurrent Close #%d: %v", i, err)
		}
	}
	if err := c.Close(ctx); err != nil {
		t.Fatalf("Close after Close: %v", err)
	}
	if err := c.Ping(ctx); !errors.Is(err, mongo.ErrClientDisconnected) {
		t.Fatalf("Ping after Close = %v, want ErrClientDisconnected", err)
	}
	if _, err := coll.Find(ctx, bson.D{}); !errors.Is(err, mongo.ErrClientDisconnected) {
		t.Fatalf("Find after Close = %v, want ErrClientDisconnected", err)
	}
	if got := mongohttp.AsError(mongo.ErrClientDisconnected); got.Status != http.StatusServiceUnavailable {
		t.Fatalf("a closed client maps to %d, want 503", got.Status)
	}
	if s := c.Stats(); s.InUse != 0 || s.Open != 0 {
		t.Fatalf("after Close: %+v, want no connections open or in use", s)
	}
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestHealthHandler(t *testing.T) {
	up := connect(t, mongohttp.PoolConfig{})
	// A closed port with the driver's own 30 s server selection: the handler
	// must still answer within its 2 s default.
	down, err := mongohttp.ConnectConfig(context.Background(), mongohttp.Config{
		URI: "mongodb://" + closedPort(t) + "/?serverSelectionTimeoutMS=30000",
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = down.Close(context.Background()) })

	tests := []struct {
		name       string
		handler    http.Handler
		method     string
		wantStatus int
		wantType   string
		wantBody   string
	}{
		{"up", &mongohttp.HealthHandler{Client: up}, "GET", 200, "application/json", `{"status":"ok"}`},
		{"up HEAD", &mongohttp.HealthHandler{Client: up}, "HEAD", 200, "application/json", ``},
		{"down", &mongohttp.HealthHandler{Client: down}, "GET", 503, "application/problem+json", `"code":"unavailable"`},
		{"down, short timeout", &mongohttp.HealthHandler{Client: down, Timeout: 300 * time.Millisecond}, "GET", 503, "application/problem+json", `"status":503`},
		{"from context", up.Middleware(&mongohttp.HealthHandler{}), "GET", 200, "application/json", `{"status":"ok"}`},
		{"POST", &mongohttp.HealthHandler{Client: up}, "POST", 405, "application/problem+json", `"code":"method_not_allowed"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			req, _ := http.NewRequest(tt.method, srv.URL, nil)
			start := time.Now()
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			elapsed := time.Since(start)
			var body bytes.Buffer
			_, _ = body.ReadFrom(resp.Body)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, tt.wantStatus, body.String())
			}
			if ct := resp.Header.Get("Content-Type"); ct != tt.wantType {
				t.Errorf("Content-Type = %q, want %q", ct, tt.wantType)
			}
			if !strings.Contains(body.String(), tt.wantBody) {
				t.Errorf("body %q does not contain %q", body.String(), tt.wantBody)
			}
			if elapsed > 3*time.Second {
				t.Errorf("answered after %s, want under 3 s", elapsed)
			}
			if tt.wantStatus == 503 && resp.Header.Get("Retry-After") == "" {
				t.Errorf("503 without Retry-After")
			}
		})
	}
}

// seed inserts n small documents.
func seed(t *testing.T, coll *mongo.Collection, n int) {
	t.Helper()
	docs := make([]any, n)
	for i := range docs {
		docs[i] = bson.D{{Key: "i", Value: i}, {Key: "name", Value: "doc"}}
	}
	if _, err := coll.InsertMany(context.Background(), docs); err != nil {
		t.Fatal(err)
	}
}

// hammer runs ops concurrent finds of the whole collection and returns the
// highest InUse and Waiting that Stats showed meanwhile.
func hammer(t *testing.T, c *mongohttp.Client, coll *mongo.Collection, workers, perWorker int) (maxInUse, maxWaiting int64) {
	t.Helper()
	stop := make(chan struct{})
	sampled := make(chan [2]int64)
	go func() {
		var mi, mw int64
		for {
			s := c.Stats()
			mi, mw = max(mi, s.InUse), max(mw, s.Waiting)
			select {
			case <-stop:
				sampled <- [2]int64{mi, mw}
				return
			case <-time.After(200 * time.Microsecond):
			}
		}
	}()
	var wg sync.WaitGroup
	var failed atomic.Int64
	var firstErr atomic.Value
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perWorker {
				cur, err := coll.Find(context.Background(), bson.D{})
				if err == nil {
					var docs []bson.Raw
					err = cur.All(context.Background(), &docs)
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	s := <-sampled
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d operations failed; first: %v", n, firstErr.Load())
	}
	return s[0], s[1]
}

func TestPoolStatsUnderConcurrency(t *testing.T) {
	// The pool wait shares the server-selection budget; the race detector
	// makes the server slow enough for 32 workers to queue past 5 s.
	c := connect(t, mongohttp.PoolConfig{MaxPoolSize: 4, ServerSelectionTimeout: time.Minute})
	coll := database(t, c).Collection("things")
	seed(t, coll, 200)

	maxInUse, maxWaiting := hammer(t, c, coll, 32, 5)
	s := c.Stats()
	if maxInUse > 4 {
		t.Errorf("in use reached %d with MaxPoolSize 4", maxInUse)
	}
	if maxInUse == 0 {
		t.Errorf("in use never above 0 under load: the statistics see nothing")
	}
	if maxWaiting == 0 || s.CheckoutWaitTotal <= 0 || s.CheckoutWaitMax <= 0 {
		t.Errorf("no waits seen (max waiting %d, wait total %s, max %s) with 32 workers on 4 connections",
			maxWaiting, s.CheckoutWaitTotal, s.CheckoutWaitMax)
	}
	if s.Checkouts < 32*5 {
		t.Errorf("Checkouts = %d, want at least %d", s.Checkouts, 32*5)
	}
	if s.Open > 4 {
		t.Errorf("Open = %d, want at most 4", s.Open)
	}
	eventually(t, 5*time.Second, "in-use connections back to 0", func() bool { return c.Stats().InUse == 0 })
	if s := c.Stats(); s.Waiting != 0 || s.Idle != s.Open {
		t.Errorf("after the load: %+v, want nothing waiting and every open connection idle", s)
	}
}

func TestPoolConfigWinsOverURI(t *testing.T) {
	tests := []struct {
		name    string
		uriMax  string
		pool    mongohttp.PoolConfig
		wantMax int64
	}{
		{"URI alone", "2", mongohttp.PoolConfig{ServerSelectionTimeout: time.Minute}, 2},
		{"PoolConfig over URI", "8", mongohttp.PoolConfig{MaxPoolSize: 3, ServerSelectionTimeout: time.Minute}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			uri := withQuery(serverURI, "maxPoolSize="+tt.uriMax)
			c, err := mongohttp.ConnectConfig(context.Background(), mongohttp.Config{URI: uri, Pool: tt.pool})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(context.Background())
			coll := database(t, c).Collection("things")
			seed(t, coll, 50)
			maxInUse, _ := hammer(t, c, coll, 16, 4)
			if maxInUse > tt.wantMax {
				t.Fatalf("in use reached %d, want at most %d", maxInUse, tt.wantMax)
			}
			if s := c.Stats(); s.Open > tt.wantMax {
				t.Fatalf("open connections %d, want at most %d", s.Open, tt.wantMax)
			}
		})
	}
}

// withQuery adds a URI option to a connection string.
func withQuery(uri, kv string) string {
	if strings.Contains(uri, "?") {
		return uri + "&" + kv
	}
	if !strings.HasSuffix(uri, "/") {
		uri += "/"
	}
	return uri + "?" + kv
}

func TestUserPoolMonitorStillReceivesEvents(t *testing.T) {
	var checkedOut, checkedIn atomic.Int64
	user := options.Client().SetPoolMonitor(&event.PoolMonitor{Event: func(e *event.PoolEvent) {
		switch e.Type {
		case event.ConnectionCheckedOut:
			checkedOut.Add(1)
		case event.ConnectionCheckedIn:
			checkedIn.Add(1)
		}
	}})
	c, err := mongohttp.ConnectConfig(context.Background(), mongohttp.Config{URI: serverURI, Options: user})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	for range 3 {
		if err := c.Ping(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if checkedOut.Load() < 3 || checkedIn.Load() < 3 {
		t.Fatalf("user monitor saw %d checkouts and %d checkins, want at least 3 each", checkedOut.Load(), checkedIn.Load())
	}
	if got := c.Stats().Checkouts; got != uint64(checkedOut.Load()) {
		t.Fatalf("Stats().Checkouts = %d, user monitor counted %d", got, checkedOut.Load())
	}
}

func TestStatsHandlerAndExpvar(t *testing.T) {
	c := connect(t, mongohttp.PoolConfig{})
	if err := c.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	(&mongohttp.StatsHandler{Client: c}).ServeHTTP(rec, httptest.NewRequest("GET", "/debug/pool", nil))
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	var got struct {
		Current    map[string]float64 `json:"current"`
		Cumulative map[string]any     `json:"cumulative"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("%v: %s", err, rec.Body)
	}
	for _, k := range []string{"open", "in_use", "idle", "waiting"} {
		if _, ok := got.Current[k]; !ok {
			t.Errorf("current.%s missing: %s", k, rec.Body)
		}
	}
	if got.Cumulative["checkouts"].(float64) < 1 {
		t.Errorf("cumulative.checkouts = %v after a ping, want ≥ 1", got.Cumulative["checkouts"])
	}
	var viaExpvar map[string]any
	if err := json.Unmarshal([]byte(c.Expvar().String()), &viaExpvar); err != nil || viaExpvar["current"] == nil {
		t.Fatalf("Expvar().String() = %q (%v), want the stats JSON", c.Expvar().String(), err)
	}
}

func TestMiddlewareCarriesClientToHandlers(t *testing.T) {
	c := connect(t, mongohttp.PoolConfig{})
	h := c.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := mongohttp.ClientFrom(r.Context()).Ping(r.Context()); err != nil {
			mongohttp.WriteError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != http.StatusNoContent {
		t.Fatalf("status %d, want 204: %s", rec.Code, rec.Body)
	}
}
