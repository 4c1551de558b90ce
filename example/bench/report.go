package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// report prints the results as Markdown, ready for docs/performance.md.
type report struct {
	cfg     config
	cases   []caseResult
	exports []exportResult
	bulk    *bulkResult
	elapsed time.Duration
}

// exportHeapTarget is the peak heap an export through mongohttp must stay
// under, whatever its size.
const exportHeapTarget = 16 << 20

func (rep report) write(w io.Writer) {
	cfg := rep.cfg
	fmt.Fprintln(w, "## mongohttp benchmark")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "- Command: `cd example && %s`\n", commandLine())
	fmt.Fprintf(w, "- Machine: %s, %d cores (GOMAXPROCS %d), %s/%s, %s, GOGC default\n",
		cpuModel(), runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, runtime.Version())
	if cfg.uri != "" {
		fmt.Fprintln(w, "- Database: the server of MONGODB_URI")
	} else {
		fmt.Fprintln(w, "- Database: the example's embedded FerretDB 1.24 (SQLite), in its own process (`go run . -db-only`)")
	}
	fmt.Fprintf(w, "- Data: %s users shaped like the example's; a page of limit L is read from a copy of the first L+1, FindOne from a copy of the first %s, an export of N from the first N (FerretDB sorts in memory and has no usable _id index: this way it reads about what MongoDB reads through its _id index); sorted by _id, password_hash hidden\n",
		fmtCount(float64(cfg.docs)), fmtCount(float64(min(findOneDocs, cfg.docs))))
	fmt.Fprintf(w, "- Load: %d keep-alive connections on loopback; %d rounds of %s per handler, in which the handlers take turns %d times (%s each); %s warm-up; whole run %s\n",
		cfg.conns, cfg.rounds, cfg.duration, slicesPerRound(cfg.duration), cfg.duration/time.Duration(slicesPerRound(cfg.duration)), cfg.warmup, rep.elapsed.Round(time.Second))
	if rep.writes() {
		fmt.Fprintf(w, "- Writes: Insert POSTs one user (every field but `_id` and `password_hash`, as JSON; `Policy.Write` allows those fields) into a collection of its own per handler, emptied before the case; Patch sends `{\"age\": n}` as a merge patch without If-Match to %s users in turn, a collection of them per handler\n",
			fmtCount(float64(min(patchDocs, cfg.docs))))
		if cfg.uri == "" {
			fmt.Fprintln(w, "- On FerretDB mongohttp's Patch also takes a write claim per write (an insert into `<collection>_claims`), because FerretDB applies an update by reading the document and writing it back whole: its CPU/req includes that round trip, which it does not take on MongoDB. The first two hand-written PATCH handlers take no claim, so on FerretDB two concurrent patches of one document can lose one of them; the third (with a claim) takes one as mongohttp does, and is the comparison of equal guarantees")
		}
	}
	fmt.Fprintln(w, "- CPU, allocations and heap are the handler process's own (getrusage, runtime/metrics); ratios are medians of per-round ratios to the hand-written handler")
	fmt.Fprintf(w, "- `+ otelmongohttp`: the raw handler on a client with the adapter as its Observer; %.0f%% of requests traced (a server span and a span per command, ended in batches every %s or 256 spans, batched again by the SDK to an exporter that drops them), every request's metrics recorded into a Prometheus registry\n", cfg.otelSample*100, otelBatchEnds)
	fmt.Fprintln(w, "- `+ otelhttp, command spans`: the raw handler instrumented the usual way instead, for comparison: wrapped in `otelhttp.NewHandler` (a server span, the HTTP server metrics), on a client whose command monitor starts and ends a span per command and records its duration (what the contrib instrumentation of the driver does); the same tracer provider setup and sampling, spans ended as requests end")

	if len(rep.cases) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| Case | Handler | req/s | p50 | p99 | CPU/req | allocs/req | alloc/req | CPU × | allocs × | req/s × |")
		fmt.Fprintln(w, "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
		for _, c := range rep.cases {
			for i, v := range c.vars() {
				name := ""
				if i == 0 {
					name = c.name
				}
				rs := c.rounds[v]
				med := func(f func(roundResult) float64) float64 { return medianOf(rs, f) }
				ratio := func(f func(roundResult) float64) string {
					if v == variantHand {
						return "1"
					}
					return fmt.Sprintf("%.2f", c.ratio(v, f))
				}
				fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
					name, variantLabel(c.op, v),
					fmtRate(med(rps)),
					fmtDur(time.Duration(med(func(r roundResult) float64 { return float64(r.P50) }))),
					fmtDur(time.Duration(med(func(r roundResult) float64 { return float64(r.P99) }))),
					fmtDur(time.Duration(med(cpu))),
					fmtCount(med(allocs)),
					fmtKiB(med(func(r roundResult) float64 { return r.Bytes })),
					ratio(cpu), ratio(allocs), ratio(rps))
			}
		}
	}

	// Answers a case tolerated (see benchCase.tolerate), which its figures
	// do not count as requests.
	var notes []string
	for _, c := range rep.cases {
		for _, v := range c.vars() {
			errs, ok, first := 0, 0, ""
			for _, r := range c.rounds[v] {
				errs, ok = errs+r.Errors, ok+r.Requests
				if first == "" {
					first = strings.TrimSpace(r.FirstErr)
				}
			}
			if errs > 0 {
				notes = append(notes, fmt.Sprintf("- %s, %s: %s of %s requests answered %d; the figures per request count the others only. First: `%s`",
					c.name, variantLabel(c.op, v), fmtCount(float64(errs)), fmtCount(float64(errs+ok)), c.tolerate, first))
			}
		}
	}
	if len(notes) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, strings.Join(notes, "\n"))
	}

	if len(rep.exports) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintf(w, "Export: NDJSON (`Accept: application/x-ndjson`, `?limit=N`, then every next link), medians of %d rounds; the heap is sampled every 10 ms during the requests, after a GC.\n", cfg.exportRounds)
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| Documents | Handler | pages | total time | first byte | peak heap | handler CPU | allocs | allocated |")
		fmt.Fprintln(w, "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
		for _, e := range rep.exports {
			for i, v := range exportVariants {
				name := ""
				if i == 0 {
					name = fmtCount(float64(e.n))
				}
				rs := e.rounds[v]
				med := func(f func(exportRound) float64) float64 { return medianOf(rs, f) }
				label := "mongohttp `Find[bson.Raw]`"
				if v == variantHand {
					label = "hand-written (`cursor.All`)"
				}
				fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %.1f MiB | %s | %s | %.1f MiB |\n",
					name, label, fmtCount(med(func(r exportRound) float64 { return float64(r.Pages) })),
					fmtDur(time.Duration(med(func(r exportRound) float64 { return float64(r.Total) }))),
					fmtDur(time.Duration(med(func(r exportRound) float64 { return float64(r.FirstByte) }))),
					mib(uint64(med(exportPeak))),
					fmtDur(time.Duration(med(func(r exportRound) float64 { return float64(r.CPU) }))),
					fmtCount(med(func(r exportRound) float64 { return r.Allocs })),
					mib(uint64(med(func(r exportRound) float64 { return r.Bytes }))))
			}
		}
	}

	if rep.bulk != nil {
		bk := rep.bulk
		fmt.Fprintln(w)
		fmt.Fprintf(w, "Bulk insert: %s users in one `application/x-ndjson` POST, into an empty collection, medians of %d rounds; the heap is sampled every 10 ms during the request, after a GC.\n", fmtCount(float64(bk.n)), cfg.bulkRounds)
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| Documents | Handler | total time | docs/s | peak heap | handler CPU | CPU/doc | allocs/doc | allocated |")
		fmt.Fprintln(w, "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
		for i, v := range bulkVariants {
			name := ""
			if i == 0 {
				name = fmtCount(float64(bk.n))
			}
			med := func(f func(bulkRound) float64) float64 { return medianOf(bk.rounds[v], f) }
			label := "mongohttp `Insert[bson.Raw]`"
			if v == variantHand {
				label = "hand-written (`bufio.Scanner`, `InsertMany`)"
			}
			total := med(func(r bulkRound) float64 { return float64(r.Total) })
			cpuTotal := med(func(r bulkRound) float64 { return float64(r.CPU) })
			fmt.Fprintf(w, "| %s | %s | %s | %s | %.1f MiB | %s | %s | %s | %.1f MiB |\n",
				name, label, fmtDur(time.Duration(total)), fmtCount(float64(bk.n)/time.Duration(total).Seconds()),
				mib(uint64(med(bulkPeak))), fmtDur(time.Duration(cpuTotal)), fmtDur(time.Duration(cpuTotal/float64(bk.n))),
				fmtCount(med(func(r bulkRound) float64 { return r.Allocs })/float64(bk.n)),
				mib(uint64(med(func(r bulkRound) float64 { return r.Bytes }))))
		}
	}

	fmt.Fprintln(w)
	fmt.Fprintln(w, "| Target | Measured | |")
	fmt.Fprintln(w, "| --- | --- | --- |")
	for _, t := range rep.targets() {
		verdict := "met"
		if !t.met {
			verdict = "**missed**"
		}
		fmt.Fprintf(w, "| %s | %s | %s |\n", t.name, t.measured, verdict)
	}
}

