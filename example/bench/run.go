package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// run is the orchestrator: database, seed, serve process, cases, report.
func run(ctx context.Context, cfg config, stdout, log io.Writer) error {
	started := time.Now()
	// The children's standard error is copied to log by goroutines of
	// os/exec unless log is an *os.File: serialise the writes.
	log = &lockedWriter{w: log}
	db, err := startDatabase(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer db.stop()

	mc, err := mongo.Connect(options.Client().ApplyURI(db.uri))
	if err != nil {
		return err
	}
	defer func() { _ = mc.Disconnect(context.Background()) }()
	seedCtx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	err = seedAll(seedCtx, mc.Database(dbName), cfg, log)
	cancel()
	if err != nil {
		return err
	}

	srv, err := startServe(ctx, cfg, db.uri, log)
	if err != nil {
		return err
	}
	defer srv.stop()

	b := &bench{cfg: cfg, log: log, hc: newHTTPClient(cfg.conns), db: mc.Database(dbName)}
	b.sc = serveClient{hc: b.hc, base: "http://" + srv.addr}
	b.ids = sampleIDs(findOneDocs, min(findOneDocs, cfg.docs))
	for i := range 1000 {
		b.bodies = append(b.bodies, userJSON(i))
	}
	if err := b.checkSame(ctx); err != nil {
		return err
	}

	rep := report{cfg: cfg}
	if cfg.cases["find"] {
		for _, limit := range cfg.limits {
			c := benchCase{
				name: fmt.Sprintf("Find, limit %d", limit), key: fmt.Sprintf("find%d", limit), op: "Find", limit: limit,
				req: func(v string) func(uint64) request {
					return get(fmt.Sprintf("%s/%s/page/%s?limit=%d", b.sc.base, v, sizedColl(limit+1, cfg.docs), limit))
				},
			}
			res, err := b.runCase(ctx, c)
			if err != nil {
				return err
			}
			rep.cases = append(rep.cases, res)
		}
	}
	if cfg.cases["findone"] {
		c := benchCase{
			name: "FindOne by _id", key: "findone", op: "FindOne",
			req: func(v string) func(uint64) request {
				prefix := fmt.Sprintf("%s/%s/users/", b.sc.base, v)
				return func(i uint64) request { return request{url: prefix + b.ids[i%uint64(len(b.ids))]} }
			},
		}
		res, err := b.runCase(ctx, c)
		if err != nil {
			return err
		}
		rep.cases = append(rep.cases, res)
	}
	if cfg.cases["export"] {
		for _, n := range cfg.exportSizes {
			res, err := b.runExport(ctx, n)
			if err != nil {
				return err
			}
			rep.exports = append(rep.exports, res)
		}
	}
	for _, c := range b.writeCases() {
		if !cfg.cases[c.key] {
			continue
		}
		// Inserts start from empty collections, also in a reused -data,
		// and leave none behind.
		if c.key == writeInsert {
			if err := b.dropWrites(ctx, c.key, c.vars()); err != nil {
				return err
			}
		}
		res, err := b.runCase(ctx, c)
		if err != nil {
			return err
		}
		rep.cases = append(rep.cases, res)
		if c.key == writeInsert {
			if err := b.dropWrites(ctx, c.key, c.vars()); err != nil {
				return err
			}
		}
	}
	if cfg.cases["bulk"] {
		res, err := b.runBulk(ctx, cfg.bulk)
		if err != nil {
			return err
		}
		rep.bulk = &res
	}
	rep.elapsed = time.Since(started)
	rep.write(stdout)
	return nil
}

// lockedWriter serialises writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// serveProcess is the serve role, running as a child.
type serveProcess struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{}
	addr  string
}

