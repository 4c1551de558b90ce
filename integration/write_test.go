package integration_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mongohttp/mongohttp"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// note is the typed document of the write tests: Password is input only,
// PasswordHash is hidden and set by Prepare, Created by the server.
type note struct {
	ID    bson.ObjectID `bson:"_id"`
	Group string        `bson:"group"`
	Title string        `bson:"title"`
	Likes int32         `bson:"likes"`
	Tags  []string      `bson:"tags,omitempty"`
	City  *struct {
		Name string `bson:"name"`
	} `bson:"city,omitempty"`
	Created      time.Time `bson:"created"`
	Password     string    `bson:"password,omitempty"`
	PasswordHash string    `bson:"password_hash,omitempty"`
}

var notesPolicy = mongohttp.Policy{
	Filter: map[string]mongohttp.Type{"title": mongohttp.String, "likes": mongohttp.Int, "group": mongohttp.String},
	Hidden: []string{"password_hash"},
	Write: map[string]mongohttp.Type{
		"title": mongohttp.String, "likes": mongohttp.Int, "tags": mongohttp.ArrayOf(mongohttp.String),
		"city.name": mongohttp.String, "password": mongohttp.String, "owner": mongohttp.ObjectID, "due": mongohttp.Date,
		"score": mongohttp.Int, // not a field of note: any int64 Go type would hold it
	},
}

// writeFixture serves one collection's reads and writes; /g/{group}/notes
// scopes them to a group through the base filter.
type writeFixture struct {
	coll *mongo.Collection
	srv  *httptest.Server
}

func newWriteFixture(t *testing.T, tweak func(*mongohttp.Collection[note])) *writeFixture {
	t.Helper()
	c := connect(t, mongohttp.PoolConfig{})
	coll := database(t, c).Collection("notes")
	decl := mongohttp.Collection[note]{
		Client: c,
		Coll:   coll,
		Policy: notesPolicy,
		// No admission bound: the concurrency tests are about writes, and
		// under the race detector a queued request could wait past MaxWait.
		Admission: mongohttp.Admission{MaxActive: -1},
		Validate: func(r *http.Request, n *note) error {
			var errs []mongohttp.FieldError
			if strings.TrimSpace(n.Title) == "" {
				errs = append(errs, mongohttp.FieldError{Pointer: "/title", Code: "required", Detail: "a note needs a title"})
			}
			if n.Likes < 0 {
				errs = append(errs, mongohttp.FieldError{Pointer: "/likes", Code: "negative"})
			}
			if errs != nil {
				return &mongohttp.ValidationError{Fields: errs}
			}
			return nil
		},
		Prepare: func(r *http.Request, op mongohttp.WriteOp, n *note) error {
			if op == mongohttp.OpInsert {
				n.Created = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
			}
			if n.Password != "" {
				n.PasswordHash = "hash:" + strings.ToUpper(n.Password)
				n.Password = ""
			}
			return nil
		},
	}
	if tweak != nil {
		tweak(&decl)
	}
	all := mongohttp.Must(mongohttp.New(decl))
	scoped := decl
	scoped.BaseFilter = func(r *http.Request) (bson.D, error) {
		return bson.D{{Key: "group", Value: r.PathValue("group")}}, nil
	}
	group := mongohttp.Must(mongohttp.New(scoped))
	mux := http.NewServeMux()
	mux.Handle("/notes", mongohttp.Methods{"GET": all.Find(), "POST": all.Insert()})
	mux.Handle("/notes/bulk", all.BulkInsert())
	mux.Handle("/notes/{id}", mongohttp.Methods{"GET": all.FindOne(), "PUT": all.Replace(), "PATCH": all.Patch(), "DELETE": all.Delete()})
	mux.Handle("/g/{group}/notes", mongohttp.Methods{"GET": group.Find(), "POST": group.Insert()})
	mux.Handle("/g/{group}/notes/bulk", group.BulkInsert())
	mux.Handle("/g/{group}/notes/{id}", mongohttp.Methods{"GET": group.FindOne(), "PUT": group.Replace(), "PATCH": group.Patch(), "DELETE": group.Delete()})
	f := &writeFixture{coll: coll, srv: httptest.NewServer(mux)}
	t.Cleanup(f.srv.Close)
	return f
}

// send makes a request with a body and a content type (and header pairs).
func (f *writeFixture) send(t *testing.T, method, target, contentType, body string, header ...string) response {
	t.Helper()
	return sendTo(t, f.srv.URL, method, target, contentType, body, header...)
}

