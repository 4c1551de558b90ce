// Command example is a small service built with mongohttp: users and posts
// served as JSON from net/http, with filtering, sorting, projection, keyset
// paging, a health check and pool statistics.
//
// With no configuration it starts an embedded FerretDB (SQLite, loopback
// only, data in a temporary directory), fills it with deterministic sample
// data and listens on 127.0.0.1:8080:
//
//	go run .
//
// Flags and environment:
//
//	-addr ADDR        HTTP address to listen on (or ADDR; default 127.0.0.1:8080)
//	-debug-addr ADDR  address of the operator endpoints, /debug/pool,
//	                  /debug/vars and /metrics (default 127.0.0.1:6060; ""
//	                  turns them off)
//	-data DIR         keep the embedded database in DIR across runs
//	-db NAME          database name (default mongohttp_example)
//	-seed             seed the sample data into an empty MONGODB_URI server too
//	-db-only          start the embedded database only, print its MONGODB_URI
//	                  and wait for a signal (for benchmarks)
//	-db-addr ADDR     loopback address of the embedded database (default a free port)
//	-max-time D       time limit of each request's queries (default 10s)
//	-max-active N     requests each handler runs at once (default 0: mongohttp's 8;
//	                  -1: no bound)
//	-trace            print each request's spans to standard error
//	MONGODB_URI       use this server instead of the embedded one
//
// The operator endpoints show the command line, memory and pool statistics,
// and /metrics the service's metrics in the Prometheus text format:
// they are served on their own listener, never on the public address,
// which answers 404 for /debug/*. A -debug-addr that would share the public
// address (":8080" and "127.0.0.1:8080" do) is refused at start-up.
//
// Both listeners cut slow clients within seconds: headers must arrive
// within 5 s, a whole request within 10 s, and each write of an answer must
// make progress within 10 s, while an answer that keeps flowing may take as
// long as it needs (see serve.go).
//
// SIGINT and SIGTERM shut the service down gracefully: it stops accepting
// connections, finishes the requests in flight, closes the client, stops
// the embedded database and exits 0.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mongohttp/mongohttp"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Timeouts of the service's life cycle.
const (
	seedTimeout     = 5 * time.Minute
	shutdownTimeout = 15 * time.Second
	closeTimeout    = 5 * time.Second
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// After the first signal, a second one kills the process at once.
		<-ctx.Done()
		stop()
	}()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "example:", err)
		os.Exit(1)
	}
}

// errUsage reports bad flags; the flag package has already said why.
var errUsage = errors.New("usage error")

// config is the command line and environment, parsed.
type config struct {
	addr, debugAddr, dataDir, dbName, dbAddr string
	seed, dbOnly, trace                      bool
	maxTime                                  time.Duration
	maxActive                                int
	uri                                      string // MONGODB_URI; "" for the embedded server
	cursorKey                                string // CURSOR_KEY; "" for a key per process
}