// startServe starts this program again in its serve role.
func startServe(ctx context.Context, cfg config, uri string, log io.Writer) (*serveProcess, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	pageColls, exportColls := []string{}, []string{}
	for _, l := range cfg.limits {
		pageColls = append(pageColls, sizedColl(l+1, cfg.docs))
	}
	for _, n := range cfg.exportSizes {
		exportColls = append(exportColls, sizedColl(n, cfg.docs))
	}
	sc, err := json.Marshal(serveConfig{
		URI: uri, Database: dbName, MaxLimit: max(slicesMax(cfg.limits), 100), PageColls: pageColls, FindOneColl: findOneColl(cfg.docs),
		ExportColls: exportColls, ExportLimit: max(slicesMax(cfg.exportSizes), 100), OtelSample: cfg.otelSample,
	})
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), roleEnv+"="+roleServe, serveEnv+"="+string(sc))
	cmd.Stderr = log
	setParentDeath(cmd)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the serve process: %w", err)
	}
	p := &serveProcess{cmd: cmd, stdin: stdin, done: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "LISTEN="); ok {
				addr <- v
			}
		}
		_ = cmd.Wait()
	}()
	select {
	case p.addr = <-addr:
	case <-p.done:
		return nil, errors.New("the serve process exited before listening")
	case <-time.After(time.Minute):
		p.stop()
		return nil, errors.New("the serve process did not listen within a minute")
	case <-ctx.Done():
		p.stop()
		return nil, ctx.Err()
	}
	return p, nil
}

