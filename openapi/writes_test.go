package openapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestWrites sends the write requests of the example's suites (its posts'
// life cycle, users' passwords, the documented write examples, bulk
// inserts) and hostile ones, in order, each checked against the document
// as the reads are: what the document refuses gets 400, 415 or 422 as its
// verdict says, what it accepts is not refused, and every answer matches
// its schema.
func TestWrites(t *testing.T) {
	s := mustSamples(t)
	c, err := theChecker()
	if err != nil {
		t.Fatal(err)
	}
	author := s.authorID
	jsonBody := []string{"Content-Type", "application/json"}
	patchBody := []string{"Content-Type", "application/merge-patch+json"}
	with := func(h []string, more ...string) []string { return append(append([]string{}, h...), more...) }
	run := func(x exchange) (*http.Response, []byte) {
		t.Helper()
		if x.name == "" {
			x.name = x.method + " " + x.target
		}
		return c.run(t, x)
	}
	wantStatus := func(resp *http.Response, body []byte, want int) {
		t.Helper()
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %d, want %d:\n%s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, want, clip(body))
		}
	}

	// A post's life cycle.
	resp, body := run(exchange{method: "POST", target: "/posts", header: jsonBody,
		body: `{"author_id":"` + author + `","title":"Hello","body":"First post.","published":"2026-11-24T12:00:00Z"}`})
	wantStatus(resp, body, 201)
	var post struct {
		ID string `json:"_id"`
	}
	if err := json.Unmarshal(body, &post); err != nil || post.ID == "" {
		t.Fatalf("the created post: %v\n%s", err, body)
	}
	target, etag := "/posts/"+post.ID, resp.Header.Get("ETag")
	resp, body = run(exchange{method: "PATCH", target: target, header: with(patchBody, "If-Match", etag), body: `{"likes":1}`})
	wantStatus(resp, body, 200)
	resp, body = run(exchange{method: "PATCH", target: target, header: with(patchBody, "If-Match", etag), body: `{"title":"Hello, world"}`})
	wantStatus(resp, body, 412)
	resp, body = run(exchange{method: "PATCH", target: target, header: with(patchBody, "If-Match", resp.Request.Header.Get("If-Match")), body: `{"title":"Hello, world"}`})
	wantStatus(resp, body, 412)
	resp, body = run(exchange{method: "GET", target: target})
	wantStatus(resp, body, 200)
	resp, body = run(exchange{method: "PATCH", target: target, header: with(patchBody, "If-Match", resp.Header.Get("ETag")), body: `{"title":"Hello, world","body":null}`})
	wantStatus(resp, body, 200)
	resp, body = run(exchange{method: "PUT", target: target, header: jsonBody, body: `{"author_id":{"$oid":"` + author + `"},"title":"Replaced","published":{"$date":"2024-01-01"}}`})
	wantStatus(resp, body, 200)
	resp, body = run(exchange{method: "PUT", target: target, header: with(jsonBody, "If-None-Match", "*"), body: `{"author_id":"` + author + `","title":"Again"}`})
	wantStatus(resp, body, 412)
	resp, body = run(exchange{method: "PATCH", target: target, header: with(patchBody, "Prefer", "return=minimal"), body: `{"likes":2}`})
	wantStatus(resp, body, 204)

	// What the document refuses, each way in.
	for _, x := range []exchange{
		{method: "POST", target: "/posts", header: jsonBody, body: `{"author_id":"` + author + `","title":"Hello","likes":0,"views":1}`},
		{method: "POST", target: "/posts", header: jsonBody, body: `{"author_id":"0123456789abcdef01234567","title":"","colour":"red"}`},
		{method: "POST", target: "/posts", header: jsonBody, body: `{"author_id":"` + author + `","title":"Hello","month":"2020-01"}`},
		{method: "POST", target: "/posts", header: jsonBody, body: `{"author_id":"` + author + `","title":"Hello","_id":"0123456789abcdef01234567"}`},
		{method: "POST", target: "/posts", header: jsonBody, body: `{"author_id":"bob","title":"Hello"}`},
		{method: "POST", target: "/posts", header: jsonBody, body: `{"author_id":{"$oid":"bob"},"title":"Hello"}`},
		{method: "POST", target: "/posts", header: jsonBody, body: `{"author_id":"` + author + `","title":"Hello","likes":"1"}`},
		{method: "POST", target: "/posts", header: jsonBody, body: `{"author_id":"` + author + `","title":"Hello","likes":1.5}`},
		{method: "POST", target: "/posts", header: jsonBody, body: `{"author_id":"` + author + `","title":"Hello","published":"yesterday"}`},
		{method: "POST", target: "/posts", header: jsonBody, body: `{"author_id":"` + author + `","title":"Hello","published":"2024-02-30"}`},
		{method: "POST", target: "/posts", header: jsonBody, body: `{"author_id":"` + author + `","title":"Hello","published":{"$date":"2024-01-01","x":1}}`},
		{method: "POST", target: "/posts", header: jsonBody, body: `{"author_id":"` + author + `","title":"a\u0000b"}`},
		{method: "POST", target: "/posts", header: jsonBody, body: `{"author_id":"` + author + `","title":null}`},
		{method: "POST", target: "/posts", header: jsonBody, body: `{"$set":{"title":"x"}}`},
		{method: "POST", target: "/posts", header: jsonBody, body: `{"title.x":"x"}`},
		{method: "POST", target: "/posts", header: jsonBody, body: `not json`},
		{method: "POST", target: "/posts", header: jsonBody, body: `[{"title":"x"}]`},
		{method: "POST", target: "/posts", header: jsonBody, body: `{"title":"x"} {}`},
		{method: "POST", target: "/posts", header: jsonBody},
		{method: "POST", target: "/posts", body: `{"title":"x"}`},
		{method: "POST", target: "/posts", header: []string{"Content-Type", "text/plain"}, body: `{"title":"x"}`},
		{method: "POST", target: "/posts", header: patchBody, body: `{"title":"x"}`},
		{method: "PUT", target: target, header: patchBody, body: `{"title":"x"}`},
		{method: "PATCH", target: target, header: jsonBody, body: `{"title":"x"}`},
		{method: "PATCH", target: target, header: with(patchBody, "If-None-Match", "*"), body: `{"title":"x"}`},
		{method: "PUT", target: target, header: with(jsonBody, "If-None-Match", `"abc"`), body: `{"title":"x"}`},
		{method: "PATCH", target: target, header: patchBody, body: `{"likes":"many"}`},
		{method: "PATCH", target: "/posts/xyz", header: patchBody, body: `{"likes":1}`},
		{method: "PUT", target: "/posts/xyz", header: jsonBody, body: `{"title":"x"}`},
		{method: "DELETE", target: "/posts/xyz"},
		{method: "DELETE", target: target, header: []string{"If-None-Match", "*"}},
		{method: "POST", target: "/users", header: jsonBody, body: `{"name":"Ada","email":"ada@example.com","password_hash":"x"}`},
		{method: "POST", target: "/users", header: jsonBody, body: `{"name":"Ada","email":"ada@example.com","password":"long enough","tags":"go"}`},
		{method: "POST", target: "/users", header: jsonBody, body: `{"name":"Ada","email":"ada@example.com","password":"long enough","profile":{"city":"Oslo","score":1}}`},
		{method: "POST", target: "/users", header: jsonBody, body: `{"name":"Ada","email":"ada@example.com","password":"long enough","profile":"Oslo"}`},
		{method: "POST", target: "/users", header: jsonBody, body: `{"name":"Ada","email":"ada@example.com","password":"long enough","age":9223372036854775808}`},
		// The constraints the example declares: required fields, lengths,
		// ranges, patterns.
		{method: "POST", target: "/posts", header: jsonBody, body: `{"author_id":"` + author + `","title":"Hello","likes":-1}`},
		{method: "POST", target: "/users", header: jsonBody, body: `{"name":"Ada","email":"ada@example.com","password":"short"}`},
		{method: "POST", target: "/users", header: jsonBody, body: `{"name":"Ada"}`},
		{method: "POST", target: "/posts", header: jsonBody, body: `{"author_id":"` + author + `","title":"  "}`},
		{method: "POST", target: "/users", header: jsonBody, body: `{"name":"Ada","email":"no at sign","password":"long enough"}`},
		{method: "PATCH", target: target, header: patchBody, body: `{"title":null}`},
		{method: "POST", target: "/posts/bulk", header: []string{"Content-Type", "application/x-ndjson"},
			body: `{"author_id":"` + author + `","title":"Bulk one"}` + "\n" + `{"author_id":"` + author + `","title":"Bulk two","likes":"x"}` + "\n"},
		// A bulk insert takes no Idempotency-Key, as the document says.
		{method: "POST", target: "/posts/bulk", header: []string{"Content-Type", "application/x-ndjson", "Idempotency-Key", "k1"},
			body: `{"author_id":"` + author + `","title":"Bulk"}` + "\n"},
		// Each insert route takes one media type.
		{method: "POST", target: "/posts", header: []string{"Content-Type", "application/x-ndjson"},
			body: `{"author_id":"` + author + `","title":"Stream"}` + "\n"},
		{method: "POST", target: "/posts/bulk", header: jsonBody, body: `{"author_id":"` + author + `","title":"One"}`},
	} {
		run(x)
	}

	// Refused only on arrival: the service's own validation, and what a
	// header's schema cannot say.
	for _, x := range []exchange{
		{method: "POST", target: "/posts", header: jsonBody, body: `{"author_id":"0123456789abcdef01234567","title":"Orphan"}`, runtime: "validation_failed"},
	} {
		run(x)
	}

	// Idempotency-Key: a retry gets the first answer, another body 422.
	key := fmt.Sprintf("openapi-%d", time.Now().UnixNano())
	first := exchange{method: "POST", target: "/posts", header: with(jsonBody, "Idempotency-Key", key), body: `{"author_id":"` + author + `","title":"Once"}`}
	resp, body = run(first)
	wantStatus(resp, body, 201)
	resp2, body2 := run(first)
	wantStatus(resp2, body2, 201)
	if resp2.Header.Get("Location") != resp.Header.Get("Location") {
		t.Errorf("a retry created %s, the first request %s", resp2.Header.Get("Location"), resp.Header.Get("Location"))
	}
	run(exchange{method: "POST", target: "/posts", header: with(jsonBody, "Idempotency-Key", key), body: `{"author_id":"` + author + `","title":"Twice"}`, runtime: "idempotency_key_reused"})
	run(exchange{method: "POST", target: "/posts", header: with(jsonBody, "Idempotency-Key", strings.Repeat("k", 256)), body: `{"author_id":"` + author + `","title":"Long key"}`})

	// A user, a bulk insert, Prefer, and deletion.
	resp, body = run(exchange{method: "POST", target: "/users", header: jsonBody,
		body: `{"name":"Ada","email":"ada@example.com","age":36,"tags":["math"],"profile":{"city":"London"},"password":"correct horse"}`})
	wantStatus(resp, body, 201)
	// The email is unique (an index): a second signup gets 409 naming it.
	resp, body = run(exchange{method: "POST", target: "/users", header: jsonBody,
		body: `{"name":"Ada Again","email":"ada@example.com","password":"correct horse"}`})
	wantStatus(resp, body, 409)
	if !strings.Contains(string(body), `"errors":[{"pointer":"/email","code":"duplicate"`) {
		t.Errorf("a taken email: %s", body)
	}
	resp, body = run(exchange{method: "POST", target: "/posts/bulk", header: []string{"Content-Type", "application/x-ndjson"},
		body: `{"author_id":"` + author + `","title":"Bulk one","published":{"$date":1700000000000}}` + "\n\n" + `{"author_id":"` + author + `","title":"Bulk two"}` + "\n"})
	wantStatus(resp, body, 200)
	resp, body = run(exchange{method: "POST", target: "/posts", header: with(jsonBody, "Prefer", "return=minimal"), body: `{"author_id":"` + author + `","title":"Minimal"}`})
	wantStatus(resp, body, 204)
	created := resp.Header.Get("Location")
	resp, body = run(exchange{method: "DELETE", target: target})
	wantStatus(resp, body, 204)
	resp, body = run(exchange{method: "DELETE", target: target})
	wantStatus(resp, body, 404)
	resp, body = run(exchange{method: "PATCH", target: target, header: patchBody, body: `{"likes":1}`})
	wantStatus(resp, body, 404)
	resp, body = run(exchange{method: "PUT", target: target, header: with(jsonBody, "If-None-Match", "*"), body: `{"author_id":"` + author + `","title":"Back"}`})
	wantStatus(resp, body, 201)
	resp, body = run(exchange{method: "DELETE", target: target, header: []string{"If-Match", `"0123456789abcdef01234567.x"`}})
	wantStatus(resp, body, 412)
	if created != "" {
		resp, body = run(exchange{method: "DELETE", target: created})
		wantStatus(resp, body, 204)
	}
}
