package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
)

// BenchmarkHandlers calls each handler in process, one request at a time,
// against the database of MONGODB_URI as seeded by a run of the program
// (go run ./bench -quick leaves it seeded when given MONGODB_URI). It is a
// profiling aid: go test -bench Handlers -cpuprofile cpu.out shows where a
// handler's CPU goes without the HTTP load around it.
func BenchmarkHandlers(b *testing.B) {
	uri := os.Getenv("MONGODB_URI")
	if uri == "" {
		b.Skip("MONGODB_URI is not set")
	}
	const docs = 10000
	h, closeAll, err := newServeHandler(context.Background(), serveConfig{
		URI: uri, Database: dbName, MaxLimit: 1000, FindOneColl: findOneColl(docs),
		PageColls: []string{sizedColl(11, docs), sizedColl(101, docs)}, OtelSample: 1,
	})
	if err != nil {
		b.Fatal(err)
	}
	defer closeAll()
	ids := sampleIDs(100, findOneDocs)
	for _, c := range []struct{ name, path string }{
		{"find10", "/page/" + sizedColl(11, docs) + "?limit=10"},
		{"find100", "/page/" + sizedColl(101, docs) + "?limit=100"},
		{"findone", "/users/"},
	} {
		for _, v := range variants {
			b.Run(c.name+"/"+v, func(b *testing.B) {
				b.ReportAllocs()
				defer reportCPU(b)()
				i := 0
				for b.Loop() {
					path := "/" + v + c.path
					if c.name == "findone" {
						path += ids[i%len(ids)]
					}
					i++
					w := httptest.NewRecorder()
					h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
					if w.Code != http.StatusOK {
						b.Fatalf("%s: %d %s", path, w.Code, w.Body)
					}
				}
			})
		}
	}
}

// BenchmarkHandlersParallel is BenchmarkHandlers with 16 requests in
// flight, as the program's load sends them: waits, wake-ups and
// contention, which one request at a time does not show, take their part
// of the CPU.
func BenchmarkHandlersParallel(b *testing.B) {
	uri := os.Getenv("MONGODB_URI")
	if uri == "" {
		b.Skip("MONGODB_URI is not set")
	}
	const docs = 10000
	h, closeAll, err := newServeHandler(context.Background(), serveConfig{
		URI: uri, Database: dbName, MaxLimit: 1000, FindOneColl: findOneColl(docs),
		PageColls: []string{sizedColl(11, docs)}, OtelSample: 1,
	})
	if err != nil {
		b.Fatal(err)
	}
	defer closeAll()
	ids := sampleIDs(100, findOneDocs)
	for _, c := range []struct{ name, path string }{
		{"find10", "/page/" + sizedColl(11, docs) + "?limit=10"},
		{"findone", "/users/"},
	} {
		for _, v := range variants {
			b.Run(c.name+"/"+v, func(b *testing.B) {
				b.ReportAllocs()
				b.SetParallelism(8) // 16 goroutines on 2 processors
				defer reportCPU(b)()
				var n atomic.Int64
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						path := "/" + v + c.path
						if c.name == "findone" {
							path += ids[n.Add(1)%int64(len(ids))]
						}
						w := httptest.NewRecorder()
						h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
						if w.Code != http.StatusOK {
							b.Errorf("%s: %d %s", path, w.Code, w.Body)
							return
						}
					}
				})
			})
		}
	}
}

// BenchmarkWriteHandlers is the same aid for the write handlers: Insert
// and Patch of every variant, in process, one request at a time, against
// the database of MONGODB_URI as a run of the program with -cases patch
// left it seeded. The inserts go to the insert collections, which the
// program drops when its insert case starts.
func BenchmarkWriteHandlers(b *testing.B) {
	uri := os.Getenv("MONGODB_URI")
	if uri == "" {
		b.Skip("MONGODB_URI is not set")
	}
	h, closeAll, err := newServeHandler(context.Background(), serveConfig{URI: uri, Database: dbName, MaxLimit: 100})
	if err != nil {
		b.Fatal(err)
	}
	defer closeAll()
	ids := sampleIDs(100, patchDocs)
	bodies := make([][]byte, 100)
	for i := range bodies {
		bodies[i] = userJSON(i)
	}
	for _, v := range insertVariants {
		b.Run("insert/"+v, func(b *testing.B) {
			b.ReportAllocs()
			defer reportCPU(b)()
			i := 0
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, "/"+v+"/inserts", bytes.NewReader(bodies[i%len(bodies)]))
				req.Header.Set("Content-Type", "application/json")
				i++
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusCreated {
					b.Fatalf("insert: %d %s", w.Code, w.Body)
				}
			}
		})
	}
	for _, v := range patchVariants {
		b.Run("patch/"+v, func(b *testing.B) {
			b.ReportAllocs()
			defer reportCPU(b)()
			i := 0
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPatch, "/"+v+"/patch/"+ids[i%len(ids)], strings.NewReader(fmt.Sprintf(`{"age":%d}`, 18+i%62)))
				req.Header.Set("Content-Type", "application/merge-patch+json")
				i++
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("patch: %d %s", w.Code, w.Body)
				}
			}
		})
	}
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

// BenchmarkInsertParallel is BenchmarkWriteHandlers' insert case with 16
// requests in flight, as the program's load sends them: mongohttp's
// handlers then queue for admission, the hand-written one does not.
func BenchmarkInsertParallel(b *testing.B) {
	uri := os.Getenv("MONGODB_URI")
	if uri == "" {
		b.Skip("MONGODB_URI is not set")
	}
	h, closeAll, err := newServeHandler(context.Background(), serveConfig{URI: uri, Database: dbName, MaxLimit: 100})
	if err != nil {
		b.Fatal(err)
	}
	defer closeAll()
	bodies := make([][]byte, 100)
	for i := range bodies {
		bodies[i] = userJSON(i)
	}
	for _, v := range insertVariants {
		b.Run(v, func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(8) // 16 goroutines on 2 processors
			defer reportCPU(b)()
			var n atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req := httptest.NewRequest(http.MethodPost, "/"+v+"/inserts", bytes.NewReader(bodies[n.Add(1)%int64(len(bodies))]))
					req.Header.Set("Content-Type", "application/json")
					w := httptest.NewRecorder()
					h.ServeHTTP(w, req)
					if w.Code != http.StatusCreated {
						b.Errorf("insert: %d %s", w.Code, w.Body)
						return
					}
				}
			})
		})
	}
}