func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("example", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := getenv("ADDR")
	if addr == "" {
		addr = "127.0.0.1:8080"
	}
	fs.StringVar(&c.addr, "addr", addr, "HTTP address to listen on (environment: ADDR)")
	fs.StringVar(&c.debugAddr, "debug-addr", "127.0.0.1:6060", "address of the operator endpoints /debug/pool and /debug/vars; \"\" turns them off")
	fs.StringVar(&c.dataDir, "data", "", "keep the embedded database in this directory (default: a temporary one)")
	fs.StringVar(&c.dbName, "db", "mongohttp_example", "database name")
	fs.BoolVar(&c.seed, "seed", false, "seed the sample data into an empty MONGODB_URI database too")
	fs.BoolVar(&c.dbOnly, "db-only", false, "start the embedded database only, print its MONGODB_URI and wait for a signal")
	fs.StringVar(&c.dbAddr, "db-addr", "127.0.0.1:0", "loopback address of the embedded database")
	fs.DurationVar(&c.maxTime, "max-time", mongohttp.DefaultMaxTime, "time limit of each request's queries; past it the answer is 504")
	fs.BoolVar(&c.trace, "trace", false, "print each request's spans to standard error")
	fs.IntVar(&c.maxActive, "max-active", 0, "requests each handler runs at once; past it and a short queue the answer is 503 overloaded (0: mongohttp's default; -1: no bound)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, err
		}
		return c, errUsage
	}
	if c.maxTime <= 0 {
		fmt.Fprintln(stderr, "-max-time must be positive")
		return c, errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return c, errUsage
	}
	if _, _, err := splitListenAddr(c.addr); err != nil {
		fmt.Fprintf(stderr, "-addr %q: %v\n", c.addr, err)
		return c, errUsage
	}
	if c.debugAddr != "" {
		// The operator endpoints show the command line and memory
		// statistics: never on the public address.
		same, err := sameListenAddress(c.addr, c.debugAddr)
		if err != nil {
			fmt.Fprintf(stderr, "-debug-addr %q: %v\n", c.debugAddr, err)
			return c, errUsage
		}
		if same {
			fmt.Fprintf(stderr, "-debug-addr %s would share the public address %s: the operator endpoints must not be public; choose another port, or -debug-addr \"\" to turn them off\n", c.debugAddr, c.addr)
			return c, errUsage
		}
	}
	if key := getenv("CURSOR_KEY"); key != "" {
		// Instances behind one address share it, so that a paging or
		// resume token from one is good on the others.
		if len(key) < 16 {
			fmt.Fprintln(stderr, "CURSOR_KEY must be at least 16 bytes")
			return c, errUsage
		}
		c.cursorKey = key
	}
	c.uri = getenv("MONGODB_URI")
	if c.dbOnly && c.uri != "" {
		return c, errors.New("-db-only starts the embedded database: unset MONGODB_URI")
	}
	if c.uri != "" && c.dataDir != "" {
		return c, errors.New("-data is for the embedded database: unset MONGODB_URI or drop -data")
	}
	return c, nil
}

// keyBytes is a key as the policies take it: nil for none.
func keyBytes(s string) []byte {
	if s == "" {
		return nil
	}
	return []byte(s)
}

// run is the whole program: main only adds the signals and the exit code.
// It returns when ctx is done and everything is shut down, or on a failure.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))

	uri, where := cfg.uri, "MONGODB_URI"
	seedIt := cfg.seed
	if uri == "" {
		// FerretDB's own logs: errors only (it warns about every command it lacks,
		// such as the endSessions the driver sends when it disconnects).
		dbLogger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError})).With("component", "ferretdb")
		db, err := startEmbedded(cfg.dbAddr, cfg.dataDir, dbLogger)
		if err != nil {
			return err
		}
		defer db.Stop() // runs after the client is closed
		uri, where = db.URI(), "the embedded FerretDB at "+db.URI()
		seedIt = seedIt || !cfg.dbOnly
	}

	if cfg.dbOnly && !seedIt {
		return serveDatabase(ctx, stdout, uri, cfg.dbName)
	}

	tel, err := newTelemetry(traceWriter(cfg.trace, stderr))
	if err != nil {
		return err
	}
	defer func() { _ = tel.close(context.Background()) }() // runs after the client is closed
	client, err := mongohttp.ConnectConfig(ctx, mongohttp.Config{URI: uri, Observer: tel.Observer})
	if err != nil {
		return fmt.Errorf("connecting: %w", err)
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		if err := client.Close(closeCtx); err != nil {
			logger.Warn("closing the database client", "error", err)
		}
	}()
	if err := tel.observePool(client); err != nil {
		return err
	}
	db := client.Database(cfg.dbName)

	if seedIt {
		seedCtx, cancel := context.WithTimeout(ctx, seedTimeout)
		_, err := seed(seedCtx, db, logger)
		cancel()
		if ctx.Err() != nil {
			return nil // interrupted while seeding: a stop, not a failure
		}
		if err != nil {
			return err
		}
	} else {
		// Like mongohttp, the service starts while its database is down:
		// /healthz then answers 503 until it is back.
		pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := client.Ping(pingCtx); err != nil {
			logger.Warn("the database does not answer yet; serving anyway", "error", err)
		}
		cancel()
	}

	if cfg.dbOnly {
		_ = client.Close(ctx) // seeded; the database is for others now
		return serveDatabase(ctx, stdout, uri, cfg.dbName)
	}

	public, err := listen("public", cfg.addr, NewHandler(client, db, logger, limits{maxTime: cfg.maxTime, admission: mongohttp.Admission{MaxActive: cfg.maxActive}, cursorKey: keyBytes(cfg.cursorKey)}), defaultLimits, logger)
	if err != nil {
		return err
	}
	listeners := []*listener{public}
	opsURL := ""
	if cfg.debugAddr != "" {
		ops, err := listen("operator", cfg.debugAddr, newOperatorMux(client, logger, tel.MetricsHandler()), defaultLimits, logger)
		if err != nil {
			_ = public.l.Close()
			return err
		}
		listeners = append(listeners, ops)
		opsURL = ops.url
	}
	served := make(chan error, len(listeners))
	for _, s := range listeners {
		go s.serve(served)
	}

	logger.Info("serving", "url", public.url, "operator", opsURL, "database", cfg.dbName)
	printTry(ctx, stdout, public.url, opsURL, where, db)

	var failed error
	select {
	case failed = <-served: // a listener failed: stop the other one too
	case <-ctx.Done():
		logger.Info("shutting down: finishing the requests in flight")
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	shutErr := shutdownAll(shutCtx, listeners)
	switch {
	case failed != nil:
		return failed
	case shutErr != nil:
		return fmt.Errorf("shutting down: %w", shutErr)
	}
	logger.Info("stopped")
	return nil
}