// sendTo makes a request to the server at base, and fails the test if the
// answer carries a password, its hash or the version field.
func sendTo(t *testing.T, base, method, target, contentType, body string, header ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, base+target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, leak := range []string{`"password":`, `"password_hash":`, "hash:", `"_etag":`} {
		if bytes.Contains(b, []byte(leak)) {
			t.Fatalf("%s %s answered with %q: %s", method, target, leak, b)
		}
	}
	return response{resp.StatusCode, resp.Header, b}
}

func (f *writeFixture) stored(t *testing.T, id string) bson.M {
	t.Helper()
	oid, _ := bson.ObjectIDFromHex(id)
	var m bson.M
	err := f.coll.FindOne(context.Background(), bson.D{{Key: "_id", Value: oid}}).Decode(&m)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func jsonDoc(t *testing.T, r response) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("status %d, body %s: %v", r.status, r.body, err)
	}
	return m
}

func TestInsert(t *testing.T) {
	f := newWriteFixture(t, nil)
	created := f.send(t, "POST", "/notes", "application/json",
		`{"title":"first","likes":3,"tags":["a","b"],"city":{"name":"Lisbon"},"password":"pw","owner":"65f0a1b2c3d4e5f6a7b8c9d0","due":"2025-06-01"}`)
	if created.status != 201 {
		t.Fatalf("insert: %d %s", created.status, created.body)
	}
	doc := jsonDoc(t, created)
	id, _ := doc["_id"].(string)
	if loc := created.header.Get("Location"); loc != "/notes/"+id {
		t.Fatalf("Location %q for id %s", loc, id)
	}
	if doc["title"] != "first" || doc["likes"] != 3.0 || doc["created"] != "2025-01-02T03:04:05.000Z" {
		t.Fatalf("answer %s", created.body)
	}
	// The answer is what a GET serves, ETag included.
	get := f.send(t, "GET", "/notes/"+id, "", "")
	if !bytes.Equal(get.body, created.body) || get.header.Get("ETag") != created.header.Get("ETag") || created.header.Get("ETag") == "" {
		t.Fatalf("GET after POST differs:\n%s %s\n%s %s", get.header.Get("ETag"), get.body, created.header.Get("ETag"), created.body)
	}
	// Stored with declared types, the hash from Prepare, no password.
	m := f.stored(t, id)
	if _, ok := m["owner"].(bson.ObjectID); !ok {
		t.Errorf("owner stored as %T", m["owner"])
	}
	if _, ok := m["due"].(bson.DateTime); !ok {
		t.Errorf("due stored as %T", m["due"])
	}
	if m["password_hash"] != "hash:PW" || m["password"] != nil {
		t.Errorf("password fields stored as %v / %v", m["password_hash"], m["password"])
	}
	if _, ok := m["_etag"].(bson.ObjectID); !ok {
		t.Errorf("no version stored: %v", m)
	}
	minimal := f.send(t, "POST", "/notes", "application/json", `{"title":"second"}`, "Prefer", "return=minimal")
	if minimal.status != 204 || minimal.header.Get("Preference-Applied") != "return=minimal" || minimal.header.Get("Location") == "" || len(minimal.body) != 0 {
		t.Fatalf("Prefer: return=minimal: %d %v %s", minimal.status, minimal.header, minimal.body)
	}
}

