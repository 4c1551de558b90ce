package mongohttp_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mongohttp/mongohttp"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// The tests of the document against independent validators, and of the
// handlers against the document, live in the openapi module; these check
// how declarations and patterns become the document.

type docKinds struct {
	ID       bson.ObjectID    `bson:"_id"`
	Name     string           `bson:"name" doc:"A name."`
	Untagged int16            // lower-cased Go name
	Skipped  string           `bson:"-"`
	Count    int64            `bson:"count,omitempty"`
	Ratio    float32          `bson:"ratio"`
	When     time.Time        `bson:"when"`
	Price    bson.Decimal128  `bson:"price"`
	Blob     []byte           `bson:"blob"`
	Tags     []string         `bson:"tags"`
	Maybe    *bool            `bson:"maybe"`
	Labels   map[string]int   `bson:"labels"`
	Inner    docInner         `bson:"inner"`
	Embedded                  // a subdocument named "embedded"
	Flat     `bson:",inline"` // flattened
	Any      any              `bson:"any"`
	Problem  Problem          `bson:"problem"`
	unexported
}

// unexported is embedded and not exported: the driver leaves it out.
type unexported struct{ Hidden string }

type docInner struct {
	City   string `bson:"city"`
	Secret string `bson:"secret"`
}

// Embedded is also a named type of its own.
type Embedded struct{ E int32 }

// Problem has the name of the document's problem schema.
type Problem struct{ P string }

type Flat struct {
	F1 string `bson:"f1"`
}

// documentOf builds the document of routes and decodes it.
func documentOf(t *testing.T, api *mongohttp.API) map[string]any {
	t.Helper()
	b, err := api.Document()
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// at walks a decoded JSON document by keys and indexes.
func at(t *testing.T, v any, path ...any) any {
	t.Helper()
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("at %v: %T is not an object", path, v)
			}
			v = m[k]
		case int:
			a, ok := v.([]any)
			if !ok || k >= len(a) {
				t.Fatalf("at %v: no index %d", path, k)
			}
			v = a[k]
		}
	}
	return v
}

