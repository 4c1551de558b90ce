package integration_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/mongohttp/mongohttp"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// problemErrors returns the "pointer code" of each member of a problem's
// errors.
func problemErrors(t *testing.T, r response) []string {
	t.Helper()
	var p struct {
		Errors []mongohttp.FieldError `json:"errors"`
	}
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("problem %s: %v", r.body, err)
	}
	var out []string
	for _, e := range p.Errors {
		out = append(out, e.Pointer+" "+e.Code)
	}
	return out
}

// wantFieldErrors checks a problem's status and the "pointer code" of its
// errors.
func wantFieldErrors(t *testing.T, got response, status int, want []string) {
	t.Helper()
	if got.status != status {
		t.Fatalf("%d %s, want %d", got.status, got.body, status)
	}
	if errs := problemErrors(t, got); !slices.Equal(errs, want) {
		t.Fatalf("errors %q, want %q", errs, want)
	}
}

// constrainedNotes declares the notes' rules as constraints: a title of 2
// to 40 characters, likes from 0, tags of at most 5 characters.
func constrainedNotes(c *mongohttp.Collection[note]) {
	c.Policy.Constraints = map[string]mongohttp.Constraint{
		"title": {Required: true, MinLength: 2, MaxLength: 40},
		"likes": {Minimum: mongohttp.Bound(0)},
		"tags":  {MaxLength: 5},
	}
}

// TestConstraintsAnswer422WithPointers: a policy's constraints are
// enforced on every write, and all of a body's failures, of the policy
// and of its constraints, come back in one 422 naming each field.
func TestConstraintsAnswer422WithPointers(t *testing.T) {
	f := newWriteFixture(t, constrainedNotes)
	id, _ := f.insertNote(t, "/notes", `{"title":"kept","likes":2}`)
	for _, tt := range []struct {
		name, method, target, ct, body string
		want                           []string
	}{
		{"missing", "POST", "/notes", "application/json", `{"likes":1}`, []string{"/title required"}},
		{"all together", "POST", "/notes", "application/json", `{"title":"x","likes":-1,"tags":["ok","toolong"],"zzz":1}`,
			[]string{"/title min_length", "/likes minimum", "/tags/1 max_length", "/zzz not_writable"}},
		{"replace needs the title", "PUT", "/notes/" + id, "application/json", `{"likes":1}`, []string{"/title required"}},
		{"patch keeps the rules", "PATCH", "/notes/" + id, "application/merge-patch+json", `{"likes":-5}`, []string{"/likes minimum"}},
		{"patch cannot remove the title", "PATCH", "/notes/" + id, "application/merge-patch+json", `{"title":null}`, []string{"/title required"}},
		{"scoped insert", "POST", "/g/a/notes", "application/json", `{"title":"x","group":"b"}`,
			[]string{"/title min_length", "/group not_writable"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := f.send(t, tt.method, tt.target, tt.ct, tt.body)
			wantFieldErrors(t, got, 422, tt.want)
			checkProblem(t, got, "validation_failed")
		})
	}
	// What the rules allow goes through; a patch need not name the title.
	if got := f.send(t, "PATCH", "/notes/"+id, "application/merge-patch+json", `{"likes":0}`); got.status != 200 {
		t.Fatalf("patch within the rules: %d %s", got.status, got.body)
	}
	// A bulk line is checked as a single body.
	got := f.send(t, "POST", "/notes/bulk", "application/x-ndjson", "{\"title\":\"ok\"}\n{\"likes\":-1}\n")
	if got.status != 422 || !strings.Contains(string(got.body), `"line":2`) {
		t.Fatalf("bulk: %d %s", got.status, got.body)
	}
	wantFieldErrors(t, got, 422, []string{"/likes minimum", "/title required"})
}

// TestEvery422NamesItsFields: every way a write is answered 422 carries
// errors with pointers, whether the library or the service refuses it.
func TestEvery422NamesItsFields(t *testing.T) {
	f := newWriteFixture(t, func(c *mongohttp.Collection[note]) {
		validate := c.Validate
		c.Validate = func(r *http.Request, n *note) error {
			if n.Title == "plain" { // a service that answers 422 without fields
				return mongohttp.ErrValidation.Detailf("no plain titles")
			}
			return validate(r, n)
		}
	})
	id, _ := f.insertNote(t, "/notes", `{"title":"kept"}`)
	f.send(t, "POST", "/notes", "application/json", `{"title":"first"}`, "Idempotency-Key", "k422")
	for _, tt := range []struct {
		name, method, target, ct, body, key string
		want                                []string
	}{
		{"wider than the Go field", "POST", "/notes", "application/json", `{"title":"t","likes":3000000000}`, "", []string{"/likes invalid_value"}},
		{"wider than the Go field, patched", "PATCH", "/notes/" + id, "application/merge-patch+json", `{"likes":-3000000000}`, "", []string{"/likes invalid_value"}},
		{"policy", "POST", "/notes", "application/json", `{"title":1}`, "", []string{"/title invalid_type"}},
		{"Validate's fields", "POST", "/notes", "application/json", `{"title":" "}`, "", []string{"/title required"}},
		{"Validate without fields", "POST", "/notes", "application/json", `{"title":"plain"}`, "", []string{" validation_failed"}},
		{"Idempotency-Key reused", "POST", "/notes", "application/json", `{"title":"second"}`, "k422", []string{" idempotency_key_reused"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got response
			if tt.key != "" {
				got = f.send(t, tt.method, tt.target, tt.ct, tt.body, "Idempotency-Key", tt.key)
			} else {
				got = f.send(t, tt.method, tt.target, tt.ct, tt.body)
			}
			wantFieldErrors(t, got, 422, tt.want)
		})
	}
}

