package mongohttp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Config configures ConnectConfig.
type Config struct {
	// URI is the connection string. Default ("") is the MONGODB_URI
	// environment variable; when that is empty too, ConnectConfig returns an
	// error matching ErrNoURI rather than dial localhost: a service never
	// talks to a server nobody named.
	URI string

	// Pool holds the pool settings and timeouts. The zero value keeps the
	// URI's values and otherwise the defaults documented on each field.
	Pool PoolConfig

	// Options are driver options of your own (TLS, auth, monitors, read
	// preference…), applied after URI and before Pool. A PoolMonitor set here
	// keeps receiving every event: mongohttp counts its statistics and then
	// calls yours. Options is not modified. Default is nil.
	Options *options.ClientOptions

	// Admission bounds the requests that mongohttp's handlers run at once on
	// this client, all handlers together (each handler has its own bound
	// too; see Collection.Admission). Default is DefaultClientMaxActive (64)
	// at once, 16 times as many waiting at most DefaultMaxWait.
	Admission Admission

	// Observer receives a report of every request of the handlers on this
	// client's collections, unless their Collection sets its own (see
	// Observer). With it set, the client also times each request's wait
	// for a connection through a command monitor, and installs the
	// observer's own monitor when it is a CommandObserver; a command
	// monitor in Options still receives every event. Default is nil: no
	// observing, and no command monitor of mongohttp's.
	Observer Observer
}

// Client is a MongoDB client shared by a whole service, with pool
// statistics. It is safe for concurrent use. Create one per process and
// Close it on shutdown.
type Client struct {
	mc       *mongo.Client
	pool     *poolCounters // nil for a wrapped client
	limit    *limiter      // the client-wide admission bound; nil when unbounded
	observer Observer      // Config.Observer, the collections' default
	feeds    tailers       // the change feeds' tailers

	closeOnce sync.Once
	closeErr  error
}

// Connect builds a client for uri with the default pool settings. Like the
// driver, it does not wait for a server: it returns at once and connects in
// the background, so a service starts while its database is down. Use Ping
// to check the server. ctx is checked before anything is built.
//
// An empty uri means the MONGODB_URI environment variable; when that is
// empty too, Connect returns an error matching ErrNoURI. It never falls back
// to localhost, so a missing setting is an error at start-up, not a service
// that quietly serves whatever database listens on the machine.
func Connect(ctx context.Context, uri string) (*Client, error) {
	return ConnectConfig(ctx, Config{URI: uri})
}

// ConnectConfig builds a client from cfg; see Connect.
func ConnectConfig(ctx context.Context, cfg Config) (*Client, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := cfg.Admission.check(); err != nil {
		return nil, fmt.Errorf("mongohttp: Config.Admission: %w", err)
	}
	opts, pool, err := cfg.clientOptions()
	if err != nil {
		return nil, err
	}
	mc, err := mongo.Connect(opts)
	if err != nil {
		return nil, err
	}
	return &Client{mc: mc, pool: pool, limit: cfg.Admission.newLimiter(DefaultClientMaxActive), observer: cfg.Observer}, nil
}

// clientOptions merges the URI, the user's options and the pool settings,
// in that order, and installs the statistics monitor in front of the user's.
// An empty URI is MONGODB_URI's, and no URI at all is ErrNoURI.
func (cfg Config) clientOptions() (*options.ClientOptions, *poolCounters, error) {
	uri := cfg.URI
	if uri == "" {
		uri = os.Getenv("MONGODB_URI")
	}
	if uri == "" {
		return nil, nil, fmt.Errorf("mongohttp: Connect: %w", ErrNoURI)
	}
	opts := options.Client().ApplyURI(uri)
	var userMonitor = opts.PoolMonitor
	if cfg.Options != nil {
		if cfg.Options.PoolMonitor != nil {
			userMonitor = cfg.Options.PoolMonitor
		}
		opts = options.MergeClientOptions(opts, cfg.Options)
	}
	cfg.Pool.apply(opts)
	pool := &poolCounters{}
	opts.SetPoolMonitor(pool.monitor(userMonitor))
	if cfg.Observer != nil {
		// A command monitor costs a copy of each command, so it is there
		// only when someone observes.
		opts.SetMonitor(commandMonitor(cfg.Observer, opts.Monitor))
	}
	return opts, pool, nil
}

