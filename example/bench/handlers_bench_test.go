package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
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