// member is a typed document whose zero values are real values: age 0
// and admin false are stored and served as sent, whatever the omitempty
// tags say, and a field a client left out stays out. Password is
// write-only: Prepare sees it, nothing stores or serves it.
type member struct {
	ID           bson.ObjectID  `bson:"_id" json:"_id"`
	Name         string         `bson:"name" json:"name"`
	Age          int32          `bson:"age,omitempty" json:"age,omitempty"`
	Admin        bool           `bson:"admin,omitempty" json:"admin,omitempty"`
	Nick         string         `bson:"nick" json:"nick"`
	Password     string         `bson:"password" json:"password"`
	PasswordHash string         `bson:"password_hash,omitempty" json:"-"`
	Profile      *memberProfile `bson:"profile,omitempty" json:"profile,omitempty"`
}

// memberProfile's zero values round-trip too: nested omitempty fields.
type memberProfile struct {
	City  string `bson:"city,omitempty" json:"city,omitempty"`
	Score int32  `bson:"score,omitempty" json:"score,omitempty"`
}

func TestWriteOnlyFieldsAndZeroValues(t *testing.T) {
	c := connect(t, mongohttp.PoolConfig{})
	coll := database(t, c).Collection("members")
	var prepared []string // the passwords Prepare saw
	res := mongohttp.Must(mongohttp.New(mongohttp.Collection[member]{
		Client: c,
		Coll:   coll,
		Policy: mongohttp.Policy{
			Hidden: []string{"password_hash"},
			Write: map[string]mongohttp.Type{"name": mongohttp.String, "age": mongohttp.Int, "admin": mongohttp.Bool,
				"nick": mongohttp.String, "password": mongohttp.String, "profile.city": mongohttp.String, "profile.score": mongohttp.Int},
			Constraints: map[string]mongohttp.Constraint{"password": {WriteOnly: true, MinLength: 8}},
		},
		Prepare: func(r *http.Request, op mongohttp.WriteOp, m *member) error {
			prepared = append(prepared, m.Password)
			if m.Password != "" {
				m.PasswordHash = "hash:" + m.Password
			}
			return nil // the password is not cleared here: it is write-only
		},
	}))
	mux := http.NewServeMux()
	mux.Handle("/members", mongohttp.Methods{"POST": res.Insert(), "GET": res.Find()})
	mux.Handle("/members/{id}", mongohttp.Methods{"GET": res.FindOne(), "PUT": res.Replace(), "PATCH": res.Patch()})
	f := &writeFixture{coll: coll, srv: httptest.NewServer(mux)}
	t.Cleanup(f.srv.Close)

	created := f.send(t, "POST", "/members", "application/json", `{"name":"zed","age":0,"admin":false,"nick":"","password":"s3cret-pw","profile":{"city":"","score":0}}`)
	if created.status != 201 {
		t.Fatalf("insert: %d %s", created.status, created.body)
	}
	doc := jsonDoc(t, created)
	id, _ := doc["_id"].(string)
	for k, want := range map[string]any{"age": 0.0, "admin": false, "nick": ""} {
		if v, ok := doc[k]; !ok || v != want {
			t.Errorf("answer's %s: %v (present %v), want %v: %s", k, v, ok, want, created.body)
		}
	}
	if p, _ := doc["profile"].(map[string]any); p == nil || p["city"] != "" || p["score"] != 0.0 {
		t.Errorf("answer's profile: %v, want city \"\" and score 0: %s", doc["profile"], created.body)
	}
	m := f.stored(t, id)
	if m["age"] != int32(0) || m["admin"] != false || m["nick"] != "" || m["password_hash"] != "hash:s3cret-pw" {
		t.Errorf("stored %v", m)
	}
	if p, _ := m["profile"].(bson.D); len(p) != 2 {
		t.Errorf("stored profile %v, want city and score", m["profile"])
	}
	if _, ok := m["password"]; ok {
		t.Errorf("the write-only password was stored: %v", m)
	}
	if len(prepared) != 1 || prepared[0] != "s3cret-pw" {
		t.Errorf("Prepare saw passwords %q", prepared)
	}
	if get := f.send(t, "GET", "/members/"+id, "", ""); string(get.body) != string(created.body) {
		t.Errorf("GET differs from the insert's answer:\n%s\n%s", get.body, created.body)
	}

	// Fields a client leaves out stay out, the password included (no "").
	bare := f.send(t, "POST", "/members", "application/json", `{"name":"amy"}`)
	if bare.status != 201 {
		t.Fatalf("insert: %d %s", bare.status, bare.body)
	}
	bareID, _ := jsonDoc(t, bare)["_id"].(string)
	m = f.stored(t, bareID)
	for _, k := range []string{"age", "admin", "password", "password_hash"} {
		if _, ok := m[k]; ok {
			t.Errorf("stored %s for a body without it: %v", k, m)
		}
	}
	// A patch to a zero value stores and serves it.
	f.send(t, "PATCH", "/members/"+bareID, "application/merge-patch+json", `{"age":41}`)
	patched := f.send(t, "PATCH", "/members/"+bareID, "application/merge-patch+json", `{"age":0}`)
	if v, ok := jsonDoc(t, patched)["age"]; patched.status != 200 || !ok || v != 0.0 {
		t.Fatalf("patch to 0: %d %s", patched.status, patched.body)
	}
	if m = f.stored(t, bareID); m["age"] != int32(0) {
		t.Errorf("stored after the patch: %v", m)
	}
	// The write-only field is checked like any other.
	short := f.send(t, "POST", "/members", "application/json", `{"name":"x","password":"short"}`)
	wantFieldErrors(t, short, 422, []string{"/password min_length"})
	// Another program's stored password is never served.
	if _, err := coll.UpdateOne(context.Background(), bson.D{{Key: "name", Value: "amy"}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "password", Value: "legacy"}}}}); err != nil {
		t.Fatal(err)
	}
	f.send(t, "GET", "/members/"+bareID, "", "") // send fails on any "password":
	f.send(t, "GET", "/members", "", "")
}

