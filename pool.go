package mongohttp

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// PoolConfig holds the connection pool settings and the timeouts that bound
// how long a request can wait for the database.
//
// A zero field leaves the setting alone: the URI's value stands if the URI
// sets one (maxPoolSize=…, serverSelectionTimeoutMS=…), otherwise the
// default named below. A non-zero field wins over the URI. So the order is:
// PoolConfig field, then URI, then mongohttp's default, then the driver's.
type PoolConfig struct {
	// MaxPoolSize is the most connections per server, in use and idle
	// together. A checkout beyond it waits for a connection to come back, up
	// to ServerSelectionTimeout or the operation's deadline, whichever comes
	// first. Default is 100 (the driver's).
	MaxPoolSize uint64

	// MinPoolSize is the number of connections per server the pool keeps open
	// even when idle. Default is 0.
	MinPoolSize uint64

	// MaxConnecting is how many connections per server may be established at
	// once. Default is 2 (the driver's).
	MaxConnecting uint64

	// MaxConnIdleTime is how long an idle connection stays in the pool before
	// it is closed. Default is no limit (the driver's): idle connections are
	// kept until the client closes.
	MaxConnIdleTime time.Duration

	// ConnectTimeout bounds opening one connection, TLS and handshake
	// included. Default is 10 s (the driver's is 30 s).
	ConnectTimeout time.Duration

	// ServerSelectionTimeout bounds how long an operation waits to start:
	// finding a suitable server and then checking a connection out of its
	// pool share this budget (the driver has no separate wait-queue
	// timeout). So it is how long a request waits when the database is down
	// or the pool is exhausted before it fails with 503 "unavailable"; a
	// handler's shorter MaxTime cuts the wait shorter. Default is 5 s: the
	// driver's 30 s would hold every HTTP request that long during an outage.
	ServerSelectionTimeout time.Duration

	// Timeout is the client-wide time limit of each operation (the driver's
	// timeoutMS). Default is none: handlers bound each query with their own
	// limit, and a context deadline always wins over this value.
	Timeout time.Duration
}

// Defaults mongohttp applies where neither PoolConfig nor the URI says
// otherwise and the driver's own default does not suit an HTTP service.
const (
	DefaultConnectTimeout         = 10 * time.Second
	DefaultServerSelectionTimeout = 5 * time.Second
)

// apply sets the pool options on opts, which already holds the URI's values.
func (p PoolConfig) apply(opts *options.ClientOptions) {
	if p.MaxPoolSize != 0 {
		opts.SetMaxPoolSize(p.MaxPoolSize)
	}
	if p.MinPoolSize != 0 {
		opts.SetMinPoolSize(p.MinPoolSize)
	}
	if p.MaxConnecting != 0 {
		opts.SetMaxConnecting(p.MaxConnecting)
	}
	if p.MaxConnIdleTime != 0 {
		opts.SetMaxConnIdleTime(p.MaxConnIdleTime)
	}
	switch {
	case p.ConnectTimeout != 0:
		opts.SetConnectTimeout(p.ConnectTimeout)
	case opts.ConnectTimeout == nil:
		opts.SetConnectTimeout(DefaultConnectTimeout)
	}
	switch {
	case p.ServerSelectionTimeout != 0:
		opts.SetServerSelectionTimeout(p.ServerSelectionTimeout)
	case opts.ServerSelectionTimeout == nil:
		opts.SetServerSelectionTimeout(DefaultServerSelectionTimeout)
	}
	if p.Timeout != 0 {
		opts.SetTimeout(p.Timeout)
	}
}

// PoolStats is a snapshot of the connection pools of a client, summed over
// all the servers it talks to. Each field says whether it is current (a
// level at the moment of the snapshot) or cumulative (a total since the
// client was created).
type PoolStats struct {
	// Open is the number of connections open now, in use or idle. Current.
	Open int64
	// InUse is the number of connections checked out now. Current.
	InUse int64
	// Idle is the number of open connections not checked out now. Current.
	Idle int64
	// Waiting is the number of checkouts started and not yet finished: the
	// operations queued for a connection. Current.
	Waiting int64

	// Checkouts counts successful checkouts. Cumulative.
	Checkouts uint64
	// CheckoutFailures counts failed checkouts by the driver's reason
	// ("timeout", "connectionError", "poolClosed"). Cumulative.
	CheckoutFailures map[string]uint64
	// CheckoutWaitTotal is the time all checkouts, successful or not, spent
	// waiting for a connection. Cumulative.
	CheckoutWaitTotal time.Duration
	// CheckoutWaitMax is the longest single checkout wait. Cumulative (the
	// maximum since the client was created).
	CheckoutWaitMax time.Duration
	// ConnectionsCreated counts connections opened. Cumulative.
	ConnectionsCreated uint64
	// ConnectionsClosed counts connections closed. Cumulative.
	ConnectionsClosed uint64
	// Clears counts pool clears: the driver empties a server's pool when it
	// sees that server fail. Cumulative.
	Clears uint64
}