// serveDatabase is -db-only: it tells where the database is, in lines a
// shell can source, and waits for the signal to stop.
func serveDatabase(ctx context.Context, stdout io.Writer, uri, dbName string) error {
	fmt.Fprintf(stdout, "MONGODB_URI=%s\nMONGODB_DATABASE=%s\n", uri, dbName)
	<-ctx.Done()
	return nil
}

// printTry prints where the service listens and URLs to try, with the id of
// a real user when the database has one. ops is the operator listener's
// URL, "" when it is off.
func printTry(ctx context.Context, w io.Writer, base, ops, where string, db *mongo.Database) {
	userID := "USER_ID"
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var first struct {
		ID bson.ObjectID `bson:"_id"`
	}
	err := db.Collection("users").FindOne(ctx, bson.D{},
		options.FindOne().SetSort(bson.D{{Key: "_id", Value: 1}}).SetProjection(bson.D{{Key: "_id", Value: 1}})).Decode(&first)
	if err == nil {
		userID = first.ID.Hex()
	}
	fmt.Fprintf(w, "mongohttp example listening on %s\n", base)
	fmt.Fprintf(w, "database %s on %s\n", db.Name(), where)
	if ops != "" {
		fmt.Fprintf(w, "operator endpoints on %s (keep this address private)\n\n", ops)
	} else {
		fmt.Fprint(w, "operator endpoints off (-debug-addr is empty)\n\n")
	}
	fmt.Fprintln(w, "Try:")
	for _, path := range []string{
		"/users?limit=3&fields=name,age",
		"/users?profile.city=Lisbon&age[gte]=30&sort=-age&limit=5",
		"/users/" + userID,
		"/users/" + userID + "/posts?sort=-likes&limit=3",
		"/posts?likes[gte]=1500&count=exact",
		"/users?name[$ne]=x",
		"/healthz",
	} {
		fmt.Fprintf(w, "  curl -g '%s%s'\n", base, path)
	}
	if ops != "" {
		for _, path := range []string{"/debug/pool", "/debug/vars", "/metrics"} {
			fmt.Fprintf(w, "  curl -g '%s%s'\n", ops, path)
		}
	}
	fmt.Fprintln(w, "\nStop with Ctrl-C.")
}

// traceWriter is where -trace prints spans: stderr, or nowhere.
func traceWriter(on bool, stderr io.Writer) io.Writer {
	if !on {
		return nil
	}
	return stderr
}
