package integration_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mongohttp/mongohttp"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// person is the typed document of the handler tests. Secret is hidden by
// the policy; a typed handler must not output it even zero-valued.
type person struct {
	ID      bson.ObjectID `bson:"_id"`
	Name    string        `bson:"name"`
	Age     int32         `bson:"age"`
	Group   string        `bson:"group"`
	Tags    []string      `bson:"tags"`
	Created time.Time     `bson:"created"`
	Secret  string        `bson:"secret"`
}

var peoplePolicy = mongohttp.Policy{
	Filter: map[string]mongohttp.Type{
		"name": mongohttp.String, "age": mongohttp.Int, "tags": mongohttp.String,
		"created": mongohttp.Date, "group": mongohttp.String,
	},
	Sort:         []string{"age", "name", "created"},
	Project:      []string{"name", "age", "tags"},
	Hidden:       []string{"secret"},
	DefaultLimit: 10,
	MaxLimit:     50,
	MaxSkip:      100,
	CursorKey:    []byte("0123456789abcdef-handler-tests"),
}

// people seeds n deterministic people and returns them in insertion (and
// _id) order.
func people(t *testing.T, coll *mongo.Collection, n int) []person {
	t.Helper()
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	out := make([]person, n)
	docs := make([]any, n)
	for i := range n {
		out[i] = person{
			ID:      bson.NewObjectID(),
			Name:    fmt.Sprintf("p%03d", i),
			Age:     int32(20 + i%30),
			Group:   []string{"a", "b", "c"}[i%3],
			Tags:    []string{[]string{"go", "db", "web"}[i%3], "all"},
			Created: base.Add(time.Duration(i) * time.Hour),
			Secret:  fmt.Sprintf("s3cr3t-%d", i),
		}
		docs[i] = out[i]
	}
	if _, err := coll.InsertMany(context.Background(), docs); err != nil {
		t.Fatal(err)
	}
	return out
}

// fixture is a seeded collection served by Find and FindOne on a ServeMux.
type fixture struct {
	client    *mongohttp.Client
	coll      *mongo.Collection
	people    []person
	srv       *httptest.Server
	baseCalls atomic.Int64 // calls of the /groups base filter
}

func newFixture(t *testing.T, n int) *fixture {
	t.Helper()
	c := connect(t, mongohttp.PoolConfig{})
	coll := database(t, c).Collection("people")
	f := &fixture{client: c, coll: coll, people: people(t, coll, n)}
	mux := http.NewServeMux()
	mux.Handle("/people", mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{Client: c, Coll: coll, Policy: peoplePolicy})).Find())
	mux.Handle("/typed", mongohttp.Must(mongohttp.New(mongohttp.Collection[person]{Client: c, Coll: coll, Policy: peoplePolicy})).Find())
	mux.Handle("/people/{id}", mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{Client: c, Coll: coll, Policy: peoplePolicy})).FindOne())
	mux.Handle("/typed/{id}", mongohttp.Must(mongohttp.New(mongohttp.Collection[person]{Client: c, Coll: coll, Policy: peoplePolicy})).FindOne())
	mux.Handle("/groups/{group}/people", mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{Client: c, Coll: coll,
		Policy: peoplePolicy,
		BaseFilter: func(r *http.Request) (bson.D, error) {
			f.baseCalls.Add(1)
			return bson.D{{Key: "group", Value: r.PathValue("group")}}, nil
		},
	})).Find())
	mux.Handle("/groups/{group}/people/{id}", mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{Client: c, Coll: coll,
		Policy: peoplePolicy,
		BaseFilter: func(r *http.Request) (bson.D, error) {
			return bson.D{{Key: "group", Value: r.PathValue("group")}}, nil
		},
	})).FindOne())
	mux.Handle("/shout", mongohttp.Must(mongohttp.New(mongohttp.Collection[person]{Client: c, Coll: coll,
		Policy: peoplePolicy,
		Transform: func(r *http.Request, p *person) error {
			p.Name = strings.ToUpper(p.Name)
			return nil
		},
	})).Find())
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request; target is a path with its raw query.
func (f *fixture) do(t *testing.T, method, target string, header ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+target, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(body, []byte("s3cr3t")) || bytes.Contains(body, []byte(`"secret"`)) {
		t.Fatalf("%s %s leaked the hidden field: %s", method, target, body)
	}
	return response{resp.StatusCode, resp.Header, body}
}

// docs decodes a JSON array answer.
func (r response) docs(t *testing.T) []map[string]any {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("status %d, want 200: %s", r.status, r.body)
	}
	var out []map[string]any
	if err := json.Unmarshal(r.body, &out); err != nil {
		t.Fatalf("%v: %s", err, r.body)
	}
	return out
}

