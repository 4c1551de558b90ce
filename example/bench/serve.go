package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync"
	"time"

	"github.com/mongohttp/mongohttp"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// The serve role: the orchestrator starts this same program with roleEnv
// set to roleServe and the serveConfig as JSON in serveEnv. It prints
// "LISTEN=host:port" and serves until its standard input closes (the
// orchestrator ended or died) or a signal comes.
const (
	roleEnv   = "MONGOHTTP_BENCH_ROLE"
	roleServe = "serve"
	serveEnv  = "MONGOHTTP_BENCH_SERVE"
)

type serveConfig struct {
	URI         string   `json:"uri"`
	Database    string   `json:"database"`
	MaxLimit    int      `json:"max_limit"`
	FindOneColl string   `json:"findone_coll"`
	PageColls   []string `json:"page_colls"`
	ExportColls []string `json:"export_colls"`
	ExportLimit int      `json:"export_limit"`
	OtelSample  float64  `json:"otel_sample"` // the share of requests variantOtel traces
}

// exportLookahead is the export handler's Lookahead: a page holds at most
// this much, so memory stays flat, and an export of N documents is a walk
// of its next links. 4 MiB pages keep the walk to a few requests, which
// matters on FerretDB, where every page sorts the whole collection again.
const exportLookahead = 4 << 20

// The handlers under test, by variant; each serves the same paths below
// its prefix: /page/{coll} (pages), /users/{id} (one document),
// /export/{coll} (NDJSON), and the writes of writes.go.
const (
	variantRaw    = "mongohttp-raw"
	variantStruct = "mongohttp-struct"
	variantHand   = "hand"
)

// hiddenProjection drops the field no variant returns: the hand-written handlers
// exclude it with the same projection mongohttp sends.
var hiddenProjection = bson.D{{Key: "password_hash", Value: 0}}

func serveMain(stdin io.Reader, stdout, stderr io.Writer) error {
	var sc serveConfig
	if err := json.Unmarshal([]byte(os.Getenv(serveEnv)), &sc); err != nil {
		return fmt.Errorf("%s: %w", serveEnv, err)
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		_, _ = io.Copy(io.Discard, stdin)
		cancel()
	}()

	handler, closeAll, err := newServeHandler(ctx, sc)
	if err != nil {
		return err
	}
	defer closeAll()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	fmt.Fprintf(stdout, "LISTEN=%s\n", l.Addr())
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	shutCtx, stop := context.WithTimeout(context.Background(), 5*time.Second)
	defer stop()
	return srv.Shutdown(shutCtx)
}