func TestWriteRefusesWhatThePolicyDoesNot(t *testing.T) {
	f := newWriteFixture(t, func(c *mongohttp.Collection[note]) { c.MaxBodyBytes = 4096 })
	tests := []struct {
		name, contentType, body string
		status                  int
		code, pointer, field    string
	}{
		{"unknown field", "application/json", `{"title":"x","colour":"red"}`, 422, "validation_failed", "/colour", "not_writable"},
		{"hidden field", "application/json", `{"title":"x","password_hash":"mine"}`, 422, "validation_failed", "/password_hash", "not_writable"},
		{"id", "application/json", `{"title":"x","_id":"65f0a1b2c3d4e5f6a7b8c9d0"}`, 422, "validation_failed", "/_id", "not_writable"},
		{"version", "application/json", `{"title":"x","_etag":"65f0a1b2c3d4e5f6a7b8c9d0"}`, 422, "validation_failed", "/_etag", "not_writable"},
		{"operator key", "application/json", `{"title":"x","$set":{"a":1}}`, 422, "validation_failed", "/$set", "not_writable"},
		{"operator deep", "application/json", `{"title":"x","city":{"$where":"1"}}`, 422, "validation_failed", "/city/$where", "not_writable"},
		{"dotted key", "application/json", `{"title":"x","city.name":"y"}`, 422, "validation_failed", "/city.name", "not_writable"},
		{"unlisted nested", "application/json", `{"title":"x","city":{"zip":"1"}}`, 422, "validation_failed", "/city/zip", "not_writable"},
		{"wrong type", "application/json", `{"title":5}`, 422, "validation_failed", "/title", "invalid_type"},
		{"string for int", "application/json", `{"title":"x","likes":"5"}`, 422, "validation_failed", "/likes", "invalid_type"},
		{"fraction for int", "application/json", `{"title":"x","likes":1.5}`, 422, "validation_failed", "/likes", "invalid_value"},
		{"huge int", "application/json", `{"title":"x","likes":1e30}`, 422, "validation_failed", "/likes", "invalid_value"},
		// Integers are read from the decimal text: a double rounds 1e-400
		// to 0 and 1.0000000000000000001 to 1.
		{"underflowing fraction", "application/json", `{"title":"x","likes":1e-400}`, 422, "validation_failed", "/likes", "invalid_value"},
		{"fraction a double rounds", "application/json", `{"title":"x","likes":1.0000000000000000001}`, 422, "validation_failed", "/likes", "invalid_value"},
		{"beyond int32", "application/json", `{"title":"x","likes":3000000000}`, 422, "validation_failed", "/likes", "invalid_value"},
		{"beyond int32 with an exponent", "application/json", `{"title":"x","likes":-2.147483649e9}`, 422, "validation_failed", "/likes", "invalid_value"},
		{"beyond the safe integers", "application/json", `{"title":"x","score":9007199254740992}`, 422, "validation_failed", "/score", "invalid_value"},
		{"below the safe integers", "application/json", `{"title":"x","score":-9007199254740992.0}`, 422, "validation_failed", "/score", "invalid_value"},
		{"bad object id", "application/json", `{"title":"x","owner":"zz"}`, 422, "validation_failed", "/owner", "invalid_object_id"},
		{"bad $oid", "application/json", `{"title":"x","owner":{"$oid":"zz"}}`, 422, "validation_failed", "/owner", "invalid_object_id"},
		{"bad date", "application/json", `{"title":"x","due":"tomorrow"}`, 422, "validation_failed", "/due", "invalid_value"},
		{"array element", "application/json", `{"title":"x","tags":["a",2]}`, 422, "validation_failed", "/tags/1", "invalid_type"},
		{"nul", "application/json", "{\"title\":\"a\\u0000b\"}", 422, "validation_failed", "/title", "invalid_value"},
		{"null on insert", "application/json", `{"title":null}`, 422, "validation_failed", "/title", "invalid_type"},
		{"hook", "application/json", `{"title":" ","likes":-1}`, 422, "validation_failed", "/title", "required"},
		{"duplicate key", "application/json", `{"title":"x","title":"y"}`, 400, "invalid_body", "", ""},
		{"malformed", "application/json", `{"title":"x",}`, 400, "invalid_body", "", ""},
		{"truncated", "application/json", `{"title":"x"`, 400, "invalid_body", "", ""},
		{"not an object", "application/json", `["x"]`, 400, "invalid_body", "", ""},
		{"trailing data", "application/json", `{"title":"x"} {}`, 400, "invalid_body", "", ""},
		{"deep", "application/json", `{"x":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`, 400, "invalid_body", "", ""},
		{"too large", "application/json", `{"title":"` + strings.Repeat("x", 5000) + `"}`, 413, "body_too_large", "", ""},
		{"form", "application/x-www-form-urlencoded", `title=x`, 415, "unsupported_media_type", "", ""},
		{"no type", "", `{"title":"x"}`, 415, "unsupported_media_type", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, _ := f.coll.CountDocuments(context.Background(), bson.D{})
			got := f.send(t, "POST", "/notes", tt.contentType, tt.body)
			if got.status != tt.status {
				t.Fatalf("status %d, want %d: %s", got.status, tt.status, got.body)
			}
			checkProblem(t, got, tt.code)
			if tt.pointer != "" {
				var p struct {
					Errors []mongohttp.FieldError `json:"errors"`
				}
				_ = json.Unmarshal(got.body, &p)
				if len(p.Errors) == 0 || p.Errors[0].Pointer != tt.pointer || p.Errors[0].Code != tt.field {
					t.Fatalf("errors %+v, want %s %s", p.Errors, tt.pointer, tt.field)
				}
			}
			if after, _ := f.coll.CountDocuments(context.Background(), bson.D{}); after != before {
				t.Fatalf("a refused body was inserted")
			}
		})
	}
	// The byte offset of a syntax error is reported.
	got := f.send(t, "POST", "/notes", "application/json", `{"title": "x" "likes": 1}`)
	if !bytes.Contains(got.body, []byte("byte 14")) {
		t.Errorf("no byte offset in %s", got.body)
	}
}

