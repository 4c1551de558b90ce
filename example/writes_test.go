package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/crypto/bcrypt"
)

// send makes a request with a body to the shared service; a leak of a
// password or its hash fails the test.
func send(t *testing.T, method, path, contentType, body string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, shared.base+path, strings.NewReader(body))
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
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	// A request that names password_hash may see it named in its problem
	// answer; no answer may ever carry a hash.
	if leak := leakIn(req, resp, b); leak != "" && !strings.Contains(body, "password_hash") {
		t.Fatal(leak)
	}
	if bytes.Contains(b, []byte("$2a$")) || bytes.Contains(b, []byte("s3cret-pass")) {
		t.Fatalf("%s %s echoed the password: %s", method, path, b)
	}
	return resp, b
}

// sharedCollection gives the test the shared service's collection, and
// removes the documents it names when the test ends, so the sample data
// the other tests compare with stays as seeded.
func sharedCollection(t *testing.T, name string) (*mongo.Collection, func(id string)) {
	t.Helper()
	mc, err := mongo.Connect(options.Client().ApplyURI(shared.dbURI))
	if err != nil {
		t.Fatal(err)
	}
	coll := mc.Database(shared.dbName).Collection(name)
	var ids []bson.ObjectID
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if len(ids) > 0 {
			if _, err := coll.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}}); err != nil {
				t.Error(err)
			}
		}
		_ = mc.Disconnect(ctx)
	})
	return coll, func(id string) {
		oid, err := bson.ObjectIDFromHex(id)
		if err != nil {
			t.Fatalf("id %q: %v", id, err)
		}
		ids = append(ids, oid)
	}
}

// TestWritePosts walks a post's life through the example: a create, a
// conditional update that fails with 412, one that succeeds, and a delete.
func TestWritePosts(t *testing.T) {
	_, created := sharedCollection(t, "posts")
	author := someUser.ID.Hex()

	resp, body := send(t, "POST", "/posts", "application/json", `{"author_id":"`+unknownID+`","title":"Orphan"}`)
	p := wantProblem(t, resp, body, 422, "validation_failed")
	if !bytes.Contains(body, []byte(`"pointer":"/author_id","code":"unknown_author"`)) {
		t.Fatalf("unknown author: %s (%+v)", body, p)
	}
	resp, body = send(t, "POST", "/posts", "application/json", `{"author_id":"`+author+`","title":"Hello","body":"First post.","likes":0,"views":1}`)
	wantProblem(t, resp, body, 422, "validation_failed") // views is not writable

	resp, body = send(t, "POST", "/posts", "application/json", `{"author_id":"`+author+`","title":"Hello","body":"First post.","likes":0}`)
	if resp.StatusCode != 201 {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	var post map[string]any
	if err := json.Unmarshal(body, &post); err != nil {
		t.Fatal(err)
	}
	id := post["_id"].(string)
	created(id)
	if resp.Header.Get("Location") != "/posts/"+id || post["published"] == nil || post["author_id"] != author {
		t.Fatalf("create answered %v %s", resp.Header, body)
	}
	etag := resp.Header.Get("ETag")

	// Someone else likes it: the first client's ETag is now stale.
	resp, body = send(t, "PATCH", "/posts/"+id, "application/merge-patch+json", `{"likes":1}`, "If-Match", etag)
	if resp.StatusCode != 200 {
		t.Fatalf("first update: %d %s", resp.StatusCode, body)
	}
	resp, body = send(t, "PATCH", "/posts/"+id, "application/merge-patch+json", `{"title":"Hello, world"}`, "If-Match", etag)
	wantProblem(t, resp, body, 412, "precondition_failed")

	resp, _ = send(t, "GET", "/posts/"+id, "", "")
	resp, body = send(t, "PATCH", "/posts/"+id, "application/merge-patch+json", `{"title":"Hello, world"}`, "If-Match", resp.Header.Get("ETag"))
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte(`"title":"Hello, world"`)) || !bytes.Contains(body, []byte(`"likes":1`)) {
		t.Fatalf("second update: %d %s", resp.StatusCode, body)
	}
	resp, body = send(t, "PUT", "/posts/"+id, "application/json", `{"author_id":"`+author+`","title":"Replaced"}`)
	if resp.StatusCode != 200 || bytes.Contains(body, []byte(`"body"`)) && !bytes.Contains(body, []byte(`"body":""`)) {
		t.Fatalf("replace: %d %s", resp.StatusCode, body)
	}
	resp, body = send(t, "DELETE", "/posts/"+id, "", "")
	if resp.StatusCode != 204 {
		t.Fatalf("delete: %d %s", resp.StatusCode, body)
	}
	resp, body = send(t, "DELETE", "/posts/"+id, "", "")
	wantProblem(t, resp, body, 404, "not_found")
}

