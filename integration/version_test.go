package integration_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mongohttp/mongohttp"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// TestVersionFieldNeverServed writes documents through the handlers, so
// that each carries the version field, and reads them back on every
// answer path: lists (JSON and NDJSON), one document, embeds, an
// aggregation, and the echoes of POST, PUT and PATCH. The version is in
// the ETag header only; the stored document keeps it, and If-Match with
// the ETag still guards a write.
func TestVersionFieldNeverServed(t *testing.T) {
	c := connect(t, mongohttp.PoolConfig{})
	db := database(t, c)
	owners := mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{
		Coll: db.Collection("owners"), Admission: mongohttp.Admission{MaxActive: -1},
		Policy: mongohttp.Policy{Filter: map[string]mongohttp.Type{"name": mongohttp.String}, Write: map[string]mongohttp.Type{"name": mongohttp.String}},
	}))
	policy := notesPolicy
	policy.Relations = map[string]mongohttp.Relation{
		"owner": {Local: "owner", Coll: db.Collection("owners"), Policy: mongohttp.Policy{}},
	}
	notes := mongohttp.Must(mongohttp.New(mongohttp.Collection[note]{
		Coll: db.Collection("notes"), Policy: policy, Admission: mongohttp.Admission{MaxActive: -1},
	}))
	agg, err := notes.Aggregate(mongohttp.Aggregation{Pipeline: mongo.Pipeline{{{Key: "$sort", Value: bson.D{{Key: "_id", Value: 1}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/owners", mongohttp.Methods{"GET": owners.Find(), "POST": owners.Insert()})
	mux.Handle("/notes", mongohttp.Methods{"GET": notes.Find(), "POST": notes.Insert()})
	mux.Handle("/notes/{id}", mongohttp.Methods{"GET": notes.FindOne(), "PUT": notes.Replace(), "PATCH": notes.Patch()})
	mux.Handle("/all", agg)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	send := func(method, target, contentType, body string, header ...string) response {
		t.Helper()
		return sendTo(t, srv.URL, method, target, contentType, body, header...)
	}
	owner := send("POST", "/owners", "application/json", `{"name":"ann"}`)
	if owner.status != 201 {
		t.Fatalf("POST /owners: %d %s", owner.status, owner.body)
	}
	ownerID := jsonDoc(t, owner)["_id"].(string)
	created := send("POST", "/notes", "application/json", `{"title":"a","owner":"`+ownerID+`"}`)
	if created.status != 201 {
		t.Fatalf("POST /notes: %d %s", created.status, created.body)
	}
	id := jsonDoc(t, created)["_id"].(string)
	oid, _ := bson.ObjectIDFromHex(id)
	var stored bson.M
	if err := db.Collection("notes").FindOne(context.Background(), bson.D{{Key: "_id", Value: oid}}).Decode(&stored); err != nil {
		t.Fatal(err)
	}
	version, ok := stored["_etag"].(bson.ObjectID)
	if !ok {
		t.Fatalf("no version stored: %v", stored)
	}
	etag := created.header.Get("ETag")
	if !strings.HasPrefix(etag, `"`+version.Hex()+".") {
		t.Fatalf("ETag %s does not carry the version %s", etag, version.Hex())
	}
	for _, r := range []struct{ target, accept string }{
		{"/owners", ""}, {"/notes", ""}, {"/notes", "application/x-ndjson"}, {"/notes?embed=owner", ""},
		{"/notes/" + id, ""}, {"/notes/" + id + "?embed=owner", ""}, {"/all", ""}, {"/all", "application/x-ndjson"},
	} {
		got := send("GET", r.target, "", "", "Accept", r.accept)
		if got.status != 200 || !bytes.Contains(got.body, []byte(`"title":"a"`)) && !bytes.Contains(got.body, []byte(`"ann"`)) {
			t.Errorf("GET %s (%s): %d %s", r.target, r.accept, got.status, got.body)
		}
		if r.target == "/notes/"+id && got.header.Get("ETag") != etag {
			t.Errorf("GET %s: ETag %s, the write answered %s", r.target, got.header.Get("ETag"), etag)
		}
	}
	// If-Match still works from the header alone.
	stale := send("PATCH", "/notes/"+id, "application/merge-patch+json", `{"title":"b"}`, "If-Match", etag)
	if stale.status != 200 {
		t.Fatalf("PATCH with the ETag: %d %s", stale.status, stale.body)
	}
	if again := send("PUT", "/notes/"+id, "application/json", `{"title":"c"}`, "If-Match", etag); again.status != 412 {
		t.Fatalf("PUT with the old ETag: %d %s", again.status, again.body)
	}
	if put := send("PUT", "/notes/"+id, "application/json", `{"title":"c"}`, "If-Match", stale.header.Get("ETag")); put.status != 200 {
		t.Fatalf("PUT with the new ETag: %d %s", put.status, put.body)
	}
}