// insertNote creates a note through the API and returns its id and ETag.
func (f *writeFixture) insertNote(t *testing.T, target, body string) (string, string) {
	t.Helper()
	got := f.send(t, "POST", target, "application/json", body)
	if got.status != 201 {
		t.Fatalf("insert: %d %s", got.status, got.body)
	}
	id, _ := jsonDoc(t, got)["_id"].(string)
	return id, got.header.Get("ETag")
}

func TestReplacePatchDelete(t *testing.T) {
	f := newWriteFixture(t, nil)
	id, etag := f.insertNote(t, "/notes", `{"title":"t","likes":1,"tags":["x"],"city":{"name":"Porto"},"password":"pw"}`)
	// Fields clients cannot write survive a replacement; writable ones the
	// body leaves out are removed.
	put := f.send(t, "PUT", "/notes/"+id, "application/json", `{"title":"t2","likes":2}`, "If-Match", etag)
	if put.status != 200 {
		t.Fatalf("PUT: %d %s", put.status, put.body)
	}
	m := f.stored(t, id)
	if m["title"] != "t2" || m["tags"] != nil || m["city"] != nil || m["password_hash"] != "hash:PW" || m["created"] == nil {
		t.Fatalf("after PUT stored %v", m)
	}
	if put.header.Get("ETag") == etag {
		t.Fatal("the ETag did not change")
	}
	// The old ETag no longer matches: 412, nothing written.
	stale := f.send(t, "PATCH", "/notes/"+id, "application/merge-patch+json", `{"likes":9}`, "If-Match", etag)
	if stale.status != 412 {
		t.Fatalf("stale If-Match: %d %s", stale.status, stale.body)
	}
	checkProblem(t, stale, "precondition_failed")
	// Merge patch: a nested object merges, null removes.
	etag = put.header.Get("ETag")
	patch := f.send(t, "PATCH", "/notes/"+id, "application/merge-patch+json", `{"likes":5,"title":null,"city":{"name":"Faro"}}`, "If-Match", etag)
	if patch.status != 422 { // Validate: a note needs a title
		t.Fatalf("PATCH removing the title: %d %s", patch.status, patch.body)
	}
	patch = f.send(t, "PATCH", "/notes/"+id, "application/merge-patch+json", `{"likes":5,"tags":null,"city":{"name":"Faro"}}`, "If-Match", etag)
	if patch.status != 200 {
		t.Fatalf("PATCH: %d %s", patch.status, patch.body)
	}
	m = f.stored(t, id)
	if m["likes"] != int32(5) || m["title"] != "t2" || cityName(m) != "Faro" || m["password_hash"] != "hash:PW" {
		t.Fatalf("after PATCH stored %v", m)
	}
	if got := f.send(t, "PATCH", "/notes/"+id, "application/json", `{"likes":1}`); got.status != 415 || got.header.Get("Accept-Patch") != "application/merge-patch+json" {
		t.Fatalf("PATCH as application/json: %d %v", got.status, got.header)
	}
	// PUT of a new id creates; If-None-Match: * creates only.
	newID := bson.NewObjectID().Hex()
	if got := f.send(t, "PUT", "/notes/"+newID, "application/json", `{"title":"new"}`, "If-None-Match", "*"); got.status != 201 {
		t.Fatalf("PUT create: %d %s", got.status, got.body)
	}
	if got := f.send(t, "PUT", "/notes/"+newID, "application/json", `{"title":"again"}`, "If-None-Match", "*"); got.status != 412 {
		t.Fatalf("PUT create of an existing id: %d %s", got.status, got.body)
	}
	// DELETE: a stale ETag is refused, then 204, then 404.
	if got := f.send(t, "DELETE", "/notes/"+id, "", "", "If-Match", etag); got.status != 412 {
		t.Fatalf("DELETE with a stale ETag: %d %s", got.status, got.body)
	}
	if got := f.send(t, "DELETE", "/notes/"+id, "", ""); got.status != 204 {
		t.Fatalf("DELETE: %d %s", got.status, got.body)
	}
	if got := f.send(t, "DELETE", "/notes/"+id, "", ""); got.status != 404 {
		t.Fatalf("second DELETE: %d %s", got.status, got.body)
	}
	if got := f.send(t, "PATCH", "/notes/"+id, "application/merge-patch+json", `{"likes":1}`); got.status != 404 {
		t.Fatalf("PATCH of a deleted note: %d %s", got.status, got.body)
	}
	if got := f.send(t, "PUT", "/notes/not-an-id", "application/json", `{"title":"x"}`); got.status != 400 {
		t.Fatalf("PUT of a malformed id: %d %s", got.status, got.body)
	}
	checkProblem(t, f.send(t, "POST", "/notes/"+newID, "application/json", `{}`), "method_not_allowed")
}