type target struct {
	name, measured string
	met            bool
}

// targets checks the goals the benchmark exists for.
func (rep report) targets() []target {
	var out []target
	cpuTarget := func(c caseResult, limit float64) {
		r := c.ratio(variantRaw, cpu)
		measured := fmt.Sprintf("%.2f×", r)
		// Further hand-written variants: the ratio to each, for the record.
		for _, v := range c.vars() {
			if v != variantRaw && v != variantStruct && v != variantHand && v != variantHandClaimed && v != variantOtel && v != variantOtelHTTP {
				measured += fmt.Sprintf(" (%.2f× %s)", c.ratioTo(variantRaw, v, cpu), variantLabel(c.op, v))
			}
		}
		out = append(out, target{
			name:     fmt.Sprintf("%s: CPU/req of `%s[bson.Raw]` ≤ %.1f× %s", c.name, c.op, limit, variantLabel(c.op, variantHand)),
			measured: measured, met: r <= limit,
		})
	}
	for _, c := range rep.cases {
		switch {
		case c.op == "Find" && c.limit == 100:
			cpuTarget(c, 0.5)
		case c.op == "Find" && c.limit == 10:
			cpuTarget(c, 0.8)
		case c.op == "FindOne":
			cpuTarget(c, 0.9)
		case c.write():
			cpuTarget(c, 1)
			if slices.Contains(c.vars(), variantHandClaimed) {
				// Against the hand-written handler that gives the same
				// guarantee on FerretDB.
				r := c.ratioTo(variantRaw, variantHandClaimed, cpu)
				out = append(out, target{
					name: fmt.Sprintf("%s, same guarantee on FerretDB: CPU/req of `%s[bson.Raw]` ≤ 1.0× %s", c.name, c.op,
						variantLabel(c.op, variantHandClaimed)),
					measured: fmt.Sprintf("%.2f×", r), met: r <= 1,
				})
			}
		}
	}
	for _, metric := range []struct {
		name string
		f    func(roundResult) float64
		ok   func(float64) bool
		op   string
	}{
		{"allocs/req", allocs, func(r float64) bool { return r < 1 }, "<"},
		{"req/s", rps, func(r float64) bool { return r >= 1 }, "≥"},
	} {
		// The reads' targets: writes have the CPU target alone.
		var parts []string
		met := true
		for _, c := range rep.cases {
			if c.write() {
				continue
			}
			for _, v := range []string{variantRaw, variantStruct} {
				r := c.ratio(v, metric.f)
				met = met && metric.ok(r)
				parts = append(parts, fmt.Sprintf("%s %s %.2f×", shortCase(c), shortVariant(v), r))
			}
		}
		if len(parts) > 0 {
			out = append(out, target{
				name:     fmt.Sprintf("%s of every mongohttp read handler %s the hand-written one's, in every case", metric.name, metric.op),
				measured: strings.Join(parts, "; "), met: met,
			})
		}
	}
	for _, c := range rep.cases {
		if !slices.Contains(c.vars(), variantOtel) {
			continue
		}
		r := c.ratioTo(variantOtel, variantRaw, cpu)
		measured := fmt.Sprintf("%.2f×", r)
		if slices.Contains(c.vars(), variantOtelHTTP) {
			// The same handler instrumented the usual way, for the record.
			measured += fmt.Sprintf(" (otelhttp and a span per command: %.2f×)", c.ratioTo(variantOtelHTTP, variantRaw, cpu))
		}
		out = append(out, target{
			name:     fmt.Sprintf("%s: CPU/req with otelmongohttp ≤ 1.10× without", c.name),
			measured: measured, met: r <= 1.10,
		})
	}
	for _, e := range rep.exports {
		peak := medianOf(e.rounds[variantRaw], exportPeak)
		hand := medianOf(e.rounds[variantHand], exportPeak)
		out = append(out, target{
			name:     fmt.Sprintf("Export of %s documents: peak heap through mongohttp < 16 MiB", fmtCount(float64(e.n))),
			measured: fmt.Sprintf("%.1f MiB (hand-written: %.1f MiB)", mib(uint64(peak)), mib(uint64(hand))),
			met:      peak < exportHeapTarget,
		})
	}
	return out
}