// TestCreateUser: the password reaches the database only as a bcrypt
// hash, and no answer carries either.
func TestCreateUser(t *testing.T) {
	users, created := sharedCollection(t, "users")
	resp, body := send(t, "POST", "/users", "application/json", `{"name":"Ada","email":"ada@example.com","password":"short"}`)
	wantProblem(t, resp, body, 422, "validation_failed")
	resp, body = send(t, "POST", "/users", "application/json", `{"name":"Ada","email":"ada@example.com","password_hash":"x"}`)
	wantProblem(t, resp, body, 422, "validation_failed")

	resp, body = send(t, "POST", "/users", "application/json",
		`{"name":"Ada","email":"ada@example.com","age":36,"tags":["math"],"profile":{"city":"London"},"password":"s3cret-pass"}`)
	if resp.StatusCode != 201 {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	var u map[string]any
	if err := json.Unmarshal(body, &u); err != nil {
		t.Fatal(err)
	}
	id := u["_id"].(string)
	created(id)
	if _, ok := u["password"]; ok || u["created"] == nil || u["name"] != "Ada" {
		t.Fatalf("answer %s", body)
	}
	oid, _ := bson.ObjectIDFromHex(id)
	var stored bson.M
	if err := users.FindOne(context.Background(), bson.D{{Key: "_id", Value: oid}}).Decode(&stored); err != nil {
		t.Fatal(err)
	}
	if _, ok := stored["password"]; ok {
		t.Fatal("the password was stored")
	}
	hash, _ := stored["password_hash"].(string)
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte("s3cret-pass")) != nil {
		t.Fatalf("stored hash %q does not match the password", hash)
	}
	// Every way of reading the user leaves the hash out.
	for _, path := range []string{"/users/" + id, "/users?name=Ada", "/users/" + id + "?fields=name,email"} {
		if resp, body := send(t, "GET", path, "", ""); resp.StatusCode != 200 || bytes.Contains(body, []byte("$2a$")) {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
		}
	}
}