// cityName reads city.name of a stored note, decoded into a bson.M.
func cityName(m bson.M) any {
	switch c := m["city"].(type) {
	case bson.M:
		return c["name"]
	case bson.D:
		for _, e := range c {
			if e.Key == "name" {
				return e.Value
			}
		}
	}
	return nil
}

// TestIfMatchLegacyDocument: a document stored without a version (by
// another program) still takes If-Match with the ETag a GET gave.
func TestIfMatchLegacyDocument(t *testing.T) {
	f := newWriteFixture(t, nil)
	id := bson.NewObjectID()
	if _, err := f.coll.InsertOne(context.Background(), bson.D{{Key: "_id", Value: id}, {Key: "title", Value: "old"}}); err != nil {
		t.Fatal(err)
	}
	etag := f.send(t, "GET", "/notes/"+id.Hex(), "", "").header.Get("ETag")
	if got := f.send(t, "PATCH", "/notes/"+id.Hex(), "application/merge-patch+json", `{"likes":1}`, "If-Match", `"not-it"`); got.status != 412 {
		t.Fatalf("wrong ETag: %d %s", got.status, got.body)
	}
	if got := f.send(t, "PATCH", "/notes/"+id.Hex(), "application/merge-patch+json", `{"likes":1}`, "If-Match", etag); got.status != 200 {
		t.Fatalf("legacy ETag: %d %s", got.status, got.body)
	}
}

func TestRequireIfMatch(t *testing.T) {
	f := newWriteFixture(t, func(c *mongohttp.Collection[note]) { c.RequireIfMatch = true })
	id, etag := f.insertNote(t, "/notes", `{"title":"t"}`)
	for _, tt := range []struct{ method, ct, body string }{
		{"PUT", "application/json", `{"title":"x"}`},
		{"PATCH", "application/merge-patch+json", `{"likes":1}`},
		{"DELETE", "", ""},
	} {
		got := f.send(t, tt.method, "/notes/"+id, tt.ct, tt.body)
		if got.status != 428 {
			t.Fatalf("%s without If-Match: %d %s", tt.method, got.status, got.body)
		}
		checkProblem(t, got, "precondition_required")
	}
	if got := f.send(t, "PATCH", "/notes/"+id, "application/merge-patch+json", `{"likes":1}`, "If-Match", etag); got.status != 200 {
		t.Fatalf("with If-Match: %d %s", got.status, got.body)
	}
}

// TestWritesStayInScope: the base filter scopes every write. A document of
// another group is a 404 for every method, and inserts carry the group.
func TestWritesStayInScope(t *testing.T) {
	f := newWriteFixture(t, nil)
	idA, _ := f.insertNote(t, "/g/a/notes", `{"title":"in a"}`)
	if g := f.stored(t, idA)["group"]; g != "a" {
		t.Fatalf("insert under /g/a stored group %v", g)
	}
	for _, tt := range []struct{ method, ct, body string }{
		{"GET", "", ""},
		{"PUT", "application/json", `{"title":"x"}`},
		{"PATCH", "application/merge-patch+json", `{"title":"x"}`},
		{"DELETE", "", ""},
	} {
		if got := f.send(t, tt.method, "/g/b/notes/"+idA, tt.ct, tt.body); got.status != 404 {
			t.Fatalf("%s of group a's note under /g/b: %d %s", tt.method, got.status, got.body)
		}
	}
	if got := f.send(t, "PUT", "/g/b/notes/"+idA, "application/json", `{"title":"x"}`, "If-None-Match", "*"); got.status != 404 {
		t.Fatalf("PUT create of an id taken in another scope: %d %s", got.status, got.body)
	}
	if m := f.stored(t, idA); m["title"] != "in a" || m["group"] != "a" {
		t.Fatalf("group a's note changed: %v", m)
	}
	if got := f.send(t, "PATCH", "/g/a/notes/"+idA, "application/merge-patch+json", `{"title":"still a"}`); got.status != 200 {
		t.Fatalf("PATCH in scope: %d %s", got.status, got.body)
	}
}

