package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/metrics"
	"strings"
	"testing"
	"time"

	"github.com/mongohttp/mongohttp"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// The bulk insert test streams bulkLines documents through one POST, and
// bulkSmallLines for comparison.
const (
	bulkLines      = 100000
	bulkSmallLines = 10000
)

// bulkFiller pads each line to about 540 bytes, so that a server holding
// the whole stream of bulkLines would hold about 54 MB more.
var bulkFiller = strings.Repeat("lorem ipsum ", 40)

// bulkStream generates n NDJSON lines as it is read, so the client holds
// one line at a time: line i is a post with n = i.
type bulkStream struct {
	n, i int
	line []byte // what is left of the current line
	sent int    // bytes read so far
}

func (s *bulkStream) Read(p []byte) (int, error) {
	total := 0
	for len(p) > 0 {
		if len(s.line) == 0 {
			if s.i == s.n {
				break
			}
			s.line = fmt.Appendf(s.line[:0], "{\"n\":%d,\"title\":\"post %d\",\"likes\":%d,\"body\":%q}\n", s.i, s.i, s.i%1000, bulkFiller)
			s.i++
		}
		k := copy(p, s.line)
		s.line, p, total = s.line[k:], p[k:], total+k
	}
	s.sent += total
	if total == 0 {
		return 0, io.EOF
	}
	return total, nil
}

// liveHeapDuring runs f and returns how far the live heap (as marked by
// each garbage collection, sampled from runtime/metrics every 2 ms) rose
// above what it was before f.
func liveHeapDuring(f func()) uint64 {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	live := func() uint64 {
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	runtime.GC()
	base := live()
	peak := base
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			peak = max(peak, live())
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	f()
	close(stop)
	<-done
	return max(peak, live()) - base
}

// postStream POSTs n generated lines to url as NDJSON and returns the
// answer's "inserted" and the bytes sent.
func postStream(t *testing.T, url string, n int) (int, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	stream := &bulkStream{n: n}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, stream)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var answer struct {
		Inserted *int `json:"inserted"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &answer) != nil || answer.Inserted == nil {
		t.Fatalf("POST of %d lines: %s: %s", n, resp.Status, body)
	}
	return *answer.Inserted, stream.sent
}

// TestBulkInsertStreams streams 100,000 NDJSON lines through one POST to
// mongohttp's Insert on the shared database, served with the service's
// http.Server settings (see newServer): every line must be stored,
// and the live heap of this process, which serves the request, must rise
// about as little as it does for 10,000 lines. A handler that buffered the
// stream (or the documents) would hold ten times as much for ten times the
// lines; the same measurement of such a handler checks that it would fail.
func TestBulkInsertStreams(t *testing.T) {
	ctx := context.Background()
	client, err := mongohttp.Connect(ctx, shared.dbURI)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close(context.Background()) })
	// A collection of its own, dropped at the end: the other tests compare
	// with the seeded data.
	coll := client.Database(shared.dbName).Collection("bulk_stream_test")
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := coll.Drop(ctx); err != nil {
			t.Error(err)
		}
	}
	drop()
	t.Cleanup(drop)
	posts := mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{
		Client: client,
		Coll:   coll,
		Policy: mongohttp.Policy{Write: map[string]mongohttp.Type{
			"n": mongohttp.Int, "title": mongohttp.String, "likes": mongohttp.Int, "body": mongohttp.String,
		}},
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		MaxTime: testMaxTime,
	}))
	// Served with the service's own http.Server settings: its ReadTimeout
	// (10 s) is shorter than the upload of the larger stream, which keeps
	// flowing and must not be cut.
	srv := httptest.NewUnstartedServer(nil)
	srv.Config = newServer(posts.BulkInsert(), defaultLimits, slog.New(slog.NewTextHandler(io.Discard, nil)))
	srv.Start()
	t.Cleanup(srv.Close)

	upload := func(n int) uint64 {
		t.Helper()
		drop()
		began := time.Now()
		var inserted, sent int
		rise := liveHeapDuring(func() { inserted, sent = postStream(t, srv.URL, n) })
		took := time.Since(began)
		if inserted != n {
			t.Fatalf("%d lines: the answer says %d inserted", n, inserted)
		}
		// One pass over the collection (FerretDB scans it for a count
		// too): every line's document, once.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cur, err := coll.Find(ctx, bson.D{}, options.Find().SetProjection(bson.D{{Key: "_id", Value: 0}, {Key: "n", Value: 1}}))
		if err != nil {
			t.Fatal(err)
		}
		seen := make([]bool, n)
		stored := 0
		for cur.Next(ctx) {
			stored++
			i, ok := cur.Current.Lookup("n").AsInt64OK()
			if !ok || i < 0 || i >= int64(n) || seen[i] {
				t.Fatalf("%d lines: a stored document with n %s", n, cur.Current.Lookup("n"))
			}
			seen[i] = true
		}
		if err := cur.Err(); err != nil {
			t.Fatal(err)
		}
		if stored != n {
			t.Fatalf("%d lines: %d documents in the collection", n, stored)
		}
		t.Logf("%d lines (%.1f MB) inserted in %s, %.0f lines/s; the live heap rose by %.1f MiB",
			n, float64(sent)/1e6, took.Round(10*time.Millisecond), float64(n)/took.Seconds(), float64(rise)/(1<<20))
		return rise
	}
	small := upload(bulkSmallLines)
	large := upload(bulkLines)
	bound := 2*small + 8<<20
	if large > bound {
		t.Errorf("the live heap rose by %.1f MiB for %d lines but %.1f MiB for %d: more than 2× + 8 MiB, so the stream is held, not streamed",
			float64(large)/(1<<20), bulkLines, float64(small)/(1<<20), bulkSmallLines)
	}

	// The same measurement of a handler that reads the whole stream before
	// answering must exceed the bound, or the test could not tell.
	buffering := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, `{"inserted":%d}`, bytes.Count(data, []byte("\n")))
	}))
	defer buffering.Close()
	var n int
	held := liveHeapDuring(func() { n, _ = postStream(t, buffering.URL, bulkLines) })
	if n != bulkLines {
		t.Fatalf("the buffering handler counted %d lines", n)
	}
	if held <= bound {
		t.Fatalf("a handler that buffers %d lines raised the live heap by only %.1f MiB, within the bound of %.1f MiB: the test proves nothing",
			bulkLines, float64(held)/(1<<20), float64(bound)/(1<<20))
	}
	t.Logf("a buffering handler raised the live heap by %.1f MiB (bound %.1f MiB)", float64(held)/(1<<20), float64(bound)/(1<<20))
}