// writes reports whether a write case ran.
func (rep report) writes() bool {
	for _, c := range rep.cases {
		if c.write() {
			return true
		}
	}
	return false
}

func rps(r roundResult) float64    { return r.RPS }
func cpu(r roundResult) float64    { return float64(r.CPU) }
func allocs(r roundResult) float64 { return r.Allocs }

func exportPeak(r exportRound) float64 { return float64(r.Peak) }
func bulkPeak(r bulkRound) float64     { return float64(r.Peak) }

// ratio is the median over rounds of v's figure divided by the
// hand-written handler's in the same round.
func (c caseResult) ratio(v string, f func(roundResult) float64) float64 {
	return c.ratioTo(v, variantHand, f)
}

// ratioTo is the median over rounds of v's figure divided by ref's in the
// same round.
func (c caseResult) ratioTo(v, ref string, f func(roundResult) float64) float64 {
	base := c.rounds[ref]
	var rs []float64
	for i, r := range c.rounds[v] {
		if i < len(base) && f(base[i]) > 0 {
			rs = append(rs, f(r)/f(base[i]))
		}
	}
	return median(rs)
}

func medianOf[R any](rs []R, f func(R) float64) float64 {
	xs := make([]float64, len(rs))
	for i, r := range rs {
		xs[i] = f(r)
	}
	return median(xs)
}