// TestConcurrentPatchesWithOneETag: 32 PATCHes carrying the same If-Match:
// exactly one succeeds, the others get 412.
func TestConcurrentPatchesWithOneETag(t *testing.T) {
	f := newWriteFixture(t, nil)
	id, etag := f.insertNote(t, "/notes", `{"title":"race","likes":0}`)
	const n = 32
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			got := f.send(t, "PATCH", "/notes/"+id, "application/merge-patch+json", fmt.Sprintf(`{"likes":%d}`, i+1), "If-Match", etag)
			statuses[i] = got.status
		})
	}
	wg.Wait()
	ok, failed := 0, 0
	for _, s := range statuses {
		switch s {
		case 200:
			ok++
		case 412:
			failed++
		default:
			t.Errorf("status %d", s)
		}
	}
	if ok != 1 || failed != n-1 {
		t.Fatalf("%d succeeded and %d got 412; want 1 and %d", ok, failed, n-1)
	}
}

// TestNoLostIncrement: concurrent clients add one to a counter 200 times
// in all by read-modify-write with If-Match, retrying on 412. No update is
// lost.
func TestNoLostIncrement(t *testing.T) {
	f := newWriteFixture(t, nil)
	id, _ := f.insertNote(t, "/notes", `{"title":"counter","likes":0}`)
	const clients, each = 4, 50 // 200 increments in all
	var wg sync.WaitGroup
	var retries int64
	var mu sync.Mutex
	for range clients {
		wg.Go(func() {
			// A client reads once, then goes on from each answer: a 200
			// carries the new document and ETag; only a 412 sends it back to
			// read again.
			last := f.send(t, "GET", "/notes/"+id, "", "")
			for range each {
				for attempt := 0; ; attempt++ {
					if attempt > 500 {
						t.Error("gave up after 500 attempts")
						return
					}
					likes := int(jsonDoc(t, last)["likes"].(float64))
					put := f.send(t, "PATCH", "/notes/"+id, "application/merge-patch+json", fmt.Sprintf(`{"likes":%d}`, likes+1), "If-Match", last.header.Get("ETag"))
					if put.status == 200 {
						last = put
						break
					}
					if put.status != 412 {
						t.Errorf("PATCH: %d %s", put.status, put.body)
						return
					}
					mu.Lock()
					retries++
					mu.Unlock()
					last = f.send(t, "GET", "/notes/"+id, "", "")
				}
			}
		})
	}
	wg.Wait()
	if got := f.stored(t, id)["likes"]; got != int32(clients*each) {
		t.Fatalf("counter at %v, want %d (%d retries)", got, clients*each, retries)
	}
	t.Logf("%d increments, %d retries on 412", clients*each, retries)
}

// TestIdempotencyKey: 20 concurrent POSTs with one key leave one document
// and get the same answer; the key with another body is refused.
func TestIdempotencyKey(t *testing.T) {
	f := newWriteFixture(t, nil)
	const n = 20
	answers := make([]response, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			answers[i] = f.send(t, "POST", "/notes", "application/json", `{"title":"once"}`, "Idempotency-Key", "key-1")
		})
	}
	wg.Wait()
	if count, _ := f.coll.CountDocuments(context.Background(), bson.D{{Key: "title", Value: "once"}}); count != 1 {
		t.Fatalf("%d documents for one Idempotency-Key", count)
	}
	first := answers[0]
	for _, a := range answers {
		if a.status == 409 {
			checkProblem(t, a, "idempotency_in_progress")
			continue
		}
		if a.status != 201 || !bytes.Equal(a.body, first.body) || a.header.Get("Location") != first.header.Get("Location") || a.header.Get("ETag") != first.header.Get("ETag") {
			t.Fatalf("answers differ:\n%d %s\n%d %s", a.status, a.body, first.status, first.body)
		}
	}
	again := f.send(t, "POST", "/notes", "application/json", `{"title":"once"}`, "Idempotency-Key", "key-1")
	if again.status != 201 || !bytes.Equal(again.body, first.body) {
		t.Fatalf("retry: %d %s", again.status, again.body)
	}
	other := f.send(t, "POST", "/notes", "application/json", `{"title":"twice"}`, "Idempotency-Key", "key-1")
	if other.status != 422 {
		t.Fatalf("key reused with another body: %d %s", other.status, other.body)
	}
	checkProblem(t, other, "idempotency_key_reused")
	// The same key in another scope is another key.
	if got := f.send(t, "POST", "/g/a/notes", "application/json", `{"title":"once"}`, "Idempotency-Key", "key-1"); got.status != 201 {
		t.Fatalf("same key under another path: %d %s", got.status, got.body)
	}
}