func TestDocumentSchemaFromStruct(t *testing.T) {
	client, kinds := offline(t, "kinds")
	res := mongohttp.Must(mongohttp.New(mongohttp.Collection[docKinds]{
		Client: client,
		Coll:   kinds,
		Policy: mongohttp.Policy{Hidden: []string{"inner.secret", "count"}},
	}))
	api := &mongohttp.API{}
	api.Handle("/kinds/{id}", res.FindOne())
	doc := documentOf(t, api)
	schemas := at(t, doc, "components", "schemas").(map[string]any)
	props := at(t, schemas, "DocKinds", "properties").(map[string]any)
	var names []string
	for n := range props {
		names = append(names, n)
	}
	slices.Sort(names)
	want := []string{"_id", "any", "blob", "embedded", "f1", "inner", "labels", "maybe", "name", "price", "problem", "ratio", "tags", "untagged", "when"}
	if !slices.Equal(names, want) {
		t.Fatalf("properties %v, want %v", names, want)
	}
	for path, want := range map[string]string{
		"_id.pattern":          "^[0-9a-f]{24}$",
		"name.description":     "A name.",
		"when.format":          "date-time",
		"price.format":         "decimal128",
		"blob.contentEncoding": "base64",
		"untagged.type":        "integer",
	} {
		field, key, _ := strings.Cut(path, ".")
		if got := at(t, props, field, key); got != want {
			t.Errorf("%s = %v, want %v", path, got, want)
		}
	}
	if got := at(t, props, "tags", "type"); !slices.Equal(toStrings(got), []string{"array", "null"}) {
		t.Errorf("tags type %v, want array or null (a nil slice)", got)
	}
	if got := at(t, props, "ratio", "anyOf", 1, "enum"); len(got.([]any)) != 3 {
		t.Errorf("ratio does not allow NaN and the infinities: %v", props["ratio"])
	}
	if got := at(t, doc, "components", "schemas", "DocKinds", "required"); !slices.Equal(toStrings(got), []string{"_id"}) {
		t.Errorf("required %v, want _id alone (answers are sparse)", got)
	}
	// inner is a named type, and its hidden field is removed from a copy.
	inner := at(t, props, "inner", "properties").(map[string]any)
	if inner["city"] == nil || inner["secret"] != nil {
		t.Errorf("inner %v: want city without secret", inner)
	}
	if at(t, schemas, "DocInner", "properties", "secret") == nil {
		t.Error("the named DocInner lost its own field")
	}
	if got := at(t, props, "embedded", "$ref"); got != "#/components/schemas/Embedded" {
		t.Errorf("embedded refers to %v", got)
	}
	// A type named like the problem schema gets a name of its own.
	if got := at(t, props, "problem", "$ref"); got != "#/components/schemas/Problem2" || at(t, schemas, "Problem", "properties", "code") == nil {
		t.Errorf("problem refers to %v", got)
	}
	ok := at(t, doc, "paths", "/kinds/{id}", "get", "responses", "200")
	if got := at(t, ok, "content", "application/json", "schema", "$ref"); got != "#/components/schemas/DocKinds" {
		t.Errorf("the 200 answer is %v", ok)
	}
	if at(t, ok, "headers", "ETag", "required") != true {
		t.Errorf("the 200 answer has no ETag: %v", ok)
	}
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

func TestDocumentOfAPolicy(t *testing.T) {
	guest := mongohttp.Policy{
		Filter: map[string]mongohttp.Type{"age": mongohttp.Int, "profile.city": mongohttp.String, "count": mongohttp.Int},
		Sort:   []string{"age"}, Hidden: []string{"secret"}, MaxLimit: 30, DefaultLimit: 7,
	}
	admin := guest
	admin.Filter = map[string]mongohttp.Type{"age": mongohttp.Int, "email": mongohttp.String}
	client, people := offline(t, "people")
	res := mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{
		Client: client, Coll: people, Policy: guest, Policies: map[string]mongohttp.Policy{"admin": admin},
		PolicyFor: func(*http.Request) string { return "" },
	}))
	params := func(policy string) map[string]map[string]any {
		api := &mongohttp.API{Policy: policy}
		api.Handle("GET /people", res.Find(), mongohttp.Doc{OperationID: "listPeople"})
		doc := documentOf(t, api)
		if at(t, doc, "paths", "/people", "head", "operationId") != "listPeopleHead" {
			t.Errorf("HEAD is not listPeopleHead")
		}
		out := map[string]map[string]any{}
		for _, p := range at(t, doc, "paths", "/people", "get", "parameters").([]any) {
			out[p.(map[string]any)["name"].(string)] = p.(map[string]any)
		}
		return out
	}
	g := params("")
	for _, name := range []string{"age", "age[gte]", "profile.city[in]", "count[eq]", "filter", "sort", "limit", "skip", "after", "count"} {
		if g[name] == nil {
			t.Errorf("guest: no parameter %s", name)
		}
	}
	// count is reserved: the field is filtered as count[eq], and count is ?count=.
	if at(t, g["count"], "schema", "enum") == nil {
		t.Errorf("count is not the count mode: %v", g["count"])
	}
	if g["fields"] != nil || g["email"] != nil || g["secret"] != nil || g["age[regex]"] != nil {
		t.Error("guest: a parameter the policy refuses is listed")
	}
	if at(t, g["limit"], "schema", "maximum") != 30.0 || at(t, g["limit"], "schema", "default") != 7.0 {
		t.Errorf("limit %v", g["limit"])
	}
	if at(t, g["profile.city[in]"], "explode") != false || at(t, g["profile.city[in]"], "style") != "form" {
		t.Errorf("profile.city[in] is not a comma-separated list: %v", g["profile.city[in]"])
	}
	if a := params("admin"); a["email"] == nil || a["profile.city"] != nil {
		t.Error("the admin document does not describe the admin policy")
	}
	api := &mongohttp.API{Policy: "nobody"}
	api.Handle("/people", res.Find())
	if _, err := api.Document(); err == nil || !strings.Contains(err.Error(), `"nobody"`) {
		t.Errorf("unknown policy: %v", err)
	}
}