func names(docs []map[string]any) []string {
	out := make([]string, len(docs))
	for i, d := range docs {
		out[i], _ = d["name"].(string)
	}
	return out
}

// want filters the seeded people and returns their names in _id order.
func want(ps []person, keep func(person) bool) []string {
	var out []string
	for _, p := range ps {
		if keep(p) {
			out = append(out, p.Name)
		}
	}
	return out
}

func TestFindQueries(t *testing.T) {
	f := newFixture(t, 60)
	all := func(person) bool { return true }
	tests := []struct {
		name   string
		target string
		want   []string
	}{
		{"default page", "/people", want(f.people, all)[:10]},
		{"limit", "/people?limit=3", want(f.people, all)[:3]},
		{"skip", "/people?skip=5&limit=2", want(f.people, all)[5:7]},
		{"equality", "/people?age=35&limit=50", want(f.people, func(p person) bool { return p.Age == 35 })},
		{"range", "/people?age[gte]=30&age[lt]=33&limit=50", want(f.people, func(p person) bool { return p.Age >= 30 && p.Age < 33 })},
		{"in", "/people?name[in]=p001,p002,p999", []string{"p001", "p002"}},
		{"nin and array field", "/people?tags=go&age[nin]=20,23&limit=50", want(f.people, func(p person) bool { return p.Tags[0] == "go" && p.Age != 20 && p.Age != 23 })},
		{"ne", "/people?group[ne]=a&age=21&limit=50", want(f.people, func(p person) bool { return p.Group != "a" && p.Age == 21 })},
		{"exists", "/people?name[exists]=false", nil},
		{"date", "/people?created[lt]=2024-01-01T03:00:00Z", []string{"p000", "p001", "p002"}},
		{"filter JSON", `/people?limit=50&filter=` + url.QueryEscape(`{"$or":[{"age":20},{"name":"p007"}]}`), want(f.people, func(p person) bool { return p.Age == 20 || p.Name == "p007" })},
		{"filter JSON and params", `/people?limit=50&group=b&filter=` + url.QueryEscape(`{"age":{"$in":[21,24]}}`), want(f.people, func(p person) bool { return p.Group == "b" && (p.Age == 21 || p.Age == 24) })},
		{"base filter", "/groups/c/people?limit=50", want(f.people, func(p person) bool { return p.Group == "c" })},
		{"base filter narrowed", "/groups/c/people?limit=50&age[lt]=25", want(f.people, func(p person) bool { return p.Group == "c" && p.Age < 25 })},
		{"base filter not widened", "/groups/c/people?limit=50&group=a", nil},
		{"base filter not widened by or", `/groups/c/people?limit=50&filter=` + url.QueryEscape(`{"$or":[{"group":"a"},{"group":"b"}]}`), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := names(f.do(t, "GET", tt.target).docs(t))
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got %v\nwant %v", got, tt.want)
			}
		})
	}
}

func TestFindSortAndProjection(t *testing.T) {
	f := newFixture(t, 40)
	docs := f.do(t, "GET", "/people?sort=-age,name&limit=50").docs(t)
	for i := 1; i < len(docs); i++ {
		a, b := docs[i-1], docs[i]
		if a["age"].(float64) < b["age"].(float64) ||
			(a["age"] == b["age"] && a["name"].(string) > b["name"].(string)) {
			t.Fatalf("not sorted by -age,name at %d: %v then %v", i, a, b)
		}
	}
	if len(docs) != 40 {
		t.Fatalf("got %d documents, want 40", len(docs))
	}
	for _, target := range []string{"/people", "/typed"} {
		// A typed handler must not invent zero values for the fields the
		// projection left out.
		for _, d := range f.do(t, "GET", target+"?fields=name,tags&limit=50").docs(t) {
			keys := slices.Sorted(mapsKeys(d))
			if !slices.Equal(keys, []string{"_id", "name", "tags"}) {
				t.Fatalf("%s?fields=name,tags gave keys %v", target, keys)
			}
		}
	}
	one := f.do(t, "GET", "/typed/"+f.people[0].ID.Hex()+"?fields=name")
	if raw := f.do(t, "GET", "/people/"+f.people[0].ID.Hex()+"?fields=name"); !bytes.Equal(one.body, raw.body) {
		t.Fatalf("typed FindOne with fields=name: %s, raw: %s", one.body, raw.body)
	}
}