// variantLabel names variant v of the case whose mongohttp handler is op.
func variantLabel(op, v string) string {
	switch v {
	case variantRaw:
		return "mongohttp `" + op + "[bson.Raw]`"
	case variantOtel:
		return "mongohttp `" + op + "[bson.Raw]` + otelmongohttp"
	case variantOtelHTTP:
		return "mongohttp `" + op + "[bson.Raw]` + otelhttp, command spans"
	case variantStruct:
		return "mongohttp `" + op + "[User]`"
	case variantHandFAU:
		return "hand-written (`FindOneAndUpdate`)"
	case variantHandClaimed:
		return "hand-written with a claim (`FindOne`, claim, `FindOneAndUpdate`)"
	}
	switch op {
	case "Insert":
		return "hand-written (`InsertOne`)"
	case "Patch":
		return "hand-written (`UpdateOne` + `FindOne`)"
	}
	return "hand-written"
}

func shortVariant(v string) string {
	if v == variantRaw {
		return "raw"
	}
	return "struct"
}

func shortCase(c caseResult) string {
	if c.op != "Find" {
		return c.op
	}
	return fmt.Sprintf("limit %d", c.limit)
}

// commandLine is the command as typed, for the report.
func commandLine() string {
	parts := []string{"go run ./bench"}
	for _, a := range os.Args[1:] {
		if strings.ContainsAny(a, " '\"") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}

// cpuModel is the processor's name from /proc/cpuinfo, or "CPU" where
// there is none.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "CPU"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "CPU"
}

func fmtDur(d time.Duration) string {
	switch {
	case d <= 0:
		return "0"
	case d < 10*time.Microsecond:
		return fmt.Sprintf("%.1f µs", float64(d)/1e3)
	case d < time.Millisecond:
		return fmt.Sprintf("%.0f µs", float64(d)/1e3)
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/1e6)
	case d < time.Second:
		return fmt.Sprintf("%.1f ms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
}

func fmtRate(r float64) string {
	if r >= 100 {
		return fmt.Sprintf("%.0f", r)
	}
	return fmt.Sprintf("%.1f", r)
}

// fmtCount writes a count rounded to an integer, with thousands separators.
func fmtCount(x float64) string {
	s := fmt.Sprintf("%.0f", x)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func fmtKiB(x float64) string {
	if x >= 10<<20 {
		return fmt.Sprintf("%.1f MiB", x/(1<<20))
	}
	return fmt.Sprintf("%.1f KiB", x/(1<<10))
}

func mib(x uint64) float64 { return float64(x) / (1 << 20) }
