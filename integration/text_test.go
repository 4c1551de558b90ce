package integration_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// TestTextIsStoredAsSent: a string that is not UTF-8 text (an invalid
// byte, an unpaired surrogate escape) cannot be stored as sent, so every
// write refuses it with 400 invalid_body, as reads refuse it in the query
// string and in filter= with 400 invalid_parameter; a body declared in
// another charset is 415. Nothing is stored.
func TestTextIsStoredAsSent(t *testing.T) {
	f := newWriteFixture(t, nil)
	id, _ := f.insertNote(t, "/notes", `{"title":"kept"}`)
	writes := []struct{ name, method, target, contentType, body string }{
		{"invalid byte", "POST", "/notes", "application/json", "{\"title\":\"caf\xe9\"}"},
		{"lone high surrogate", "POST", "/notes", "application/json", `{"title":"a\ud800b"}`},
		{"lone low surrogate", "POST", "/notes", "application/json", `{"title":"\udc00"}`},
		{"reversed pair", "POST", "/notes", "application/json", `{"title":"\ude00\ud83d"}`},
		{"surrogate in an array", "POST", "/notes", "application/json", `{"title":"x","tags":["\ud800"]}`},
		{"surrogate in a key", "POST", "/notes", "application/json", `{"title":"x","\ud800":1}`},
		{"encoded surrogate", "POST", "/notes", "application/json", "{\"title\":\"\xed\xa0\x80\"}"},
		{"overlong", "POST", "/notes", "application/json", "{\"title\":\"\xc0\xaf\"}"},
		{"bulk line", "POST", "/notes/bulk", "application/x-ndjson", "{\"title\":\"a\"}\n{\"title\":\"\\ud800\"}\n"},
		{"replace", "PUT", "/notes/" + id, "application/json", `{"title":"\ud800"}`},
		{"patch", "PATCH", "/notes/" + id, "application/merge-patch+json", "{\"title\":\"\xff\"}"},
	}
	for _, tt := range writes {
		t.Run(tt.name, func(t *testing.T) {
			before, _ := f.coll.CountDocuments(context.Background(), bson.D{})
			got := f.send(t, tt.method, tt.target, tt.contentType, tt.body)
			if got.status != 400 || !strings.Contains(string(got.body), "UTF-8") {
				t.Fatalf("status %d, want 400 naming UTF-8: %s", got.status, got.body)
			}
			checkProblem(t, got, "invalid_body")
			if after, _ := f.coll.CountDocuments(context.Background(), bson.D{}); after != before+int64(strings.Count(tt.name, "bulk")) {
				t.Fatalf("%d documents before, %d after", before, after)
			}
		})
	}
	if m := f.stored(t, id); m["title"] != "kept" {
		t.Fatalf("the note became %v", m)
	}
	// Pairs and U+FFFD itself are text.
	ok := f.send(t, "POST", "/notes", "application/json", `{"title":"\ud83d\ude00 \ufffd é"}`)
	if ok.status != 201 || jsonDoc(t, ok)["title"] != "😀 \ufffd é" {
		t.Fatalf("text: %d %s", ok.status, ok.body)
	}

	for _, ct := range []string{"application/json; charset=iso-8859-1", "application/json;charset=utf-16", "application/x-ndjson; charset=latin1"} {
		got := f.send(t, "POST", "/notes", ct, `{"title":"x"}`)
		if got.status != 415 || !strings.Contains(string(got.body), "UTF-8") {
			t.Errorf("Content-Type %s: %d %s", ct, got.status, got.body)
		}
	}
	got := f.send(t, "PATCH", "/notes/"+id, "application/merge-patch+json; charset=iso-8859-1", `{"title":"x"}`)
	if got.status != 415 {
		t.Errorf("PATCH in iso-8859-1: %d %s", got.status, got.body)
	}
	for _, ct := range []string{"application/json; charset=utf-8", `application/json; charset="UTF-8"`} {
		if got := f.send(t, "POST", "/notes", ct, `{"title":"x"}`); got.status != 201 {
			t.Errorf("Content-Type %s: %d %s", ct, got.status, got.body)
		}
	}

	// Reads: the same text refused in the query string and in filter=.
	for _, q := range []string{
		"title=caf%E9",
		"filter=" + url.QueryEscape(`{"title":"\ud800"}`),
		"filter=" + url.QueryEscape(`{"title":{"$in":["x","\udc00"]}}`),
		"filter=%7B%22title%22%3A%22%FF%22%7D",
	} {
		got := f.send(t, "GET", "/notes?"+q, "", "")
		if got.status != 400 {
			t.Errorf("GET /notes?%s: %d %s", q, got.status, got.body)
			continue
		}
		checkProblem(t, got, "invalid_parameter")
	}
}
