package mongohttp

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// resetDefault clears the default client for one test and restores it after.
func resetDefault(t *testing.T) {
	t.Helper()
	prev := SetDefault(nil)
	t.Cleanup(func() {
		if c := SetDefault(prev); c != nil {
			_ = c.Close(context.Background())
		}
	})
}

func TestDefaultCreatesOneClientUnderConcurrentFirstUse(t *testing.T) {
	resetDefault(t)
	// Connect does not contact the server, so no server is needed here.
	t.Setenv("MONGODB_URI", "mongodb://127.0.0.1:1")
	const n = 100
	var (
		start   = make(chan struct{})
		wg      sync.WaitGroup
		clients = make([]*Client, n)
		errs    = make([]error, n)
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			clients[i], errs[i] = Default(context.Background())
		}()
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("goroutine %d: %v", i, errs[i])
		}
		if clients[i] != clients[0] {
			t.Fatalf("goroutine %d got a different client", i)
		}
	}
}

func TestDefaultRetriesAfterFailedCreation(t *testing.T) {
	resetDefault(t)
	t.Setenv("MONGODB_URI", "not-a-uri://")
	if c, err := Default(context.Background()); err == nil {
		t.Fatalf("Default with a malformed URI = %v, want an error", c)
	}
	t.Setenv("MONGODB_URI", "mongodb://127.0.0.1:1")
	c, err := Default(context.Background())
	if err != nil || c == nil {
		t.Fatalf("Default after fixing the URI = %v, %v; want a client", c, err)
	}
}

func TestSetDefaultReplacesAndReturnsPrevious(t *testing.T) {
	resetDefault(t)
	a, b := Wrap(nil), Wrap(nil)
	if prev := SetDefault(a); prev != nil {
		t.Fatalf("first SetDefault returned %v, want nil", prev)
	}
	if prev := SetDefault(b); prev != a {
		t.Fatalf("SetDefault returned %v, want the previous client", prev)
	}
	if c, _ := Default(context.Background()); c != b {
		t.Fatalf("Default = %v, want the client set", c)
	}
	SetDefault(nil)
}

func TestPoolConfigPrecedence(t *testing.T) {
	u := func(v uint64) *uint64 { return &v }
	d := func(v time.Duration) *time.Duration { return &v }
	tests := []struct {
		name                string
		uri                 string
		pool                PoolConfig
		wantMax             *uint64
		wantSelect, wantCon *time.Duration
		wantTimeout         *time.Duration
	}{
		{"driver and mongohttp defaults", "mongodb://h", PoolConfig{}, nil, d(DefaultServerSelectionTimeout), d(DefaultConnectTimeout), nil},
		{"URI wins over defaults", "mongodb://h/?maxPoolSize=7&serverSelectionTimeoutMS=1500&connectTimeoutMS=700", PoolConfig{}, u(7), d(1500 * time.Millisecond), d(700 * time.Millisecond), nil},
		{"PoolConfig wins over URI", "mongodb://h/?maxPoolSize=7&serverSelectionTimeoutMS=1500&timeoutMS=900", PoolConfig{MaxPoolSize: 3, ServerSelectionTimeout: time.Second, Timeout: 2 * time.Second}, u(3), d(time.Second), d(DefaultConnectTimeout), d(2 * time.Second)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts, _, err := Config{URI: tt.uri, Pool: tt.pool}.clientOptions()
			if err != nil {
				t.Fatal(err)
			}
			if !equalPtr(opts.MaxPoolSize, tt.wantMax) {
				t.Errorf("MaxPoolSize = %v, want %v", deref(opts.MaxPoolSize), deref(tt.wantMax))
			}
			if !equalPtr(opts.ServerSelectionTimeout, tt.wantSelect) {
				t.Errorf("ServerSelectionTimeout = %v, want %v", deref(opts.ServerSelectionTimeout), deref(tt.wantSelect))
			}
			if !equalPtr(opts.ConnectTimeout, tt.wantCon) {
				t.Errorf("ConnectTimeout = %v, want %v", deref(opts.ConnectTimeout), deref(tt.wantCon))
			}
			if !equalPtr(opts.Timeout, tt.wantTimeout) {
				t.Errorf("Timeout = %v, want %v", deref(opts.Timeout), deref(tt.wantTimeout))
			}
		})
	}
}