func mapsKeys(m map[string]any) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func TestFindFormats(t *testing.T) {
	f := newFixture(t, 30)
	raw := f.do(t, "GET", "/people?limit=5&sort=name")
	typed := f.do(t, "GET", "/typed?limit=5&sort=name")
	if !bytes.Equal(raw.body, typed.body) {
		t.Fatalf("raw and typed answers differ:\nraw   %s\ntyped %s", raw.body, typed.body)
	}
	if ct := raw.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	p0 := f.people[0]
	first := raw.docs(t)[0]
	if first["_id"] != p0.ID.Hex() || first["created"] != p0.Created.Format("2006-01-02T15:04:05.000Z") {
		t.Fatalf("first document %v: want _id as hex and created as RFC 3339 with milliseconds", first)
	}

	nd := f.do(t, "GET", "/people?limit=5&sort=name", "Accept", "application/x-ndjson")
	if ct := nd.header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Fatalf("NDJSON Content-Type %q", ct)
	}
	lines := strings.Split(strings.TrimSuffix(string(nd.body), "\n"), "\n")
	if len(lines) != 5 {
		t.Fatalf("NDJSON has %d lines, want 5: %s", len(lines), nd.body)
	}
	var arr []json.RawMessage
	_ = json.Unmarshal(raw.body, &arr)
	for i, line := range lines {
		if !bytes.Equal(compact(t, []byte(line)), compact(t, arr[i])) {
			t.Fatalf("NDJSON line %d %s differs from array element %s", i, line, arr[i])
		}
	}

	head := f.do(t, "HEAD", "/people?limit=5&count=exact")
	if head.status != 200 || len(head.body) != 0 || head.header.Get("Link") == "" || head.header.Get("X-Total-Count") != "30" {
		t.Fatalf("HEAD: status %d, body %q, headers %v", head.status, head.body, head.header)
	}

	shout := f.do(t, "GET", "/shout?limit=1").docs(t)
	if shout[0]["name"] != strings.ToUpper(f.people[0].Name) {
		t.Fatalf("Transform not applied: %v", shout[0])
	}

	post := f.do(t, "POST", "/people")
	if post.status != 405 || post.header.Get("Allow") != "GET, HEAD" {
		t.Fatalf("POST: status %d, Allow %q", post.status, post.header.Get("Allow"))
	}
	checkProblem(t, post, "method_not_allowed")
}

func compact(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestFindCount(t *testing.T) {
	f := newFixture(t, 45)
	tests := []struct {
		target string
		want   string
	}{
		{"/people?count=exact", "45"},
		{"/people?count=exact&age[lt]=25", fmt.Sprint(len(want(f.people, func(p person) bool { return p.Age < 25 })))},
		{"/groups/a/people?count=exact", "15"},
		{"/people?count=estimated", "45"},
		{"/people", ""},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			r := f.do(t, "GET", tt.target)
			if got := r.header.Get("X-Total-Count"); got != tt.want {
				t.Fatalf("X-Total-Count = %q, want %q", got, tt.want)
			}
		})
	}
	// The base filter runs once per request, count or not.
	before := f.baseCalls.Load()
	f.do(t, "GET", "/groups/a/people?count=exact")
	if n := f.baseCalls.Load() - before; n != 1 {
		t.Fatalf("BaseFilter ran %d times for one request", n)
	}
	// Every page of a walk reports the same total.
	r := f.do(t, "GET", "/people?count=exact&limit=20")
	next := nextLink(t, r.header)
	r2 := f.do(t, "GET", next)
	if r2.header.Get("X-Total-Count") != "45" {
		t.Fatalf("second page X-Total-Count = %q, want 45", r2.header.Get("X-Total-Count"))
	}
}

var linkRE = regexp.MustCompile(`^<([^>]+)>; rel="next"$`)

// nextLink returns the target of the Link rel="next" header, or "" if none.
func nextLink(t *testing.T, h http.Header) string {
	t.Helper()
	l := h.Get("Link")
	if l == "" {
		return ""
	}
	m := linkRE.FindStringSubmatch(l)
	if m == nil {
		t.Fatalf("malformed Link header %q", l)
	}
	return m[1]
}

