// Command bench compares mongohttp's handlers with the handlers a Go
// developer writes by hand from the driver's documentation, on the same
// server, data and machine, in one run:
//
//	cd example && go run ./bench
//
// The hand-written baseline is the Go port of the classic Flask+PyMongo
// quick start: Find, cursor.All into []bson.M and json.NewEncoder(w).Encode
// for lists; FindOne(...).Decode(&bson.M) and the same encoding for one
// document, its id read with bson.ObjectIDFromHex(r.PathValue("id")).
// For writes it decodes the body with encoding/json into a struct and
// calls InsertOne, UpdateOne with $set then FindOne (or FindOneAndUpdate),
// or InsertMany in batches for NDJSON; see writes.go.
//
// Three processes take part, so that the handler side's figures are its
// own:
//
//   - the database: the example binary in its database-only mode
//     (-db-only), an embedded FerretDB; or the server MONGODB_URI names;
//   - the handlers: this program again, in its serve role, which runs every
//     handler under test on a loopback HTTP server and reports its own CPU
//     time (getrusage), allocations (runtime/metrics) and, during exports
//     and bulk inserts, its peak heap;
//   - this process: it seeds the data, drives the load with concurrent
//     keep-alive HTTP clients, has the handlers take turns within each
//     round (in slices of about 500 ms, so that a burst of the machine's
//     other work falls on all of them) and prints the medians as Markdown
//     tables.
//
// Flags:
//
//	-quick          a short smoke run (small data, short rounds)
//	-data DIR       keep the database in DIR and reuse it (seeded once)
//	-rounds N       measured rounds per case (default 5)
//	-duration D     load per handler per round (default 3s)
//	-warmup D       unmeasured load per handler before a case (default 1s)
//	-conns N        concurrent keep-alive connections (default 16)
//	-docs N         documents in the users collection (default 100000)
//	-limits L,...   page sizes (default 10,100,1000)
//	-exports N,...  export sizes (default 10000,100000)
//	-export-rounds N  rounds per export size (default 3)
//	-bulk N         documents in one bulk (NDJSON) insert (default 100000)
//	-bulk-rounds N  rounds of the bulk insert (default 3)
//	-cases LIST     which cases to run: find,findone,export,insert,patch,bulk
//	                (default all)
//	-profile DIR    after each case, profile each handler for one more
//	                round and write CPU and allocation profiles to DIR
//	-otel-sample F  the share of requests the otelmongohttp variant traces
//	                (default 1: every one); its metrics count every request
//	MONGODB_URI     use this server instead of the example's FerretDB
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if os.Getenv(roleEnv) == roleServe {
		if err := serveMain(os.Stdin, os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, "bench serve:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		os.Exit(2)
	}
	if err := run(ctx, cfg, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// allCases are the cases, in the order they run.
var allCases = []string{"find", "findone", "export", "insert", "patch", "bulk"}

// config is the command line, parsed.
type config struct {
	quick        bool
	dataDir      string
	rounds       int
	duration     time.Duration
	warmup       time.Duration
	conns        int
	docs         int
	limits       []int
	exportSizes  []int
	exportRounds int
	bulk         int
	bulkRounds   int
	cases        map[string]bool
	profileDir   string
	otelSample   float64
	uri          string   // MONGODB_URI; "" starts the example's database
	buildFlags   []string // for go build of the example (tests add -race)
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&c.quick, "quick", false, "a short smoke run: small data, short rounds")
	fs.StringVar(&c.dataDir, "data", "", "keep the database in this directory and reuse it (default: a temporary one)")
	fs.IntVar(&c.rounds, "rounds", 5, "measured rounds per case")
	fs.DurationVar(&c.duration, "duration", 3*time.Second, "load per handler per round")
	fs.DurationVar(&c.warmup, "warmup", time.Second, "unmeasured load per handler before each case")
	fs.IntVar(&c.conns, "conns", 16, "concurrent keep-alive HTTP connections")
	fs.IntVar(&c.docs, "docs", 100000, "documents in the users collection")
	limits := fs.String("limits", "10,100,1000", "page sizes, comma-separated")
	exports := fs.String("exports", "10000,100000", "export sizes, comma-separated")
	fs.IntVar(&c.exportRounds, "export-rounds", 3, "rounds per export size")
	fs.IntVar(&c.bulk, "bulk", 100000, "documents in one bulk (NDJSON) insert")
	fs.IntVar(&c.bulkRounds, "bulk-rounds", 3, "rounds of the bulk insert")
	cases := fs.String("cases", strings.Join(allCases, ","), "cases to run, comma-separated: "+strings.Join(allCases, ", "))
	fs.StringVar(&c.profileDir, "profile", "", "write CPU and allocation profiles of each handler to this directory")
	fs.Float64Var(&c.otelSample, "otel-sample", 1, "the share of requests the otelmongohttp variant traces, 0 to 1")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "unexpected argument %q\n", fs.Arg(0))
		return c, errors.New("usage")
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if c.quick {
		// Only the flags not given explicitly take the smoke-run values.
		quick := map[string]string{
			"rounds": "2", "duration": "1s", "warmup": "300ms", "docs": "10000",
			"exports": "1000,10000", "export-rounds": "1", "bulk": "10000", "bulk-rounds": "1",
		}
		for name, v := range quick {
			if !set[name] {
				if err := fs.Set(name, v); err != nil {
					return c, err
				}
			}
		}
	}
	var err error
	if c.limits, err = parseInts(*limits); err != nil {
		fmt.Fprintln(stderr, "-limits:", err)
		return c, err
	}
	if c.exportSizes, err = parseInts(*exports); err != nil {
		fmt.Fprintln(stderr, "-exports:", err)
		return c, err
	}
	c.cases = map[string]bool{}
	for name := range strings.SplitSeq(*cases, ",") {
		switch name = strings.TrimSpace(name); {
		case name == "":
		case slices.Contains(allCases, name):
			c.cases[name] = true
		default:
			fmt.Fprintf(stderr, "-cases: unknown case %q\n", name)
			return c, errors.New("usage")
		}
	}
	for _, l := range c.limits {
		if l >= c.docs {
			fmt.Fprintf(stderr, "-limits: %d is not less than -docs %d\n", l, c.docs)
			return c, errors.New("usage")
		}
	}
	for _, n := range c.exportSizes {
		if n > c.docs {
			fmt.Fprintf(stderr, "-exports: %d is more than -docs %d\n", n, c.docs)
			return c, errors.New("usage")
		}
	}
	if c.otelSample < 0 || c.otelSample > 1 {
		fmt.Fprintln(stderr, "-otel-sample must be between 0 and 1")
		return c, errors.New("usage")
	}
	if c.rounds < 1 || c.exportRounds < 1 || c.bulk < 1 || c.bulkRounds < 1 || c.conns < 1 || c.duration <= 0 {
		fmt.Fprintln(stderr, "-rounds, -export-rounds, -bulk, -bulk-rounds, -conns and -duration must be positive")
		return c, errors.New("usage")
	}
	c.uri = os.Getenv("MONGODB_URI")
	if c.uri != "" && c.dataDir != "" {
		fmt.Fprintln(stderr, "-data is for the example's database: unset MONGODB_URI or drop -data")
		return c, errors.New("usage")
	}
	return c, nil
}

func parseInts(s string) ([]int, error) {
	var out []int
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		n, err := strconv.Atoi(part)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive integer", part)
		}
		out = append(out, n)
	}
	return out, nil
}