// newServeHandler connects two clients, one for mongohttp and one for the
// hand-written handlers (as each would be deployed: mongohttp.Connect with
// its pool statistics, mongo.Connect with the driver's defaults), and
// routes every variant.
func newServeHandler(ctx context.Context, sc serveConfig) (http.Handler, func(), error) {
	mh, err := mongohttp.Connect(ctx, sc.URI)
	if err != nil {
		return nil, nil, err
	}
	mc, err := mongo.Connect(options.Client().ApplyURI(sc.URI))
	if err != nil {
		_ = mh.Close(context.Background())
		return nil, nil, err
	}
	closeAll := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = mh.Close(ctx)
		_ = mc.Disconnect(ctx)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := mh.Ping(pingCtx); err != nil {
		closeAll()
		return nil, nil, err
	}

	mdb, hdb := mh.Database(sc.Database), mc.Database(sc.Database)
	// The database, not the handlers, takes the time: a minute instead of
	// the default 10 s keeps a loaded, shared machine from failing a round.
	// For the same reason requests wait for one of the handler's places
	// (8 by default, for 16 connections) as long: on such a machine a page
	// of 1,000 or a patch can take longer than the default second, and the
	// benchmark measures what requests cost, not how they are shed.
	const maxTime = time.Minute
	admission := mongohttp.Admission{MaxWait: maxTime}
	policy := mongohttp.Policy{Hidden: []string{"password_hash"}, MaxLimit: sc.MaxLimit}
	exportPolicy := mongohttp.Policy{Hidden: []string{"password_hash"}, MaxLimit: sc.ExportLimit}

	mux := http.NewServeMux()
	for _, name := range sc.PageColls {
		mux.Handle("GET /"+variantStruct+"/page/"+name, mongohttp.Must(mongohttp.New(mongohttp.Collection[User]{Client: mh, Coll: mdb.Collection(name), Policy: policy, MaxTime: maxTime, Admission: admission})).Find())
		mux.Handle("GET /"+variantHand+"/page/"+name, handFind(hdb.Collection(name), sc.MaxLimit))
	}
	rawReads(mh, sc, policy, maxTime, admission, func(pattern string, h http.Handler) { mux.Handle("GET /"+variantRaw+pattern, h) })
	mux.Handle("GET /"+variantStruct+"/users/{id}", mongohttp.Must(mongohttp.New(mongohttp.Collection[User]{Client: mh, Coll: mdb.Collection(sc.FindOneColl), Policy: policy, MaxTime: maxTime, Admission: admission})).FindOne())
	mux.Handle("GET /"+variantHand+"/users/{id}", handFindOne(hdb.Collection(sc.FindOneColl)))
	for _, routes := range []func(context.Context, *http.ServeMux, serveConfig, mongohttp.Policy, time.Duration, mongohttp.Admission) (func(context.Context) error, error){
		otelRoutes, otelHTTPRoutes,
	} {
		closeOtel, err := routes(ctx, mux, sc, policy, maxTime, admission)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		closeBefore := closeAll
		closeAll = func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = closeOtel(ctx)
			closeBefore()
		}
	}

	st := &serveStats{}
	for _, name := range sc.ExportColls {
		mux.Handle("GET /"+variantRaw+"/export/"+name, st.sampled(mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{Client: mh, Coll: mdb.Collection(name), Policy: exportPolicy, Lookahead: exportLookahead, MaxTime: maxTime, Admission: admission})).Find()))
		mux.Handle("GET /"+variantHand+"/export/"+name, st.sampled(handExport(hdb.Collection(name), sc.ExportLimit)))
	}
	routeWrites(mux, mh, mdb, hdb, st, maxTime, admission)

	mux.HandleFunc("GET /_stats", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(st.read())
	})
	mux.HandleFunc("POST /_gc", func(w http.ResponseWriter, r *http.Request) {
		runtime.GC()
		st.resetExport()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	return mux, closeAll, nil
}

// --- The hand-written handlers: what the driver's documentation leads to.

// handFind is the Go port of the Flask+PyMongo quick start's list route:
// Find, cursor.All into []bson.M, json.NewEncoder(w).Encode. It sorts and
// projects as mongohttp does, so both ask the database for the same work.
func handFind(coll *mongo.Collection, maxLimit int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		limit := int64(20)
		if s := r.URL.Query().Get("limit"); s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n < 1 || n > int64(maxLimit) {
				http.Error(w, "invalid limit", http.StatusBadRequest)
				return
			}
			limit = n
		}
		users, err := findUsers(r.Context(), coll, limit)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(users)
	}
}

// findUsers is the query of both list routes: the first users by _id,
// without password_hash, all in memory.
func findUsers(ctx context.Context, coll *mongo.Collection, limit int64) ([]bson.M, error) {
	opts := options.Find().
		SetSort(bson.D{{Key: "_id", Value: 1}}).
		SetLimit(limit).
		SetProjection(hiddenProjection)
	cursor, err := coll.Find(ctx, bson.D{}, opts)
	if err != nil {
		return nil, err
	}
	var users []bson.M
	if err := cursor.All(ctx, &users); err != nil {
		return nil, err
	}
	return users, nil
}

// handFindOne is the quick start's route for one document.
func handFindOne(coll *mongo.Collection) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := bson.ObjectIDFromHex(r.PathValue("id"))
		if err != nil {
			http.Error(w, "invalid id", http.StatusBadRequest)
			return
		}
		var user bson.M
		err = coll.FindOne(r.Context(), bson.D{{Key: "_id", Value: id}},
			options.FindOne().SetProjection(hiddenProjection)).Decode(&user)
		if errors.Is(err, mongo.ErrNoDocuments) {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(user)
	}
}

// handExport is the same list route asked for NDJSON: cursor.All, then one
// Encode per document.
func handExport(coll *mongo.Collection, maxLimit int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		limit, err := strconv.ParseInt(r.URL.Query().Get("limit"), 10, 64)
		if err != nil || limit < 1 || limit > int64(maxLimit) {
			http.Error(w, "invalid limit", http.StatusBadRequest)
			return
		}
		users, err := findUsers(r.Context(), coll, limit)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", mongohttp.NDJSON)
		enc := json.NewEncoder(w)
		for _, u := range users {
			if err := enc.Encode(u); err != nil {
				return
			}
		}
	}
}