func equalPtr[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func deref[T any](p *T) any {
	if p == nil {
		return "unset"
	}
	return *p
}

func TestUserOptionsAndMonitorAreKept(t *testing.T) {
	var got []string
	user := options.Client().SetAppName("mine").SetPoolMonitor(&event.PoolMonitor{Event: func(e *event.PoolEvent) {
		got = append(got, e.Type)
	}})
	opts, pool, err := Config{URI: "mongodb://h", Options: user}.clientOptions()
	if err != nil {
		t.Fatal(err)
	}
	if opts.AppName == nil || *opts.AppName != "mine" {
		t.Fatalf("AppName = %v, want the user's", deref(opts.AppName))
	}
	opts.PoolMonitor.Event(&event.PoolEvent{Type: event.ConnectionCreated})
	if len(got) != 1 || got[0] != event.ConnectionCreated {
		t.Fatalf("user monitor got %v, want one ConnectionCreated", got)
	}
	if s := pool.snapshot(); s.Open != 1 || s.ConnectionsCreated != 1 {
		t.Fatalf("stats = %+v, want one open connection", s)
	}
}

func TestPoolCounters(t *testing.T) {
	var pc poolCounters
	m := pc.monitor(nil)
	for _, e := range []event.PoolEvent{
		{Type: event.ConnectionCreated}, {Type: event.ConnectionCreated},
		{Type: event.ConnectionCheckOutStarted}, {Type: event.ConnectionCheckedOut, Duration: 3 * time.Millisecond},
		{Type: event.ConnectionCheckOutStarted}, {Type: event.ConnectionCheckedOut, Duration: 7 * time.Millisecond},
		{Type: event.ConnectionCheckOutStarted}, {Type: event.ConnectionCheckOutFailed, Reason: event.ReasonTimedOut, Duration: 5 * time.Millisecond},
		{Type: event.ConnectionCheckOutStarted},
		{Type: event.ConnectionCheckedIn},
		{Type: event.ConnectionPoolCleared},
		{Type: event.ConnectionClosed},
	} {
		m.Event(&e)
	}
	s := pc.snapshot()
	want := PoolStats{
		Open: 1, InUse: 1, Idle: 0, Waiting: 1,
		Checkouts: 2, CheckoutFailures: map[string]uint64{"timeout": 1},
		CheckoutWaitTotal: 15 * time.Millisecond, CheckoutWaitMax: 7 * time.Millisecond,
		ConnectionsCreated: 2, ConnectionsClosed: 1, Clears: 1,
	}
	if s.Open != want.Open || s.InUse != want.InUse || s.Idle != want.Idle || s.Waiting != want.Waiting ||
		s.Checkouts != want.Checkouts || s.CheckoutFailures["timeout"] != 1 || len(s.CheckoutFailures) != 1 ||
		s.CheckoutWaitTotal != want.CheckoutWaitTotal || s.CheckoutWaitMax != want.CheckoutWaitMax ||
		s.ConnectionsCreated != want.ConnectionsCreated || s.ConnectionsClosed != want.ConnectionsClosed || s.Clears != want.Clears {
		t.Fatalf("snapshot = %+v\nwant       %+v", s, want)
	}
}

func TestClientContext(t *testing.T) {
	if c := ClientFrom(context.Background()); c != nil {
		t.Fatalf("ClientFrom(empty) = %v, want nil", c)
	}
	c := Wrap(nil)
	if got := ClientFrom(WithClient(context.Background(), c)); got != c {
		t.Fatalf("ClientFrom(WithClient(c)) = %v, want c", got)
	}
	var seen *Client
	h := c.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = ClientFrom(r.Context())
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	if seen != c {
		t.Fatalf("handler behind Middleware saw %v, want c", seen)
	}
}

func TestCloseIsIdempotentWithoutServer(t *testing.T) {
	c, err := Connect(context.Background(), "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=200")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = c.Close(context.Background()) }()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Close #%d: %v", i, err)
		}
	}
	if err := c.Ping(context.Background()); !errors.Is(err, mongo.ErrClientDisconnected) {
		t.Fatalf("Ping after Close = %v, want ErrClientDisconnected", err)
	}
}

// An empty URI means MONGODB_URI, and no URI at all is an error: Connect
// never falls back to localhost. Connect does not dial, so no server is
// needed.
func TestConnectEmptyURI(t *testing.T) {
	tests := []struct {
		name, uri, env string
		wantErr        error  // nil: a client
		wantHost       string // the host the client would dial
	}{
		{"empty, MONGODB_URI unset", "", "", ErrNoURI, ""},
		{"empty, MONGODB_URI set", "", "mongodb://envhost:27018", nil, "envhost:27018"},
		{"given, MONGODB_URI set", "mongodb://given:27019", "mongodb://envhost:27018", nil, "given:27019"},
		{"given, MONGODB_URI unset", "mongodb://given:27019", "", nil, "given:27019"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("MONGODB_URI", tt.env)
			for _, connect := range []func() (*Client, error){
				func() (*Client, error) { return Connect(context.Background(), tt.uri) },
				func() (*Client, error) { return ConnectConfig(context.Background(), Config{URI: tt.uri}) },
			} {
				c, err := connect()
				if tt.wantErr != nil {
					if !errors.Is(err, tt.wantErr) || c != nil {
						t.Fatalf("got %v, %v; want nil, %v", c, err, tt.wantErr)
					}
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				_ = c.Close(context.Background())
				opts, _, err := Config{URI: tt.uri}.clientOptions()
				if err != nil || len(opts.Hosts) != 1 || opts.Hosts[0] != tt.wantHost {
					t.Fatalf("hosts = %v, %v; want [%s]", opts.Hosts, err, tt.wantHost)
				}
			}
		})
	}
}

func TestConnectHonoursCanceledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Connect(ctx, "mongodb://h"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Connect(canceled) = %v, want context.Canceled", err)
	}
}