func TestKeysetPagingWhileInserting(t *testing.T) {
	for _, sort := range []string{"", "&sort=-age,name", "&sort=created"} {
		t.Run("sort"+sort, func(t *testing.T) {
			f := newFixture(t, 57)
			seen := map[string]int{}
			target := "/people?limit=7" + sort
			pages := 0
			for target != "" {
				r := f.do(t, "GET", target)
				for _, d := range r.docs(t) {
					seen[d["_id"].(string)]++
				}
				if strings.Contains(target, "skip=") {
					t.Fatalf("next link uses skip: %s", target)
				}
				target = nextLink(t, r.header)
				pages++
				if pages > 30 {
					t.Fatal("paging does not end")
				}
				// Documents inserted while paging, before and after the
				// current position, must not duplicate or hide anything.
				_, err := f.coll.InsertOne(context.Background(), person{
					ID: bson.NewObjectID(), Name: fmt.Sprintf("new%02d", pages), Age: int32(20 + pages%30),
					Created: time.Date(2023, 1, 1, pages, 0, 0, 0, time.UTC),
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			for id, n := range seen {
				if n > 1 {
					t.Fatalf("document %s served %d times", id, n)
				}
			}
			for _, p := range f.people {
				if seen[p.ID.Hex()] != 1 {
					t.Fatalf("document %s (%s) that existed before paging was not served", p.ID.Hex(), p.Name)
				}
			}
		})
	}
}

func TestFindOne(t *testing.T) {
	f := newFixture(t, 10)
	p := f.people[3]
	ok := f.do(t, "GET", "/people/"+p.ID.Hex())
	if ok.status != 200 {
		t.Fatalf("status %d: %s", ok.status, ok.body)
	}
	var doc map[string]any
	if err := json.Unmarshal(ok.body, &doc); err != nil || doc["name"] != p.Name || doc["_id"] != p.ID.Hex() {
		t.Fatalf("document %s (%v), want %s", ok.body, err, p.Name)
	}
	etag := ok.header.Get("ETag")
	if !strings.HasPrefix(etag, `"`) || len(etag) < 10 {
		t.Fatalf("ETag %q, want a strong validator", etag)
	}
	typed := f.do(t, "GET", "/typed/"+p.ID.Hex())
	if !bytes.Equal(typed.body, ok.body) || typed.header.Get("ETag") != etag {
		t.Fatalf("typed answer differs:\n%s\n%s", typed.body, ok.body)
	}
	upper := strings.ToUpper(p.ID.Hex())
	tests := []struct {
		name       string
		target     string
		header     []string
		wantStatus int
		wantCode   string
	}{
		{"uppercase hex", "/people/" + upper, nil, 200, ""},
		{"If-None-Match", "/people/" + p.ID.Hex(), []string{"If-None-Match", etag}, 304, ""},
		{"If-None-Match weak", "/people/" + p.ID.Hex(), []string{"If-None-Match", `"x", W/` + etag}, 304, ""},
		{"If-None-Match other", "/people/" + p.ID.Hex(), []string{"If-None-Match", `"other"`}, 200, ""},
		{"fields", "/people/" + p.ID.Hex() + "?fields=name", nil, 200, ""},
		{"malformed id", "/people/xyz", nil, 400, "invalid_object_id"},
		{"23 hex digits", "/people/" + p.ID.Hex()[:23], nil, 400, "invalid_object_id"},
		{"non-hex", "/people/zz" + p.ID.Hex()[2:], nil, 400, "invalid_object_id"},
		{"unknown id", "/people/" + bson.NewObjectID().Hex(), nil, 404, "not_found"},
		{"unknown parameter", "/people/" + p.ID.Hex() + "?limit=3", nil, 400, "unknown_parameter"},
		{"hidden projection", "/people/" + p.ID.Hex() + "?fields=secret", nil, 400, "field_not_allowed"},
		{"base filter matches", "/groups/" + p.Group + "/people/" + p.ID.Hex(), nil, 200, ""},
		{"base filter excludes", "/groups/zz/people/" + p.ID.Hex(), nil, 404, "not_found"},
		{"POST", "/people/" + p.ID.Hex(), nil, 405, "method_not_allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := "GET"
			if tt.name == "POST" {
				method = "POST"
			}
			r := f.do(t, method, tt.target, tt.header...)
			if r.status != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", r.status, tt.wantStatus, r.body)
			}
			if tt.wantCode != "" {
				checkProblem(t, r, tt.wantCode)
			}
			if r.status == 304 && len(r.body) != 0 {
				t.Fatalf("304 with a body: %s", r.body)
			}
		})
	}
	fields := f.do(t, "GET", "/people/"+p.ID.Hex()+"?fields=name")
	var got map[string]any
	_ = json.Unmarshal(fields.body, &got)
	if len(got) != 2 || got["name"] != p.Name {
		t.Fatalf("fields=name gave %s", fields.body)
	}
}

// checkProblem asserts an RFC 9457 answer with the given code.
func checkProblem(t *testing.T, r response, code string) {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q, want application/problem+json; body %s", ct, r.body)
	}
	var p struct {
		Type   string `json:"type"`
		Title  string `json:"title"`
		Status int    `json:"status"`
		Detail string `json:"detail"`
		Code   string `json:"code"`
	}
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("problem body %s: %v", r.body, err)
	}
	if p.Code != code || p.Status != r.status || p.Type == "" || p.Title == "" {
		t.Fatalf("problem %+v, want code %q and status %d", p, code, r.status)
	}
}