// ndjsonNotes streams n lines of notes.
func ndjsonNotes(n int, bad int) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		var b bytes.Buffer
		for i := 1; i <= n; i++ {
			if i == bad {
				b.WriteString(`{"title":"x","colour":"red"}` + "\n")
			} else {
				fmt.Fprintf(&b, `{"title":"bulk %d","likes":%d,"tags":["t%d"]}`+"\n", i, i%100, i%7)
			}
			if b.Len() > 32<<10 || i == n {
				if _, err := pw.Write(b.Bytes()); err != nil {
					return
				}
				b.Reset()
			}
		}
		pw.Close()
	}()
	return pr
}

func TestBulkInsert(t *testing.T) {
	f := newWriteFixture(t, nil)
	post := func(body io.Reader, header ...string) response {
		req, _ := http.NewRequest("POST", f.srv.URL+"/notes/bulk", body)
		req.Header.Set("Content-Type", "application/x-ndjson")
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return response{resp.StatusCode, resp.Header, b}
	}
	got := post(ndjsonNotes(1200, 0))
	if got.status != 200 || !bytes.Contains(got.body, []byte(`"inserted":1200`)) {
		t.Fatalf("bulk: %d %s", got.status, got.body)
	}
	if n, _ := f.coll.CountDocuments(context.Background(), bson.D{}); n != 1200 {
		t.Fatalf("%d documents stored", n)
	}
	var one note
	if err := f.coll.FindOne(context.Background(), bson.D{{Key: "title", Value: "bulk 7"}}).Decode(&one); err != nil || one.Created.IsZero() || one.Tags[0] != "t0" {
		t.Fatalf("bulk document %+v: %v", one, err)
	}
	// A bad line stops the stream: the lines before it are in, none after.
	got = post(ndjsonNotes(700, 650))
	if got.status != 422 {
		t.Fatalf("bulk with a bad line: %d %s", got.status, got.body)
	}
	checkProblem(t, got, "validation_failed")
	var p struct {
		Inserted int `json:"inserted"`
		Line     int `json:"line"`
	}
	_ = json.Unmarshal(got.body, &p)
	if p.Inserted != 649 || p.Line != 650 {
		t.Fatalf("inserted %d, line %d; want 649, 650: %s", p.Inserted, p.Line, got.body)
	}
	if n, _ := f.coll.CountDocuments(context.Background(), bson.D{}); n != 1200+649 {
		t.Fatalf("%d documents stored after the failed stream", n)
	}
	// A malformed line is a 400 with its line number.
	got = post(strings.NewReader("{\"title\":\"ok\"}\n\n{\"title\":\n"))
	if got.status != 400 || !bytes.Contains(got.body, []byte(`"line":3`)) || !bytes.Contains(got.body, []byte(`"inserted":1`)) {
		t.Fatalf("malformed line: %d %s", got.status, got.body)
	}
	if got := post(strings.NewReader(`{"title":"x"}`), "Idempotency-Key", "k"); got.status != 400 {
		t.Fatalf("bulk with Idempotency-Key: %d %s", got.status, got.body)
	}
	// Each route takes its own media type, and says which in Accept-Post:
	// an operation has one answer type, which generated clients rely on.
	before, _ := f.coll.CountDocuments(context.Background(), bson.D{})
	for _, tt := range []struct{ target, ct, accept string }{
		{"/notes", "application/x-ndjson", "application/json"},
		{"/notes/bulk", "application/json", "application/x-ndjson"},
		{"/g/a/notes/bulk", "text/plain", "application/x-ndjson"},
	} {
		got := f.send(t, "POST", tt.target, tt.ct, "{\"title\":\"wrong route\"}\n")
		if got.status != 415 || got.header.Get("Accept-Post") != tt.accept {
			t.Errorf("%s to %s: %d, Accept-Post %q; want 415, %q", tt.ct, tt.target, got.status, got.header.Get("Accept-Post"), tt.accept)
		}
		checkProblem(t, got, "unsupported_media_type")
	}
	if n, _ := f.coll.CountDocuments(context.Background(), bson.D{}); n != before {
		t.Errorf("the refused bodies stored %d documents", n-before)
	}
}