func TestAPIRoutes(t *testing.T) {
	client, things := offline(t, "things")
	res := mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{Client: client, Coll: things}))
	for _, bad := range []string{"users", "get /users", "/users/{}", "/a/{id}/b/{id}"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("pattern %q was taken", bad)
				}
			}()
			(&mongohttp.API{}).Handle(bad, res.Find())
		}()
	}

	api := &mongohttp.API{Title: "T", Version: "9"}
	api.Handle("/things", res.Find())
	api.Handle("GET example.com/things/{thing:[0-9a-f]+}/{$}", res.FindOne())
	api.Handle("/other/:id", res.FindOne(), mongohttp.Doc{OperationID: "other", Summary: "Another."})
	api.Handle("POST /hook", http.NotFoundHandler(), mongohttp.Doc{ContentType: "text/plain"})
	doc := documentOf(t, api)
	for path, ops := range map[string][]string{
		"/things": {"get", "head"}, "/things/{thing}": {"get", "head"}, "/other/{id}": {"get", "head"}, "/hook": {"post"},
	} {
		for _, op := range ops {
			if at(t, doc, "paths", path, op) == nil {
				t.Errorf("no %s %s", op, path)
			}
		}
	}
	for path, id := range map[string]string{"/things": "getThings", "/things/{thing}": "getThingsByThing", "/other/{id}": "other"} {
		if got := at(t, doc, "paths", path, "get", "operationId"); got != id {
			t.Errorf("%s: operationId %v, want %s", path, got, id)
		}
	}
	// A pattern without a method: the handler answers the others 405.
	if at(t, doc, "paths", "/things", "x-mongohttp-other-methods", "allow") != "GET, HEAD" ||
		at(t, doc, "paths", "/things/{thing}", "x-mongohttp-other-methods") != nil {
		t.Error("405 extension on the wrong paths")
	}
	if at(t, doc, "paths", "/things/{thing}", "get", "parameters", 0, "name") != "thing" {
		t.Error("the id is not the pattern's wildcard")
	}

	dup := &mongohttp.API{}
	dup.Handle("/x", res.Find())
	dup.Handle("GET /x", res.Find())
	if _, err := dup.Document(); err == nil {
		t.Error("GET /x twice makes a document")
	}
	noID := &mongohttp.API{}
	noID.Handle("/x", res.FindOne())
	if _, err := noID.Document(); err == nil {
		t.Error("a FindOne without a wildcard makes a document")
	}
}