// TestDuplicateKeyNamesTheField: a write that breaks a unique index is a
// 409 whose errors name the index's fields, for inserts, replacements,
// patches, creations by PUT and bulk lines, and compound indexes.
func TestDuplicateKeyNamesTheField(t *testing.T) {
	f := newWriteFixture(t, nil)
	ctx := context.Background()
	if _, err := f.coll.Indexes().CreateMany(ctx, []mongo.IndexModel{
		{Keys: bson.D{{Key: "title", Value: 1}}, Options: options.Index().SetUnique(true)},
		{Keys: bson.D{{Key: "city.name", Value: 1}, {Key: "likes", Value: -1}}, Options: options.Index().SetUnique(true).SetName("place")},
	}); err != nil {
		t.Fatal(err)
	}
	// Each write breaks one index only: no two notes share their likes
	// unless they are meant to.
	f.insertNote(t, "/notes", `{"title":"taken","likes":1,"city":{"name":"Oslo"}}`)
	id, _ := f.insertNote(t, "/notes", `{"title":"free","likes":2}`)
	fresh := bson.NewObjectID().Hex()
	for _, tt := range []struct {
		name, method, target, ct, body string
		want                           []string
	}{
		{"insert", "POST", "/notes", "application/json", `{"title":"taken","likes":3}`, []string{"/title duplicate"}},
		{"replace", "PUT", "/notes/" + id, "application/json", `{"title":"taken","likes":2}`, []string{"/title duplicate"}},
		{"patch", "PATCH", "/notes/" + id, "application/merge-patch+json", `{"title":"taken"}`, []string{"/title duplicate"}},
		{"create by PUT", "PUT", "/notes/" + fresh, "application/json", `{"title":"taken","likes":4}`, []string{"/title duplicate"}},
		{"compound", "POST", "/notes", "application/json", `{"title":"new","likes":1,"city":{"name":"Oslo"}}`, []string{"/city/name duplicate", "/likes duplicate"}},
		{"bulk line", "POST", "/notes/bulk", "application/x-ndjson", "{\"title\":\"b1\",\"likes\":5}\n{\"title\":\"b1\",\"likes\":6}\n", []string{"/title duplicate"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := f.send(t, tt.method, tt.target, tt.ct, tt.body)
			wantFieldErrors(t, got, 409, tt.want)
			checkProblem(t, got, "conflict")
		})
	}
	// An index made after the first conflict is found too.
	if _, err := f.coll.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys: bson.D{{Key: "owner", Value: 1}}, Options: options.Index().SetUnique(true),
	}); err != nil {
		t.Fatal(err)
	}
	const owner = `"owner":"65f0a1b2c3d4e5f6a7b8c9d0"`
	f.insertNote(t, "/notes", `{"title":"o1","likes":7,`+owner+`}`)
	got := f.send(t, "POST", "/notes", "application/json", `{"title":"o2","likes":8,`+owner+`}`)
	wantFieldErrors(t, got, 409, []string{"/owner duplicate"})
}