// TestDuplicateKeyIsConflict: a unique index violated by an insert, a
// replacement or a patch is a 409, and nothing is written.
func TestDuplicateKeyIsConflict(t *testing.T) {
	f := newWriteFixture(t, nil)
	if _, err := f.coll.Indexes().CreateOne(context.Background(), mongo.IndexModel{
		Keys: bson.D{{Key: "title", Value: 1}}, Options: options.Index().SetUnique(true),
	}); err != nil {
		t.Fatal(err)
	}
	f.insertNote(t, "/notes", `{"title":"taken"}`)
	id, _ := f.insertNote(t, "/notes", `{"title":"free"}`)
	for _, tt := range []struct{ method, target, ct, body string }{
		{"POST", "/notes", "application/json", `{"title":"taken"}`},
		{"PUT", "/notes/" + id, "application/json", `{"title":"taken"}`},
		{"PATCH", "/notes/" + id, "application/merge-patch+json", `{"title":"taken"}`},
	} {
		got := f.send(t, tt.method, tt.target, tt.ct, tt.body)
		if got.status != 409 {
			t.Fatalf("%s %s: %d %s", tt.method, tt.target, got.status, got.body)
		}
		checkProblem(t, got, "conflict")
	}
	if n, _ := f.coll.CountDocuments(context.Background(), bson.D{{Key: "title", Value: "taken"}}); n != 1 {
		t.Fatalf("%d documents titled taken", n)
	}
}

// TestWriteClaims checks where claims are taken and that they do not pile
// up: a write that moved a document to a new version leaves its claim, and
// claims older than their lease are swept by the next writer.
func TestWriteClaims(t *testing.T) {
	ferret := isFerretDB(t)
	for _, tt := range []struct {
		name  string
		mode  mongohttp.ClaimMode
		taken bool // whether a patch takes a claim
	}{
		{"detect", mongohttp.ClaimsDetect, ferret},
		{"always", mongohttp.ClaimsAlways, true},
		{"never", mongohttp.ClaimsNever, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newWriteFixture(t, func(c *mongohttp.Collection[note]) { c.WriteClaims = tt.mode })
			claims := f.coll.Database().Collection("notes_claims")
			ctx := context.Background()
			stale := bson.D{{Key: "_id", Value: "stale/x"}, {Key: "taken", Value: time.Now().Add(-time.Hour)}}
			if _, err := claims.InsertOne(ctx, stale); err != nil {
				t.Fatal(err)
			}
			id, etag := f.insertNote(t, "/notes", `{"title":"t"}`)
			got := f.send(t, "PATCH", "/notes/"+id, "application/merge-patch+json", `{"likes":1}`, "If-Match", etag)
			if got.status != 200 {
				t.Fatalf("patch: %d %s", got.status, got.body)
			}
			var left []bson.M
			cur, err := claims.Find(ctx, bson.D{})
			if err != nil {
				t.Fatal(err)
			}
			if err := cur.All(ctx, &left); err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, c := range left {
				ids = append(ids, fmt.Sprint(c["_id"]))
			}
			if tt.taken {
				// The stale claim is swept; the patch's own stays, named
				// after the note and the version it moved away from.
				if len(ids) != 1 || !strings.HasPrefix(ids[0], id+"/") {
					t.Fatalf("claims after a patch: %q, want one of %s", ids, id)
				}
				// A writer that read the old version is refused.
				if got := f.send(t, "PATCH", "/notes/"+id, "application/merge-patch+json", `{"likes":2}`, "If-Match", etag); got.status != 412 {
					t.Fatalf("stale If-Match: %d", got.status)
				}
				return
			}
			if len(ids) != 1 || ids[0] != "stale/x" {
				t.Fatalf("claims without claiming: %q, want only the stale one untouched", ids)
			}
		})
	}
	// A mode out of range is refused by New.
	c := connect(t, mongohttp.PoolConfig{})
	_, err := mongohttp.New(mongohttp.Collection[note]{Client: c, Coll: database(t, c).Collection("x"), WriteClaims: 7})
	if err == nil || !strings.Contains(err.Error(), "WriteClaims") {
		t.Fatalf("New with WriteClaims 7: %v", err)
	}
}

// isFerretDB reports whether the test server is FerretDB, as mongohttp
// detects it.
func isFerretDB(t *testing.T) bool {
	t.Helper()
	c := connect(t, mongohttp.PoolConfig{})
	raw, err := c.Database("admin").RunCommand(context.Background(), bson.D{{Key: "buildInfo", Value: 1}}).Raw()
	if err != nil {
		t.Fatal(err)
	}
	_, err = raw.LookupErr("ferretdbVersion")
	return err == nil
}
