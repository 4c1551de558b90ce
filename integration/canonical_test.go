package integration_test

import (
	"context"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// TestIdempotencyKeyIgnoresPathSpelling: one key and one body sent to
// three spellings of one path insert one document, and every answer names
// it by the canonical path. Within a scope too: /g/a and /g/%61 are one
// group.
func TestIdempotencyKeyIgnoresPathSpelling(t *testing.T) {
	f := newWriteFixture(t, nil)
	for _, tt := range []struct {
		title    string
		targets  []string
		location string
	}{
		{"spelled", []string{"/notes", "/not%65s", "/%6eotes", "/%6Eot%65s"}, "/notes/"},
		{"scoped", []string{"/g/a/notes", "/g/%61/notes", "/g/a/n%6Ftes"}, "/g/a/notes/"},
	} {
		var first response
		for i, target := range tt.targets {
			got := f.send(t, "POST", target, "application/json", `{"title":"`+tt.title+`"}`, "Idempotency-Key", "one-key")
			if got.status != 201 {
				t.Fatalf("POST %s: %d %s", target, got.status, got.body)
			}
			if loc := got.header.Get("Location"); !strings.HasPrefix(loc, tt.location) {
				t.Errorf("POST %s: Location %q, want it under %s", target, loc, tt.location)
			}
			if i == 0 {
				first = got
			} else if string(got.body) != string(first.body) || got.header.Get("Location") != first.header.Get("Location") {
				t.Errorf("POST %s answered another document: %s, first %s", target, got.body, first.body)
			}
		}
		if n, _ := f.coll.CountDocuments(context.Background(), bson.D{{Key: "title", Value: tt.title}}); n != 1 {
			t.Fatalf("%d documents stored for one Idempotency-Key", n)
		}
	}
}

// TestHeadersUseTheCanonicalPath: the Link of a page, the Location of a
// POST and the instance of a problem spell the path one way, whatever
// spelling the request used; escapes that mean something else than the
// character (%2F) are kept.
func TestHeadersUseTheCanonicalPath(t *testing.T) {
	f := newWriteFixture(t, nil)
	for range 3 {
		f.insertNote(t, "/notes", `{"title":"t"}`)
	}
	page := f.send(t, "GET", "/not%65s?limit=1", "", "")
	if link := page.header.Get("Link"); !strings.HasPrefix(link, "</notes?") {
		t.Errorf("Link %q, want </notes?…", link)
	}
	created := f.send(t, "POST", "/%6eotes", "application/json", `{"title":"t"}`)
	if loc := created.header.Get("Location"); !strings.HasPrefix(loc, "/notes/") {
		t.Errorf("Location %q, want /notes/…", loc)
	}
	bad := f.send(t, "GET", "/not%65s?limit=0", "", "")
	if !strings.Contains(string(bad.body), `"instance":"/notes"`) {
		t.Errorf("problem %s, want instance /notes", bad.body)
	}
	slash := f.send(t, "GET", "/notes/a%2fb", "", "")
	if !strings.Contains(string(slash.body), `"instance":"/notes/a%2Fb"`) {
		t.Errorf("problem %s, want instance /notes/a%%2Fb", slash.body)
	}
}
