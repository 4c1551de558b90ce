package integration_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mongohttp/mongohttp"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// manyKeys is a JSON object of distinct three-character keys that fills
// size bytes: 131,071 keys in 1 MiB.
func manyKeys(size int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
	var b strings.Builder
	b.WriteByte('{')
	for i := 0; b.Len()+9 < size; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		b.WriteByte(alphabet[i>>12&63])
		b.WriteByte(alphabet[i>>6&63])
		b.WriteByte(alphabet[i&63])
		b.WriteString(`":0`)
	}
	b.WriteByte('}')
	return b.String()
}

// TestBodiesOfManyKeys: a 1 MiB body of distinct keys, sent as a POST, a
// PUT, a PATCH and a bulk line at once, is refused (422) promptly. Duplicate
// detection compared each key with every earlier one: 72 s of CPU per body
// of this size, so these four would have outlasted the client's patience
// many times over.
func TestBodiesOfManyKeys(t *testing.T) {
	f := newWriteFixture(t, nil)
	id, _ := f.insertNote(t, "/notes", `{"title":"target"}`)
	body := manyKeys(1 << 20)
	if n := strings.Count(body, ":"); n < 131000 {
		t.Fatalf("the body has %d keys", n)
	}
	requests := []struct{ method, target, media, body string }{
		{"POST", "/notes", "application/json", body},
		{"PUT", "/notes/" + id, "application/json", body},
		{"PATCH", "/notes/" + id, "application/merge-patch+json", body},
		{"POST", "/notes/bulk", "application/x-ndjson", `{"title":"first"}` + "\n" + body + "\n"},
	}
	// Generous for a decoder of linear cost under the race detector; the
	// quadratic one needed minutes.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, r := range requests {
		wg.Go(func() {
			req, _ := http.NewRequestWithContext(ctx, r.method, f.srv.URL+r.target, strings.NewReader(r.body))
			req.Header.Set("Content-Type", r.media)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Errorf("%s %s: %v", r.method, r.media, err)
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusUnprocessableEntity {
				t.Errorf("%s %s: %d, want 422", r.method, r.media, resp.StatusCode)
			}
		})
	}
	wg.Wait()
}

// trickle is a body that yields one line every gap, then, when stall is
// set, blocks until done is closed.
type trickle struct {
	lines []string
	gap   time.Duration
	stall bool
	done  chan struct{}
}

func (b *trickle) Read(p []byte) (int, error) {
	if len(b.lines) == 0 {
		if b.stall {
			<-b.done
		}
		return 0, io.EOF
	}
	time.Sleep(b.gap)
	n := copy(p, b.lines[0])
	b.lines[0] = b.lines[0][n:]
	if b.lines[0] == "" {
		b.lines = b.lines[1:]
	}
	return n, nil
}

// TestBulkBodyThatKeepsFlowing serves a bulk insert with an http.Server
// whose ReadTimeout (1 s) is shorter than the stream (about 2.5 s of
// lines): a body that keeps flowing is read to its end and stored, while
// one that stops is answered 408 body_timeout after BodyIdleTimeout, with
// the lines before it stored and a warning in the log.
func TestBulkBodyThatKeepsFlowing(t *testing.T) {
	c := connect(t, mongohttp.PoolConfig{})
	coll := database(t, c).Collection("flowing")
	var logs syncBuffer
	h := mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{
		Client:          c,
		Coll:            coll,
		Policy:          mongohttp.Policy{Write: map[string]mongohttp.Type{"n": mongohttp.Int}},
		BodyIdleTimeout: 500 * time.Millisecond,
		Logger:          slog.New(slog.NewTextHandler(&logs, nil)),
	})).BulkInsert()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ReadTimeout = time.Second
	srv.Start()
	defer srv.Close()
	lines := func(from, n int) []string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprintf("{\"n\":%d}\n", from+i))
		}
		return out
	}
	post := func(body io.Reader) (int, map[string]any) {
		req, _ := http.NewRequest("POST", srv.URL, body)
		req.Header.Set("Content-Type", "application/x-ndjson")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var answer map[string]any
		b, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(b, &answer); err != nil {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
		return resp.StatusCode, answer
	}

	status, answer := post(&trickle{lines: lines(0, 25), gap: 100 * time.Millisecond})
	if status != 200 || answer["inserted"] != float64(25) {
		t.Fatalf("a body flowing for 2.5 s: %d %v", status, answer)
	}
	stalled := &trickle{lines: lines(100, 3), gap: 10 * time.Millisecond, stall: true, done: make(chan struct{})}
	defer close(stalled.done)
	status, answer = post(stalled)
	if status != http.StatusRequestTimeout || answer["code"] != "body_timeout" || answer["inserted"] != float64(3) || answer["line"] != float64(4) {
		t.Fatalf("a stalled body: %d %v, want 408 body_timeout with inserted 3, line 4", status, answer)
	}
	if n, err := coll.CountDocuments(context.Background(), bson.D{}); err != nil || n != 28 {
		t.Fatalf("%d documents stored (%v), want 28", n, err)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "code=body_timeout") || !strings.Contains(logs.String(), "inserted=3") {
		t.Errorf("the log does not warn of the stalled body:\n%s", logs.String())
	}
}