// Wrap adopts a client you built yourself. mongohttp cannot observe its pool,
// so Stats reports zeros; pass your options as Config.Options to
// ConnectConfig instead when you want statistics. The handlers of the
// collections declared with the returned Client (Collection.Client) share
// the default client-wide Admission. Close disconnects mc.
func Wrap(mc *mongo.Client) *Client {
	return &Client{mc: mc, limit: Admission{}.newLimiter(DefaultClientMaxActive)}
}

// AdmissionStats reports the client-wide admission bound: the requests of
// mongohttp's handlers running and waiting on this client.
func (c *Client) AdmissionStats() AdmissionStats { return c.limit.stats() }

// Mongo returns the underlying driver client.
func (c *Client) Mongo() *mongo.Client { return c.mc }

// Database returns a handle to the named database.
func (c *Client) Database(name string, opts ...options.Lister[options.DatabaseOptions]) *mongo.Database {
	return c.mc.Database(name, opts...)
}

// Ping asks the server to answer, under ctx. After Close it returns an error
// matching mongo.ErrClientDisconnected.
func (c *Client) Ping(ctx context.Context) error {
	return c.mc.Ping(ctx, nil)
}

// Close disconnects the client, waiting under ctx for in-use connections to
// return. It is safe to call more than once and from many goroutines at
// once: the first call disconnects, the others wait for it and return the
// same result. After Close every operation fails with an error matching
// mongo.ErrClientDisconnected.
func (c *Client) Close(ctx context.Context) error {
	c.closeOnce.Do(func() {
		c.closeErr = c.mc.Disconnect(ctx)
	})
	return c.closeErr
}

// The process-wide default client.
var defaultClient struct {
	mu sync.Mutex
	c  *Client
}

// Default returns the process-wide client, for code that has no client
// passed to it (a CLI, a job, a test helper). It creates the client on first
// use from MONGODB_URI with the default pool settings, and returns an error
// matching ErrNoURI when MONGODB_URI is empty. Calls that race on first use
// wait for one creation and share its client. A failed creation (a
// malformed URI) is not kept: the next call tries again.
//
// Nothing in this package calls Default: handlers use Collection.Client,
// and HealthHandler and StatsHandler their Client field or the request
// context's (see Middleware). Pass Default's client there yourself if you
// want it served.
func Default(ctx context.Context) (*Client, error) {
	defaultClient.mu.Lock()
	defer defaultClient.mu.Unlock()
	if defaultClient.c != nil {
		return defaultClient.c, nil
	}
	c, err := Connect(ctx, "")
	if err != nil {
		return nil, err
	}
	defaultClient.c = c
	return c, nil
}

// SetDefault replaces the process-wide client that Default returns, and
// returns the previous one (nil if none); tests use it to point Default at
// their server. SetDefault(nil) makes the next Default create a new client.
// It closes nothing: closing the previous client is the caller's choice.
func SetDefault(c *Client) (previous *Client) {
	defaultClient.mu.Lock()
	defer defaultClient.mu.Unlock()
	previous, defaultClient.c = defaultClient.c, c
	return previous
}

type ctxKey struct{}

// WithClient returns a copy of ctx that carries c, for ClientFrom.
// Middleware does this for every request. HealthHandler and StatsHandler
// without a Client field use the client so carried; the collection
// handlers do not (they use Collection.Client).
func WithClient(ctx context.Context, c *Client) context.Context {
	return context.WithValue(ctx, ctxKey{}, c)
}

// ClientFrom returns the client carried by ctx (see WithClient and
// Middleware), or nil when there is none: for handlers of your own, and
// how HealthHandler and StatsHandler without a Client field find theirs.
// It deliberately does not fall back to Default: a forgotten middleware
// then shows up as a nil client, not as a silent connection to MONGODB_URI.
func ClientFrom(ctx context.Context) *Client {
	c, _ := ctx.Value(ctxKey{}).(*Client)
	return c
}