// fieldErrors returns the "pointer code" of each member of a problem's
// errors.
func fieldErrors(t *testing.T, body []byte) []string {
	t.Helper()
	var p struct {
		Errors []struct{ Pointer, Code string } `json:"errors"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("problem %s: %v", body, err)
	}
	var out []string
	for _, e := range p.Errors {
		out = append(out, e.Pointer+" "+e.Code)
	}
	return out
}

// TestDeclaredRules: the rules the example declares as constraints are
// enforced with a pointer for each failing field, all at once, a taken
// email is a 409 naming /email, and the API document states the rules,
// so that a typed client builds bodies the service accepts.
func TestDeclaredRules(t *testing.T) {
	author := someUser.ID.Hex()
	for _, tt := range []struct {
		name, path, body string
		status           int
		want             []string
	}{
		{"a post needs an author and a title", "/posts", `{"body":"x"}`, 422, []string{"/author_id required", "/title required"}},
		{"a blank title, negative likes", "/posts", `{"author_id":"` + author + `","title":"  ","likes":-1}`, 422, []string{"/title pattern", "/likes minimum"}},
		{"likes wider than the Go field", "/posts", `{"author_id":"` + author + `","title":"t","likes":3000000000}`, 422, []string{"/likes invalid_value"}},
		{"a user's rules together", "/users", `{"name":" ","email":"nope","password":"short","zzz":1}`, 422,
			[]string{"/name pattern", "/email pattern", "/password min_length", "/zzz not_writable"}},
		{"a user needs a password", "/users", `{"name":"Ada","email":"ada@example.com"}`, 422, []string{"/password required"}},
		{"a taken email", "/users", `{"name":"Twin","email":"` + someUser.Email + `","password":"s3cret-pass"}`, 409, []string{"/email duplicate"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := send(t, "POST", tt.path, "application/json", tt.body)
			if resp.StatusCode != tt.status {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			if got := fieldErrors(t, body); !slices.Equal(got, tt.want) {
				t.Fatalf("errors %q, want %q", got, tt.want)
			}
		})
	}

	resp, body := send(t, "GET", "/openapi.json", "", "")
	if resp.StatusCode != 200 {
		t.Fatalf("document: %d", resp.StatusCode)
	}
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Required   []string `json:"required"`
				Properties map[string]struct {
					WriteOnly bool `json:"writeOnly"`
					MinLength int  `json:"minLength"`
					Pattern   string
					AllOf     []struct{ Pattern string } `json:"allOf"`
				} `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	schemas := doc.Components.Schemas
	for name, want := range map[string][]string{
		"UsersWrite": {"email", "name", "password"}, "PostsWrite": {"author_id", "title"}, "PostsPatch": nil,
	} {
		if got := schemas[name].Required; !slices.Equal(got, want) {
			t.Errorf("%s requires %q, want %q", name, got, want)
		}
	}
	if pw := schemas["UsersWrite"].Properties["password"]; !pw.WriteOnly || pw.MinLength != 8 {
		t.Errorf("UsersWrite's password: %+v", pw)
	}
	if email := schemas["UsersWrite"].Properties["email"]; len(email.AllOf) != 1 || email.AllOf[0].Pattern != `^[^@ ]+@[^@ ]+$` {
		t.Errorf("UsersWrite's email: %+v", email)
	}
	if _, ok := schemas["Users"].Properties["password"]; ok || schemas["Users"].Properties == nil {
		t.Errorf("the users' response schema describes the write-only password: %+v", schemas["Users"])
	}
}

// TestNumbersAgreeWithTheDocument: a post's likes is an int32 in Post, so
// the document says int32 with its range for writes and answers, and the
// service refuses what an int32 cannot hold exactly; a user's age, kept in
// raw documents, takes the integers every JSON client reads exactly,
// ±(2^53−1), as the document says.
func TestNumbersAgreeWithTheDocument(t *testing.T) {
	_, body := fetch(t, "GET", "/openapi.json")
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]json.RawMessage `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	type integer struct {
		Type    any          `json:"type"`
		Format  string       `json:"format"`
		Minimum *json.Number `json:"minimum"`
		Maximum *json.Number `json:"maximum"`
	}
	for _, c := range []struct{ schema, field, format, min, max string }{
		{"PostsWrite", "likes", "int32", "-2147483648", "2147483647"},
		{"Post", "likes", "int32", "-2147483648", "2147483647"},
		{"UsersWrite", "age", "int64", "-9007199254740991", "9007199254740991"},
	} {
		var got integer
		if err := json.Unmarshal(doc.Components.Schemas[c.schema].Properties[c.field], &got); err != nil {
			t.Fatalf("%s.%s: %v", c.schema, c.field, err)
		}
		if got.Format != c.format || got.Minimum == nil || got.Maximum == nil || got.Minimum.String() != c.min || got.Maximum.String() != c.max {
			t.Errorf("%s.%s is %+v; want %s from %s to %s", c.schema, c.field, got, c.format, c.min, c.max)
		}
	}
	author := someUser.ID.Hex()
	for _, c := range []struct{ path, body, pointer string }{
		{"/posts", `{"author_id":"` + author + `","title":"n","likes":3000000000}`, "/likes"},
		{"/posts", `{"author_id":"` + author + `","title":"n","likes":1e-400}`, "/likes"},
		{"/posts", `{"author_id":"` + author + `","title":"n","likes":1.5}`, "/likes"},
		{"/users", `{"name":"n","email":"n@example.com","password":"long enough","age":9007199254740993}`, "/age"},
	} {
		resp, body := send(t, "POST", c.path, "application/json", c.body)
		wantProblem(t, resp, body, 422, "validation_failed")
		if !bytes.Contains(body, []byte(`"pointer":"`+c.pointer+`","code":"invalid_value"`)) {
			t.Errorf("POST %s %s: %s", c.path, c.body, body)
		}
	}
}

// TestDistinctFieldPatches: four clients patch one post 25 times each,
// without If-Match, each its own field. At most 5 % may give up with 409
// "kept changing", and no accepted patch is lost: each field ends at its
// writer's last accepted value.
func TestDistinctFieldPatches(t *testing.T) {
	coll, created := sharedCollection(t, "posts")
	resp, body := send(t, "POST", "/posts", "application/json", `{"author_id":"`+someUser.ID.Hex()+`","title":"t","body":"b","likes":0}`)
	if resp.StatusCode != 201 {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	var post struct {
		ID string `json:"_id"`
	}
	if err := json.Unmarshal(body, &post); err != nil {
		t.Fatal(err)
	}
	created(post.ID)
	const each = 25
	day := func(i int) time.Time { return time.Date(2025, 1, i, 0, 0, 0, 0, time.UTC) }
	writers := []struct {
		field string
		value func(i int) any
	}{
		{"title", func(i int) any { return fmt.Sprintf("title %d", i) }},
		{"body", func(i int) any { return fmt.Sprintf("body %d", i) }},
		{"likes", func(i int) any { return int32(i) }},
		{"published", func(i int) any { return day(i) }},
	}
	lastOK := make([]int, len(writers))
	gaveUp := make([]int, len(writers))
	var wg sync.WaitGroup
	for w, wr := range writers {
		wg.Go(func() {
			for i := 1; i <= each; i++ {
				patch, _ := json.Marshal(map[string]any{wr.field: wr.value(i)})
				resp, body := send(t, "PATCH", "/posts/"+post.ID, "application/merge-patch+json", string(patch))
				switch resp.StatusCode {
				case 200:
					lastOK[w] = i
				case 409:
					gaveUp[w]++
				default:
					t.Errorf("%s %d: %d %s", wr.field, i, resp.StatusCode, body)
				}
			}
		})
	}
	wg.Wait()
	total := 0
	for _, n := range gaveUp {
		total += n
	}
	t.Logf("%d of %d patches gave up; per field %v", total, len(writers)*each, gaveUp)
	if total*100 > 5*len(writers)*each {
		t.Errorf("%d of %d patches gave up with 409; want at most 5 %%", total, len(writers)*each)
	}
	var stored bson.M
	oid, _ := bson.ObjectIDFromHex(post.ID)
	if err := coll.FindOne(context.Background(), bson.D{{Key: "_id", Value: oid}}).Decode(&stored); err != nil {
		t.Fatal(err)
	}
	for w, wr := range writers {
		if lastOK[w] == 0 {
			continue
		}
		want := wr.value(lastOK[w])
		got := stored[wr.field]
		if d, ok := got.(bson.DateTime); ok {
			got = d.Time().UTC().Format(time.RFC3339)
			want = want.(time.Time).Format(time.RFC3339)
		}
		if got != want {
			t.Errorf("%s: stored %v, want its writer's last accepted value %v (a lost update)", wr.field, got, want)
		}
	}
}
