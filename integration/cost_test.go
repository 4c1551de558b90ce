package integration_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
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
		{"POST", "/notes", "application/x-ndjson", `{"title":"first"}` + "\n" + body + "\n"},
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