// Middleware puts c into the context of every request it passes to next
// (see WithClient), where ClientFrom, HealthHandler and StatsHandler find
// it. The collection handlers need no middleware: they use
// Collection.Client. It has the func(http.Handler) http.Handler shape
// routers expect:
//
//	handler := client.Middleware(mux)   // net/http
//	r.Use(client.Middleware)            // chi, gorilla/mux
func (c *Client) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(WithClient(r.Context(), c)))
	})
}

// resolveClient picks the handler's own client, else the one in ctx (see
// Middleware), else nil. Like ClientFrom, it never falls back to Default: a
// handler nobody gave a client must fail visibly, not dial MONGODB_URI behind
// the service's back.
func resolveClient(ctx context.Context, c *Client) *Client {
	if c != nil {
		return c
	}
	return ClientFrom(ctx)
}

// errNoClient is the logged cause of the answer to a request that reached a
// handler with no client.
var errNoClient = errors.New("no client is configured: set the handler's Client or wrap it in Client.Middleware")

// writeNoClient answers a request that reached a handler with no client:
// 500 "internal", because the service is misconfigured (the database is not
// down, so 503 would send clients retrying), and an Error log line that says
// what to fix. The client sees only the generic detail.
func writeNoClient(w http.ResponseWriter, r *http.Request, logger *slog.Logger, handler string) {
	if logger == nil {
		logger = slog.Default()
	}
	logger.LogAttrs(r.Context(), slog.LevelError, "mongohttp: "+handler+": no client is configured",
		slog.String("path", instance(r)), slog.Any("error", errNoClient))
	WriteError(w, r, ErrInternal.Detailf("the request could not be completed").withCause(errNoClient))
}

// DefaultHealthTimeout bounds a HealthHandler's ping when its Timeout is 0.
const DefaultHealthTimeout = 2 * time.Second

// HealthHandler answers 200 {"status":"ok"} when the database answers a
// ping, and 503 problem+json with code "unavailable" when it does not. It
// answers within Timeout even when the server is unreachable (the driver
// alone would look for a server for 30 s).
//
// The client is Client, else the one in the request's context (put there by
// Client.Middleware). With neither, the answer is 500 problem+json with code
// "internal" and an Error log line saying no client is configured: the
// handler never falls back to Default, which would dial MONGODB_URI: it
// never dials a server nobody named.
type HealthHandler struct {
	// Client is the client to check. Default (nil) is the client in the
	// request's context (see Middleware); there is no fallback beyond it.
	Client *Client
	// Timeout bounds the ping. Default is DefaultHealthTimeout (2 s).
	Timeout time.Duration
	// Logger receives failed pings at Warn level, and a missing client at
	// Error level. Default is slog.Default().
	Logger *slog.Logger
}

func (h *HealthHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setRequestID(w, r)
	if !allowGetHead(w, r) {
		return
	}
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = DefaultHealthTimeout
	}
	c := resolveClient(r.Context(), h.Client)
	if c == nil {
		writeNoClient(w, r, h.Logger, "HealthHandler")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	if err := c.Ping(ctx); err != nil {
		logger := h.Logger
		if logger == nil {
			logger = slog.Default()
		}
		logger.LogAttrs(r.Context(), slog.LevelWarn, "mongohttp: health check failed", slog.Any("error", err))
		// Whatever the cause (timeout, refused, closed), health means "cannot
		// serve now": always 503, never 504 or 500.
		WriteError(w, r, ErrUnavailable.Detailf("the database did not answer a ping").withCause(err))
		return
	}
	writeJSON(w, r, http.StatusOK, map[string]string{"status": "ok"})
}

// writeJSON writes v as a small, non-cacheable JSON answer.
func writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		WriteError(w, r, errors.Join(ErrInternal, err))
		return
	}
	body = append(body, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}