// MarshalJSON writes the snapshot with snake_case names and durations in
// milliseconds, grouped by "current" and "cumulative".
func (s PoolStats) MarshalJSON() ([]byte, error) {
	type current struct {
		Open    int64 `json:"open"`
		InUse   int64 `json:"in_use"`
		Idle    int64 `json:"idle"`
		Waiting int64 `json:"waiting"`
	}
	type cumulative struct {
		Checkouts           uint64            `json:"checkouts"`
		CheckoutFailures    map[string]uint64 `json:"checkout_failures"`
		CheckoutWaitTotalMS float64           `json:"checkout_wait_total_ms"`
		CheckoutWaitMaxMS   float64           `json:"checkout_wait_max_ms"`
		ConnectionsCreated  uint64            `json:"connections_created"`
		ConnectionsClosed   uint64            `json:"connections_closed"`
		Clears              uint64            `json:"clears"`
	}
	failures := s.CheckoutFailures
	if failures == nil {
		failures = map[string]uint64{}
	}
	return json.Marshal(struct {
		Current    current    `json:"current"`
		Cumulative cumulative `json:"cumulative"`
	}{
		current{s.Open, s.InUse, s.Idle, s.Waiting},
		cumulative{
			s.Checkouts, failures,
			ms(s.CheckoutWaitTotal), ms(s.CheckoutWaitMax),
			s.ConnectionsCreated, s.ConnectionsClosed, s.Clears,
		},
	})
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// poolCounters collects PoolStats from the driver's pool events. Counters are
// atomics because events arrive from every goroutine that uses the client.
type poolCounters struct {
	open, inUse, waiting       atomic.Int64
	checkouts, created, closed atomic.Uint64
	clears                     atomic.Uint64
	waitTotal, waitMax         atomic.Int64 // nanoseconds
	failuresMu                 sync.Mutex
	failures                   map[string]uint64
}

// monitor returns a PoolMonitor that counts every event, then passes it to
// next (the user's own monitor) when next is non-nil.
func (pc *poolCounters) monitor(next *event.PoolMonitor) *event.PoolMonitor {
	return &event.PoolMonitor{Event: func(e *event.PoolEvent) {
		pc.record(e)
		if next != nil && next.Event != nil {
			next.Event(e)
		}
	}}
}

func (pc *poolCounters) record(e *event.PoolEvent) {
	switch e.Type {
	case event.ConnectionCreated:
		pc.created.Add(1)
		pc.open.Add(1)
	case event.ConnectionClosed:
		pc.closed.Add(1)
		pc.open.Add(-1)
	case event.ConnectionCheckOutStarted:
		pc.waiting.Add(1)
	case event.ConnectionCheckedOut:
		pc.waiting.Add(-1)
		pc.checkouts.Add(1)
		pc.inUse.Add(1)
		pc.addWait(e.Duration)
	case event.ConnectionCheckOutFailed:
		pc.waiting.Add(-1)
		pc.addWait(e.Duration)
		pc.failuresMu.Lock()
		if pc.failures == nil {
			pc.failures = make(map[string]uint64)
		}
		pc.failures[e.Reason]++
		pc.failuresMu.Unlock()
	case event.ConnectionCheckedIn:
		pc.inUse.Add(-1)
	case event.ConnectionPoolCleared:
		pc.clears.Add(1)
	}
}

func (pc *poolCounters) addWait(d time.Duration) {
	pc.waitTotal.Add(int64(d))
	for {
		cur := pc.waitMax.Load()
		if int64(d) <= cur || pc.waitMax.CompareAndSwap(cur, int64(d)) {
			return
		}
	}
}

func (pc *poolCounters) snapshot() PoolStats {
	s := PoolStats{
		Open:               pc.open.Load(),
		InUse:              pc.inUse.Load(),
		Waiting:            pc.waiting.Load(),
		Checkouts:          pc.checkouts.Load(),
		CheckoutWaitTotal:  time.Duration(pc.waitTotal.Load()),
		CheckoutWaitMax:    time.Duration(pc.waitMax.Load()),
		ConnectionsCreated: pc.created.Load(),
		ConnectionsClosed:  pc.closed.Load(),
		Clears:             pc.clears.Load(),
		CheckoutFailures:   map[string]uint64{},
	}
	s.Idle = max(s.Open-s.InUse, 0)
	pc.failuresMu.Lock()
	for k, v := range pc.failures {
		s.CheckoutFailures[k] = v
	}
	pc.failuresMu.Unlock()
	return s
}

// Stats returns a snapshot of the client's pool statistics. For a client
// made by Wrap, which mongohttp cannot monitor, every field is zero; build
// the client with ConnectConfig and Config.Options instead to keep your own
// options and get statistics.
func (c *Client) Stats() PoolStats {
	if c.pool == nil {
		return PoolStats{CheckoutFailures: map[string]uint64{}}
	}
	return c.pool.snapshot()
}

// StatsHandler serves the client's PoolStats as JSON.
//
// The client is Client, else the one in the request's context (put there by
// Client.Middleware). With neither, the answer is 500 problem+json with code
// "internal" and an Error log line saying no client is configured: the
// handler never falls back to Default, which would dial MONGODB_URI or
// localhost just to report an empty pool.
type StatsHandler struct {
	// Client is the client to report. Default (nil) is the client in the
	// request's context (see Middleware); there is no fallback beyond it.
	Client *Client
	// Logger receives a missing client at Error level. Default is
	// slog.Default().
	Logger *slog.Logger
}

func (h *StatsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setRequestID(w, r)
	if !allowGetHead(w, r) {
		return
	}
	c := resolveClient(r.Context(), h.Client)
	if c == nil {
		writeNoClient(w, r, h.Logger, "StatsHandler")
		return
	}
	writeJSON(w, r, http.StatusOK, c.Stats())
}

// expvarStats satisfies expvar.Var without importing expvar, whose import
// would register /debug/vars on http.DefaultServeMux behind the user's back.
type expvarStats struct{ c *Client }

func (v expvarStats) String() string {
	b, err := json.Marshal(v.c.Stats())
	if err != nil {
		return "null"
	}
	return string(b)
}

// Expvar returns the client's pool statistics as an expvar.Var (any value
// with a String method returning JSON), evaluated at each read:
//
//	expvar.Publish("mongohttp.pool", client.Expvar())
func (c *Client) Expvar() interface{ String() string } { return expvarStats{c} }
