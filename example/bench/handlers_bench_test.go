package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

// The in-process benchmarks call the handlers against the database of
// MONGODB_URI as seeded by a run of the program (go run ./bench -quick
// leaves it seeded when given MONGODB_URI; -cases patch seeds the patch
// collections). They are profiling aids: go test -bench Handlers
// -cpuprofile cpu.out shows where a handler's CPU goes without the HTTP
// load around it. Each reports the process's CPU per request (cpu-ns/op).

// BenchmarkHandlers calls each read handler one request at a time.
func BenchmarkHandlers(b *testing.B) {
	benchReads(b, false)
}

// BenchmarkHandlersParallel is BenchmarkHandlers with 16 requests in
// flight, as the program's load sends them: waits, wake-ups and
// contention, which one request at a time does not show, take their part
// of the CPU.
func BenchmarkHandlersParallel(b *testing.B) {
	benchReads(b, true, "find100")
}

// BenchmarkWriteHandlers calls Insert and Patch of every variant, one
// request at a time. The inserts go to the insert collections, which the
// program drops when its insert case starts.
func BenchmarkWriteHandlers(b *testing.B) {
	h := benchHandler(b, serveConfig{MaxLimit: 100})
	bodies := userBodies()
	for _, v := range insertVariants {
		b.Run("insert/"+v, func(b *testing.B) {
			load(b, false, func(i int64) error { return insert(h, v, bodies[i%int64(len(bodies))]) })
		})
	}
	ids := sampleIDs(100, patchDocs)
	for _, v := range patchVariants {
		b.Run("patch/"+v, func(b *testing.B) {
			load(b, false, func(i int64) error {
				req := httptest.NewRequest(http.MethodPatch, "/"+v+"/patch/"+ids[i%int64(len(ids))], strings.NewReader(fmt.Sprintf(`{"age":%d}`, 18+i%62)))
				req.Header.Set("Content-Type", "application/merge-patch+json")
				return call(h, req, http.StatusOK)
			})
		})
	}
}

// BenchmarkInsertParallel is BenchmarkWriteHandlers' insert case with 16
// requests in flight: mongohttp's handlers then queue for admission, the
// hand-written one does not.
func BenchmarkInsertParallel(b *testing.B) {
	h := benchHandler(b, serveConfig{MaxLimit: 100})
	bodies := userBodies()
	for _, v := range insertVariants {
		b.Run(v, func(b *testing.B) {
			load(b, true, func(i int64) error { return insert(h, v, bodies[i%int64(len(bodies))]) })
		})
	}
}

// benchReads runs the read cases of every variant but those skipped.
func benchReads(b *testing.B, parallel bool, skip ...string) {
	const docs = 10000
	h := benchHandler(b, serveConfig{
		MaxLimit: 1000, FindOneColl: findOneColl(docs),
		PageColls: []string{sizedColl(11, docs), sizedColl(101, docs)}, OtelSample: 1,
	})
	ids := sampleIDs(100, findOneDocs)
	for _, c := range []struct{ name, path string }{
		{"find10", "/page/" + sizedColl(11, docs) + "?limit=10"},
		{"find100", "/page/" + sizedColl(101, docs) + "?limit=100"},
		{"findone", "/users/"},
	} {
		if slices.Contains(skip, c.name) {
			continue
		}
		for _, v := range variants {
			b.Run(c.name+"/"+v, func(b *testing.B) {
				load(b, parallel, func(i int64) error {
					path := "/" + v + c.path
					if c.name == "findone" {
						path += ids[i%int64(len(ids))]
					}
					return call(h, httptest.NewRequest(http.MethodGet, path, nil), http.StatusOK)
				})
			})
		}
	}
}

// benchHandler serves every variant on the database of MONGODB_URI, or
// skips the benchmark without it.
func benchHandler(b *testing.B, sc serveConfig) http.Handler {
	b.Helper()
	sc.URI, sc.Database = os.Getenv("MONGODB_URI"), dbName
	if sc.URI == "" {
		b.Skip("MONGODB_URI is not set")
	}
	h, closeAll, err := newServeHandler(context.Background(), sc)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(closeAll)
	return h
}

// load runs request(i) for the i-th request, one at a time or, when
// parallel, from 16 goroutines (8 per processor on 2), and reports the
// process's CPU per request.
func load(b *testing.B, parallel bool, request func(i int64) error) {
	b.ReportAllocs()
	defer reportCPU(b)()
	if !parallel {
		var i int64
		for b.Loop() {
			if err := request(i); err != nil {
				b.Fatal(err)
			}
			i++
		}
		return
	}
	b.SetParallelism(8)
	var n atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := request(n.Add(1)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// call serves req and checks its status.
func call(h http.Handler, req *http.Request, want int) error {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != want {
		return fmt.Errorf("%s %s: %d %s", req.Method, req.URL, w.Code, w.Body)
	}
	return nil
}

// insert posts one user to variant v's insert route.
func insert(h http.Handler, v string, body []byte) error {
	req := httptest.NewRequest(http.MethodPost, "/"+v+"/inserts", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return call(h, req, http.StatusCreated)
}

// userBodies returns 100 users as JSON bodies.
func userBodies() [][]byte {
	bodies := make([][]byte, 100)
	for i := range bodies {
		bodies[i] = userJSON(i)
	}
	return bodies
}

// reportCPU reports the process's CPU time per operation (cpu-ns/op) from
// the call to the call of the function it returns: the handlers wait on
// the database most of their time, so ns/op says little about their cost.
func reportCPU(b *testing.B) func() {
	start, _ := processCPU()
	return func() {
		if b.N > 0 {
			used, _ := processCPU()
			b.ReportMetric(float64(used-start)/float64(b.N), "cpu-ns/op")
		}
	}
}