// stop closes the serve process's standard input, which ends it, and
// kills it if it has not ended within 10 s.
func (p *serveProcess) stop() {
	_ = p.stdin.Close()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func slicesMax(xs []int) int {
	m := 0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

// bench runs the cases against the serve process.
type bench struct {
	cfg    config
	log    io.Writer
	hc     *http.Client
	sc     serveClient
	db     *mongo.Database // the orchestrator's own connection, to drop what writes wrote
	ids    []string        // ids of existing users, for FindOne and Patch
	bodies [][]byte        // users as JSON, for inserts
}

var variants = []string{variantRaw, variantOtel, variantOtelHTTP, variantStruct, variantHand}

// benchCase is one load: the same request shape sent to each variant.
type benchCase struct {
	name     string
	key      string // for profile file names
	op       string // the mongohttp handler: Find, FindOne, Insert, Patch
	limit    int    // page size; 0 for the others
	variants []string
	req      func(variant string) func(i uint64) request
	tolerate int // a status counted apart rather than failing the case; 0 for none
}

// vars are the variants the case compares.
func (c benchCase) vars() []string {
	if c.variants == nil {
		return variants
	}
	return c.variants
}

// write reports whether the case writes.
func (c benchCase) write() bool { return c.op == "Insert" || c.op == "Patch" }

// roundResult is one variant's figures in one round, per request.
type roundResult struct {
	RPS      float64
	P50, P99 time.Duration
	CPU      time.Duration // serve process CPU per request
	SysCPU   time.Duration // the part of it spent in the kernel
	Allocs   float64       // serve process heap allocations per request
	Bytes    float64       // serve process bytes allocated per request
	Body     float64       // response body bytes per request
	Requests int
	Errors   int    // answers with the case's tolerated status
	FirstErr string // the first of them
}

type caseResult struct {
	benchCase
	rounds map[string][]roundResult // by variant, in round order
}

// rotate returns xs rotated left by k, so each round starts with another
// variant and none always runs first or last.
func rotate(xs []string, k int) []string {
	k %= len(xs)
	return append(append([]string{}, xs[k:]...), xs[:k]...)
}

func (b *bench) runCase(ctx context.Context, c benchCase) (caseResult, error) {
	res := caseResult{benchCase: c, rounds: map[string][]roundResult{}}
	if b.cfg.warmup > 0 {
		for _, v := range c.vars() {
			lr := runLoad(ctx, b.hc, b.cfg.conns, b.cfg.warmup, c.req(v), "")
			if n := lr.errs - lr.byStatus[c.tolerate]; n > 0 {
				return res, fmt.Errorf("%s, %s: %d errors while warming up; first: %v", c.name, v, n, lr.firstErr)
			}
		}
	}
	n := slicesPerRound(b.cfg.duration)
	for r := range b.cfg.rounds {
		// The handlers take turns in slices of the round, so that a burst
		// of the machine's other work lands on all of them rather than on
		// whichever had the round's slot then.
		load := map[string]*slice{}
		for i := range n {
			for _, v := range rotate(c.vars(), r+i) {
				sl, err := b.measure(ctx, c, v, b.cfg.duration/time.Duration(n))
				if err != nil {
					return res, err
				}
				if load[v] == nil {
					load[v] = sl
				} else {
					load[v].add(sl)
				}
			}
		}
		for _, v := range c.vars() {
			rr, err := load[v].result(c, v)
			if err != nil {
				return res, err
			}
			res.rounds[v] = append(res.rounds[v], rr)
			fmt.Fprintf(b.log, "%s, round %d/%d, %-21s %8.1f req/s  p50 %-9s CPU/req %-9s (sys %-9s) allocs/req %.0f\n",
				c.name, r+1, b.cfg.rounds, v, rr.RPS, fmtDur(rr.P50), fmtDur(rr.CPU), fmtDur(rr.SysCPU), rr.Allocs)
		}
	}
	if b.cfg.profileDir != "" {
		if err := b.profile(ctx, c); err != nil {
			return res, err
		}
	}
	return res, ctx.Err()
}

// sliceLen is how long each handler has the load at a time: a round
// alternates the handlers in slices of about this length.
const sliceLen = 500 * time.Millisecond

// slicesPerRound is how many turns each handler takes in a round of d.
func slicesPerRound(d time.Duration) int { return max(1, int(d/sliceLen)) }

// slice is one variant's load over one or more slices of a round, with
// the serve process's counters across them.
type slice struct {
	load  loadResult
	stats processStats // the counters' increase
}

// add counts o's load into s's.
func (s *slice) add(o *slice) {
	s.load.ok += o.load.ok
	s.load.errs += o.load.errs
	for st, n := range o.load.byStatus {
		s.load.byStatus[st] += n
	}
	if s.load.firstErr == nil {
		s.load.firstErr = o.load.firstErr
	}
	s.load.elapsed += o.load.elapsed
	s.load.lat = append(s.load.lat, o.load.lat...)
	s.load.bytes += o.load.bytes
	s.stats.CPU += o.stats.CPU
	s.stats.SysCPU += o.stats.SysCPU
	s.stats.Allocs += o.stats.Allocs
	s.stats.AllocBytes += o.stats.AllocBytes
}

// measure runs load against one variant for d, between two readings of
// the serve process's counters.
func (b *bench) measure(ctx context.Context, c benchCase, v string, d time.Duration) (*slice, error) {
	before, err := b.sc.stats(ctx)
	if err != nil {
		return nil, err
	}
	lr := runLoad(ctx, b.hc, b.cfg.conns, d, c.req(v), "")
	after, err := b.sc.stats(ctx)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if n := lr.errs - lr.byStatus[c.tolerate]; n > 0 {
		return nil, fmt.Errorf("%s, %s: %d errors; first: %v", c.name, v, n, lr.firstErr)
	}
	if lr.errs > 0 {
		fmt.Fprintf(b.log, "%s, %s: %d answers %d; first: %v\n", c.name, v, lr.errs, c.tolerate, lr.firstErr)
	}
	return &slice{load: lr, stats: processStats{
		CPU: after.CPU - before.CPU, SysCPU: after.SysCPU - before.SysCPU,
		Allocs: after.Allocs - before.Allocs, AllocBytes: after.AllocBytes - before.AllocBytes,
	}}, nil
}

// result is the round's figures of variant v, per request.
func (s *slice) result(c benchCase, v string) (roundResult, error) {
	lr := s.load
	if lr.ok == 0 {
		return roundResult{}, fmt.Errorf("%s, %s: no request finished", c.name, v)
	}
	slices.Sort(lr.lat)
	n := float64(lr.ok)
	return roundResult{
		RPS:      n / lr.elapsed.Seconds(),
		P50:      percentile(lr.lat, 0.50),
		P99:      percentile(lr.lat, 0.99),
		CPU:      time.Duration(float64(s.stats.CPU) / n),
		SysCPU:   time.Duration(float64(s.stats.SysCPU) / n),
		Allocs:   float64(s.stats.Allocs) / n,
		Bytes:    float64(s.stats.AllocBytes) / n,
		Body:     float64(lr.bytes) / n,
		Requests: lr.ok,
		Errors:   lr.errs,
		FirstErr: errString(lr.firstErr),
	}, nil
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// profile loads each variant for one more round while the serve process
// records a CPU profile and an allocation profile of it.
func (b *bench) profile(ctx context.Context, c benchCase) error {
	secs := max(1, int(math.Ceil(b.cfg.duration.Seconds())))
	for _, v := range c.vars() {
		err := b.profiled(ctx, c.key+"-"+v, secs, func() error {
			runLoad(ctx, b.hc, b.cfg.conns, time.Duration(secs)*time.Second, c.req(v), "")
			return nil
		})
		if err != nil {
			return fmt.Errorf("profiling %s, %s: %w", c.name, v, err)
		}
	}
	return nil
}

// profiled runs load while the serve process records a CPU profile and an
// allocation profile of secs seconds, written to the profile directory as
// name.cpu.pprof and name.allocs.pprof.
func (b *bench) profiled(ctx context.Context, name string, secs int, load func() error) error {
	if err := os.MkdirAll(b.cfg.profileDir, 0o755); err != nil {
		return err
	}
	errc := make(chan error, 2)
	for _, kind := range []string{"profile", "allocs"} {
		file := filepath.Join(b.cfg.profileDir, fmt.Sprintf("%s.%s.pprof", name, map[string]string{"profile": "cpu", "allocs": "allocs"}[kind]))
		go func() {
			f, err := os.Create(file)
			if err != nil {
				errc <- err
				return
			}
			defer f.Close()
			_, err = fetch(ctx, b.hc, fmt.Sprintf("%s/debug/pprof/%s?seconds=%d", b.sc.base, kind, secs), "", f)
			errc <- err
		}()
	}
	time.Sleep(50 * time.Millisecond) // let both profiles start
	err := load()
	for range 2 {
		err = errors.Join(err, <-errc)
	}
	if err == nil {
		fmt.Fprintf(b.log, "%s: profiles written to %s\n", name, b.cfg.profileDir)
	}
	return err
}

// exportRound is one NDJSON export, from the client's and the serve
// process's side.
type exportRound struct {
	Total     time.Duration // first request to the last byte of the last page
	FirstByte time.Duration // first request to its first byte
	Pages     int           // requests the export took
	Peak      uint64        // serve process heap objects, highest sample
	Start     uint64        // the same when the request began
	CPU       time.Duration
	Allocs    float64
	Bytes     float64
}

type exportResult struct {
	n      int
	rounds map[string][]exportRound
}

var exportVariants = []string{variantRaw, variantHand}

func (b *bench) runExport(ctx context.Context, n int) (exportResult, error) {
	res := exportResult{n: n, rounds: map[string][]exportRound{}}
	coll := sizedColl(n, b.cfg.docs)
	for r := range b.cfg.exportRounds {
		for _, v := range rotate(exportVariants, r) {
			// Collect first, so the heap holds what the last round left
			// behind no more than it must (GOGC stays at its default).
			if err := b.sc.gc(ctx); err != nil {
				return res, err
			}
			before, err := b.sc.stats(ctx)
			if err != nil {
				return res, err
			}
			// An export is a walk: the first page, then each next link
			// (mongohttp's pages end at its look-ahead; the hand-written
			// handler answers everything at once).
			url := fmt.Sprintf("%s/%s/export/%s?limit=%d", b.sc.base, v, coll, n)
			cw := &lineCounter{start: time.Now()}
			for url != "" {
				var err error
				if url, err = fetchPage(ctx, b.hc, url, "application/x-ndjson", cw); err != nil {
					return res, err
				}
			}
			total := time.Since(cw.start)
			after, err := b.sc.stats(ctx)
			if err != nil {
				return res, err
			}
			if cw.lines != n {
				return res, fmt.Errorf("export of %d documents, %s: %d lines", n, v, cw.lines)
			}
			er := exportRound{
				Total: total, FirstByte: cw.first, Pages: after.Export.Requests,
				Peak: after.Export.Peak, Start: after.Export.Start,
				CPU:    after.CPU - before.CPU,
				Allocs: float64(after.Allocs - before.Allocs),
				Bytes:  float64(after.AllocBytes - before.AllocBytes),
			}
			res.rounds[v] = append(res.rounds[v], er)
			fmt.Fprintf(b.log, "export %d, round %d/%d, %-16s %-9s first byte %-9s %d pages, peak heap %.1f MiB, CPU %s\n",
				n, r+1, b.cfg.exportRounds, v, fmtDur(er.Total), fmtDur(er.FirstByte), er.Pages, mib(er.Peak), fmtDur(er.CPU))
		}
	}
	return res, nil
}

// lineCounter counts NDJSON lines and notes when the first byte came.
type lineCounter struct {
	start time.Time
	first time.Duration
	lines int
}

func (c *lineCounter) Write(p []byte) (int, error) {
	if c.first == 0 && len(p) > 0 {
		c.first = time.Since(c.start)
	}
	c.lines += bytes.Count(p, []byte{'\n'})
	return len(p), nil
}

// checkSame fetches one answer of each kind from every variant and checks
// that they hold the same documents (as JSON values), so that the variants
// are compared on the same work. The writes are checked the same way: the
// same body inserted, or the same patch applied, by every variant.
func (b *bench) checkSame(ctx context.Context) error {
	var probes []probe
	read := func(path string) probe {
		return probe{what: path, variants: variants, req: func(v string) request { return request{url: b.sc.base + "/" + v + path} }}
	}
	if b.cfg.cases["find"] {
		l := slicesMax(b.cfg.limits)
		probes = append(probes, read(fmt.Sprintf("/page/%s?limit=%d", sizedColl(l+1, b.cfg.docs), l)))
	}
	if b.cfg.cases["findone"] {
		probes = append(probes, read("/users/"+b.ids[0]))
	}
	for _, c := range b.writeCases() {
		if b.cfg.cases[c.key] {
			// Each variant writes its own documents: ids and versions differ.
			probes = append(probes, probe{what: c.name, variants: c.vars(), ignore: []string{"_id", "_etag"},
				req: func(v string) request { return c.req(v)(0) }})
		}
	}
	for _, p := range probes {
		var want any
		// The hand-written handler first: the others are compared with it.
		order := append([]string{variantHand}, slices.DeleteFunc(slices.Clone(p.variants), func(v string) bool { return v == variantHand })...)
		for _, v := range order {
			var buf bytes.Buffer
			rq := p.req(v)
			if _, err := send(ctx, b.hc, rq, "", &buf); err != nil {
				return err
			}
			dec := json.NewDecoder(&buf)
			dec.UseNumber()
			var got any
			if err := dec.Decode(&got); err != nil {
				return fmt.Errorf("%s, %s: %w", p.what, v, err)
			}
			if m, ok := got.(map[string]any); ok {
				for _, k := range p.ignore {
					if _, ok := m[k]; !ok && k == "_id" {
						return fmt.Errorf("%s, %s: the answer has no _id: %s", p.what, v, buf.String())
					}
					delete(m, k)
				}
			}
			if v == variantHand {
				want = got
				continue
			}
			if d := firstDiff(want, got, ""); d != "" {
				return fmt.Errorf("%s, %s answers other documents than the hand-written handler: %s", p.what, v, d)
			}
		}
		fmt.Fprintf(b.log, "check: %s: the same documents from every handler\n", p.what)
	}
	return nil
}

// probe is one request sent to every variant by checkSame.
type probe struct {
	what     string
	variants []string
	req      func(variant string) request
	ignore   []string // top-level members that differ by nature
}

// firstDiff describes the first difference between two decoded JSON
// values, or returns "".
func firstDiff(a, b any, path string) string {
	switch a := a.(type) {
	case map[string]any:
		bm, ok := b.(map[string]any)
		if !ok {
			return fmt.Sprintf("%s: object vs %T", path, b)
		}
		keys := make([]string, 0, len(a)+len(bm))
		for k := range a {
			keys = append(keys, k)
		}
		for k := range bm {
			if _, ok := a[k]; !ok {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			av, aok := a[k]
			bv, bok := bm[k]
			if !aok || !bok {
				return fmt.Sprintf("%s.%s: present in only one", path, k)
			}
			if d := firstDiff(av, bv, path+"."+k); d != "" {
				return d
			}
		}
		return ""
	case []any:
		bs, ok := b.([]any)
		if !ok {
			return fmt.Sprintf("%s: array vs %T", path, b)
		}
		if len(a) != len(bs) {
			return fmt.Sprintf("%s: %d elements vs %d", path, len(a), len(bs))
		}
		for i := range a {
			if d := firstDiff(a[i], bs[i], path+"["+strconv.Itoa(i)+"]"); d != "" {
				return d
			}
		}
		return ""
	case json.Number:
		// The same number may be written 45 or 45.0.
		bn, ok := b.(json.Number)
		af, aerr := a.Float64()
		bf, berr := bn.Float64()
		if !ok || aerr != nil || berr != nil || af != bf {
			return fmt.Sprintf("%s: %v vs %v", path, a, b)
		}
		return ""
	case string:
		// The same instant may be written with or without trailing zeros.
		if bs, ok := b.(string); ok && a != bs {
			at, aerr := time.Parse(time.RFC3339Nano, a)
			bt, berr := time.Parse(time.RFC3339Nano, bs)
			if aerr != nil || berr != nil || !at.Equal(bt) {
				return fmt.Sprintf("%s: %q vs %q", path, a, bs)
			}
		}
		return ""
	default:
		if !reflect.DeepEqual(a, b) {
			return fmt.Sprintf("%s: %v vs %v", path, a, b)
		}
		return ""
	}
}
