package integration_test

import (
	"encoding/json"
	"net/url"
	"testing"

	"github.com/mongohttp/mongohttp"
)

// TestIntegersAreExact writes integers in every JSON spelling that denotes
// one exactly, within the range of the Go field that holds them (int32 for
// likes) or within ±(2^53−1) for a 64-bit or undeclared field (score), and
// checks what is stored: the same integer, never a rounded double. Values
// out of range are refused with a pointer by every write, PATCH and bulk
// lines included.
func TestIntegersAreExact(t *testing.T) {
	f := newWriteFixture(t, nil)
	for _, tt := range []struct {
		body        string
		likes       int32
		score       int64
		scoreStored bool
	}{
		{`{"title":"x","likes":2147483647}`, 2147483647, 0, false},
		{`{"title":"x","likes":3.0e2}`, 300, 0, false},
		{`{"title":"x","likes":1.50E1}`, 15, 0, false},
		{`{"title":"x","likes":0e-400}`, 0, 0, false},
		{`{"title":"x","score":9007199254740991}`, 0, 9007199254740991, true},
		{`{"title":"x","score":9.007199254740991e15}`, 0, 9007199254740991, true},
		{`{"title":"x","score":-9007199254740991.000}`, 0, -9007199254740991, true},
	} {
		got := f.send(t, "POST", "/notes", "application/json", tt.body)
		if got.status != 201 {
			t.Errorf("%s: %d %s", tt.body, got.status, got.body)
			continue
		}
		m := f.stored(t, jsonDoc(t, got)["_id"].(string))
		if l, ok := m["likes"].(int32); !tt.scoreStored && (!ok || l != tt.likes) {
			t.Errorf("%s: likes stored as %T %v", tt.body, m["likes"], m["likes"])
		}
		if tt.scoreStored {
			n, ok := m["score"].(int64)
			if i, ok32 := m["score"].(int32); ok32 {
				n, ok = int64(i), true
			}
			if !ok || n != tt.score {
				t.Errorf("%s: score stored as %T %v", tt.body, m["score"], m["score"])
			}
		}
	}
	id, _ := f.insertNote(t, "/notes", `{"title":"x"}`)
	for _, tt := range []struct{ method, target, contentType, body, pointer string }{
		{"PATCH", "/notes/" + id, "application/merge-patch+json", `{"likes":3000000000}`, "/likes"},
		{"PUT", "/notes/" + id, "application/json", `{"title":"x","likes":1e-400}`, "/likes"},
		{"PUT", "/notes/" + id, "application/json", `{"title":"x","score":1e16}`, "/score"},
		{"POST", "/notes/bulk", "application/x-ndjson", "{\"title\":\"a\"}\n{\"title\":\"b\",\"likes\":2.5}\n", "/likes"},
	} {
		got := f.send(t, tt.method, tt.target, tt.contentType, tt.body)
		var p struct {
			Errors []mongohttp.FieldError `json:"errors"`
		}
		_ = json.Unmarshal(got.body, &p)
		if got.status != 422 || len(p.Errors) != 1 || p.Errors[0].Pointer != tt.pointer || p.Errors[0].Code != "invalid_value" {
			t.Errorf("%s %s %s: %d %s", tt.method, tt.target, tt.body, got.status, got.body)
		}
	}
}

// TestFilterIntegersAreExact: a filter= number that a double rounds to a
// whole number it is not is refused, where it used to find the documents
// of that other integer (likes 0 for 1e-400); one that is the integer it
// says finds them.
func TestFilterIntegersAreExact(t *testing.T) {
	f := newWriteFixture(t, nil)
	f.insertNote(t, "/notes", `{"title":"none","likes":0}`)
	f.insertNote(t, "/notes", `{"title":"one","likes":1}`)
	for _, filter := range []string{`{"likes":1e-400}`, `{"likes":1.0000000000000001}`, `{"likes":{"$in":[5,1E-999]}}`} {
		got := f.send(t, "GET", "/notes?filter="+url.QueryEscape(filter), "", "")
		if got.status != 400 {
			t.Errorf("filter=%s: %d %s, want 400", filter, got.status, got.body)
			continue
		}
		checkProblem(t, got, "invalid_parameter")
	}
	got := f.send(t, "GET", "/notes?filter="+url.QueryEscape(`{"likes":1.0e0}`), "", "")
	var docs []struct{ Title string }
	if got.status != 200 || json.Unmarshal(got.body, &docs) != nil || len(docs) != 1 || docs[0].Title != "one" {
		t.Errorf("filter={\"likes\":1.0e0}: %d %s, want the note with one like", got.status, got.body)
	}
}