// --- What the serve role reports about itself.

// processStats are the serve process's counters, cumulative; the
// orchestrator takes differences around each round.
type processStats struct {
	CPU        time.Duration `json:"cpu_ns"`      // user + system (getrusage)
	SysCPU     time.Duration `json:"sys_cpu_ns"`  // system alone
	Allocs     uint64        `json:"allocs"`      // heap allocations, tiny ones included
	AllocBytes uint64        `json:"alloc_bytes"` // bytes allocated on the heap
	GCs        uint64        `json:"gcs"`
	HeapBytes  uint64        `json:"heap_bytes"` // heap objects now, live or not yet swept
	Export     exportStats   `json:"export"`     // the sampled requests since the last GC request: an export's pages, or a bulk insert
}

// exportStats is the heap of the serve process during the requests of one
// export (its pages), sampled every heapSampleEvery.
type exportStats struct {
	Start    uint64 `json:"start"` // heap objects when the first request began
	Peak     uint64 `json:"peak"`  // highest sample
	Samples  int    `json:"samples"`
	Requests int    `json:"requests"`
}

var metricNames = []string{
	"/gc/heap/allocs:objects",
	"/gc/heap/tiny/allocs:objects",
	"/gc/heap/allocs:bytes",
	"/gc/cycles/total:gc-cycles",
	"/memory/classes/heap/objects:bytes",
}

type serveStats struct {
	mu     sync.Mutex
	export exportStats
}

func (s *serveStats) read() processStats {
	samples := make([]metrics.Sample, len(metricNames))
	for i, name := range metricNames {
		samples[i].Name = name
	}
	metrics.Read(samples)
	u := func(i int) uint64 {
		if samples[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return samples[i].Value.Uint64()
	}
	total, sys := processCPU()
	s.mu.Lock()
	defer s.mu.Unlock()
	return processStats{
		CPU:        total,
		SysCPU:     sys,
		Allocs:     u(0) + u(1),
		AllocBytes: u(2),
		GCs:        u(3),
		HeapBytes:  u(4),
		Export:     s.export,
	}
}

// heapSampleEvery spaces the heap samples of exports. Sampling costs CPU
// for as long as a request lasts (about 25 ms per second at one sample per
// millisecond, measured here), which an export that waits seconds for the
// database would count as the handler's; every 10 ms it costs a tenth, and
// a page's buffer still fills over many samples.
const heapSampleEvery = 10 * time.Millisecond

func (s *serveStats) resetExport() {
	s.mu.Lock()
	s.export = exportStats{}
	s.mu.Unlock()
}

// sampled records the peak heap while h serves a request.
func (s *serveStats) sampled(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		heap := func() uint64 {
			metrics.Read(sample)
			return sample[0].Value.Uint64()
		}
		st := exportStats{Start: heap()}
		st.Peak = st.Start
		stop, done := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(done)
			t := time.NewTicker(heapSampleEvery)
			defer t.Stop()
			for {
				st.Peak = max(st.Peak, heap())
				st.Samples++
				select {
				case <-stop:
					st.Peak = max(st.Peak, heap())
					return
				case <-t.C:
				}
			}
		}()
		defer func() {
			close(stop)
			<-done
			s.mu.Lock()
			if s.export.Requests == 0 {
				s.export.Start = st.Start
			}
			s.export.Peak = max(s.export.Peak, st.Peak)
			s.export.Samples += st.Samples
			s.export.Requests++
			s.mu.Unlock()
		}()
		h.ServeHTTP(w, r)
	})
}

// rawReads makes variantRaw's read handlers on client, pages of each of
// pageColls and documents of findOneColl, and passes each to handle with
// its route below the variant's prefix.
func rawReads(client *mongohttp.Client, sc serveConfig, policy mongohttp.Policy, maxTime time.Duration, admission mongohttp.Admission, handle func(pattern string, h http.Handler)) {
	db := client.Database(sc.Database)
	decl := func(coll string) mongohttp.Collection[bson.Raw] {
		return mongohttp.Collection[bson.Raw]{Client: client, Coll: db.Collection(coll), Policy: policy, MaxTime: maxTime, Admission: admission}
	}
	for _, name := range sc.PageColls {
		handle("/page/"+name, mongohttp.Must(mongohttp.New(decl(name))).Find())
	}
	handle("/users/{id}", mongohttp.Must(mongohttp.New(decl(sc.FindOneColl))).FindOne())
}