func TestAPIServesTheDocument(t *testing.T) {
	client, things := offline(t, "things")
	res := mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{Client: client, Coll: things}))
	api := &mongohttp.API{}
	api.Handle("/things", res.Find())
	api.Handle("/openapi.json", api)
	srv := httptest.NewServer(api)
	defer srv.Close()
	get := func(method, query string, header ...string) *http.Response {
		req, _ := http.NewRequest(method, srv.URL+"/openapi.json"+query, nil)
		if len(header) == 2 {
			req.Header.Set(header[0], header[1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	resp := get("GET", "")
	etag := resp.Header.Get("ETag")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || etag == "" {
		t.Fatalf("GET: %d %v", resp.StatusCode, resp.Header)
	}
	if resp := get("GET", "", "If-None-Match", etag); resp.StatusCode != 304 {
		t.Errorf("If-None-Match: %d", resp.StatusCode)
	}
	if resp := get("HEAD", ""); resp.StatusCode != 200 || resp.Header.Get("ETag") != etag {
		t.Errorf("HEAD: %d", resp.StatusCode)
	}
	if resp := get("POST", ""); resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %d", resp.StatusCode)
	}
	if resp := get("GET", "?x=1"); resp.StatusCode != 400 {
		t.Errorf("a query: %d", resp.StatusCode)
	}
	// A route added later changes the document and its ETag.
	api.Handle("/more", res.Find())
	if resp := get("GET", ""); resp.Header.Get("ETag") == etag {
		t.Error("the ETag did not change with the document")
	}
}

type account struct {
	ID       bson.ObjectID `bson:"_id"`
	Name     string        `bson:"name"`
	Tags     []string      `bson:"tags"`
	Age      int32         `bson:"age,omitempty"`
	Password string        `bson:"password"`
}

// TestDocumentOfConstraints: the constraints of a policy are on its write
// bodies (required, except in a patch; lengths, ranges, patterns, enums,
// writeOnly), a required field may not be null in a patch, and a
// write-only field is in no answer's schema.
func TestDocumentOfConstraints(t *testing.T) {
	client, coll := offline(t, "accounts")
	res := mongohttp.Must(mongohttp.New(mongohttp.Collection[account]{
		Client: client,
		Coll:   coll,
		Policy: mongohttp.Policy{
			Write: map[string]mongohttp.Type{"name": mongohttp.String, "tags": mongohttp.ArrayOf(mongohttp.String),
				"age": mongohttp.Int, "password": mongohttp.String, "home.city": mongohttp.String},
			Constraints: map[string]mongohttp.Constraint{
				"name":      {Required: true, MaxLength: 20, Pattern: "^[a-z]+$"},
				"tags":      {Enum: []string{"a", "b"}},
				"age":       {Minimum: mongohttp.Bound(0.5), Maximum: mongohttp.Bound(150)},
				"password":  {Required: true, WriteOnly: true, MinLength: 8},
				"home.city": {Required: true},
			},
		},
	}))
	api := &mongohttp.API{}
	api.Handle("/accounts", mongohttp.Methods{"POST": res.Insert()})
	api.Handle("/accounts/{id}", mongohttp.Methods{"GET": res.FindOne(), "PATCH": res.Patch()})
	doc := documentOf(t, api)
	schemas := at(t, doc, "components", "schemas").(map[string]any)
	write := at(t, schemas, "AccountsWrite").(map[string]any)
	if got := toStrings(write["required"]); !slices.Equal(got, []string{"home", "name", "password"}) {
		t.Errorf("required %v", got)
	}
	if got := toStrings(at(t, write, "properties", "home", "required")); !slices.Equal(got, []string{"city"}) {
		t.Errorf("home requires %v", got)
	}
	for path, want := range map[string]any{
		"name.maxLength": 20.0, "name.allOf": "^[a-z]+$", "password.minLength": 8.0, "password.writeOnly": true,
		"age.minimum": 1.0, "age.maximum": 150.0, "tags.items": "a",
	} {
		field, key, _ := strings.Cut(path, ".")
		got := at(t, write, "properties", field, key)
		switch key {
		case "allOf":
			got = at(t, got, 0, "pattern")
		case "items":
			got = at(t, got, "enum", 0)
		}
		if got != want {
			t.Errorf("%s = %v, want %v", path, got, want)
		}
	}
	patch := at(t, schemas, "AccountsPatch").(map[string]any)
	if patch["required"] != nil {
		t.Errorf("the patch requires %v", patch["required"])
	}
	if got := at(t, patch, "properties", "name", "type"); got != "string" {
		t.Errorf("a required field may be null in a patch: %v", got)
	}
	if got := toStrings(at(t, patch, "properties", "age", "type")); !slices.Equal(got, []string{"integer", "null"}) {
		t.Errorf("an optional field may not be null in a patch: %v", got)
	}
	if at(t, schemas, "Account", "properties", "password") != nil || at(t, schemas, "Account", "properties", "name") == nil {
		t.Errorf("the answer's schema: %v", schemas["Account"])
	}
	if got := at(t, doc, "paths", "/accounts", "post", "responses", "422", "content", "application/problem+json", "schema", "allOf", 1, "required"); !slices.Equal(toStrings(got), []string{"errors"}) {
		t.Errorf("a 422 need not list its errors: %v", got)
	}
}
