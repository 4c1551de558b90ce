package integration_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mongohttp/mongohttp"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// TestRegexBacktrackingOnTheServer sends patterns that would backtrack
// catastrophically in MongoDB's engine through a handler that allows regex:
// each is refused before the server sees it, while ordinary patterns run and
// match what they should.
func TestRegexBacktrackingOnTheServer(t *testing.T) {
	f := newFixture(t, 30)
	policy := peoplePolicy
	policy.Operators = append(mongohttp.DefaultOperators(), "regex", "elemMatch")
	srv := httptest.NewServer(mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{Client: f.client, Coll: f.coll, Policy: policy})).Find())
	defer srv.Close()
	get := func(t *testing.T, query string) response {
		t.Helper()
		g := &fixture{srv: srv}
		return g.do(t, "GET", "/?limit=50&"+query)
	}
	forms := func(pattern string) []string {
		quoted, _ := json.Marshal(pattern)
		return []string{
			"name[regex]=" + url.QueryEscape(pattern),
			"filter=" + url.QueryEscape(`{"name":{"$regex":`+string(quoted)+`,"$options":"i"}}`),
			"filter=" + url.QueryEscape(`{"name":{"$regularExpression":{"pattern":`+string(quoted)+`,"options":""}}}`),
			"filter=" + url.QueryEscape(`{"$or":[{"tags":{"$elemMatch":{"$regex":`+string(quoted)+`}}}]}`),
		}
	}
	for _, pattern := range []string{`(a+)+`, `(a*)*`, `(a+)*`, `(\w+\s?)+`, `(a|a?)+`, `(a|ab)*`, `(.*|a)+`, `(p|p0)+1`, `(?:\w|\d)+$`} {
		for _, query := range forms(pattern) {
			r := get(t, query)
			if r.status != 400 {
				t.Fatalf("%s: status %d: %s", query, r.status, r.body)
			}
			checkProblem(t, r, "invalid_parameter")
			if !strings.Contains(string(r.body), "backtrack") {
				t.Errorf("%s: the detail does not say why: %s", query, r.body)
			}
		}
	}
	// The x flag, which FerretDB does not implement (it answers an error
	// that would be a 500), and braces that newer PCRE versions read as
	// repetitions are refused too.
	for _, query := range []string{
		"filter=" + url.QueryEscape(`{"name":{"$regex":"p 0","$options":"x"}}`),
		"filter=" + url.QueryEscape(`{"name":{"$regularExpression":{"pattern":"p","options":"ix"}}}`),
		"name[regex]=" + url.QueryEscape(`(p{,3})+`),
	} {
		r := get(t, query)
		if r.status != 400 {
			t.Fatalf("%s: status %d: %s", query, r.status, r.body)
		}
		checkProblem(t, r, "invalid_parameter")
	}
	allowed := []struct {
		pattern string
		names   []string // the names matched, of p000…p029
	}{
		{`^p00`, []string{"p000", "p001", "p002", "p003", "p004", "p005", "p006", "p007", "p008", "p009"}},
		{`^(p0)+2[0-2]$`, []string{"p020", "p021", "p022"}},
		{`^p(01|02)[0-1]$`, []string{"p010", "p011", "p020", "p021"}},
		{`^[a-z]+02+9$`, []string{"p029"}},
		{`(p|q)+0+1$`, []string{"p001"}},
		{`^p\d{2}7$`, []string{"p007", "p017", "p027"}},
		{`^(?:p0(1|2))+[89]$`, []string{"p018", "p019", "p028", "p029"}},
	}
	for _, tt := range allowed {
		for _, query := range forms(tt.pattern)[:3] {
			got := names(get(t, query).docs(t))
			slices.Sort(got)
			if !slices.Equal(got, tt.names) {
				t.Errorf("%s: %v, want %v", query, got, tt.names)
			}
		}
	}
}

// TestDateFormsAgreeOnTheServer checks that one date in every accepted form
// selects the same documents, and that the ends of the range reach the
// server as dates it compares.
func TestDateFormsAgreeOnTheServer(t *testing.T) {
	f := newFixture(t, 30)
	at := time.Date(2024, 1, 1, 5, 0, 0, 0, time.UTC) // people are created an hour apart from midnight
	ms := strconv.FormatInt(at.UnixMilli(), 10)
	text := at.Format(time.RFC3339)
	filter := func(json string) string { return "filter=" + url.QueryEscape(json) }
	forms := []string{
		"created[lt]=" + url.QueryEscape(text),
		"created[lt]=" + url.QueryEscape(at.In(time.FixedZone("", 2*3600)).Format(time.RFC3339)),
		filter(`{"created":{"$lt":"` + text + `"}}`),
		filter(`{"created":{"$lt":{"$date":"` + text + `"}}}`),
		filter(`{"created":{"$lt":{"$date":` + ms + `}}}`),
		filter(`{"created":{"$lt":{"$date":{"$numberLong":"` + ms + `"}}}}`),
		filter(`{"created":{"$in":[{"$date":"2024-01-01"},{"$date":3600000},"` + at.Add(-3*time.Hour).Format(time.RFC3339) + `","2024-01-01T01:00:00Z","` + time.Date(2024, 1, 1, 3, 0, 0, 0, time.UTC).Format(time.RFC3339Nano) + `",{"$date":` + strconv.FormatInt(at.Add(-time.Hour).UnixMilli(), 10) + `}]}}`),
	}
	want := []string{"p000", "p001", "p002", "p003", "p004"}
	for _, query := range forms {
		got := names(f.do(t, "GET", "/people?sort=name&"+query).docs(t))
		if !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", query, got, want)
		}
	}
	// A date-only $date, refused by the driver's own parser, is midnight UTC.
	if got := names(f.do(t, "GET", "/people?sort=name&"+filter(`{"created":{"$lte":{"$date":"2024-01-01"}}}`)).docs(t)); !slices.Equal(got, []string{"p000"}) {
		t.Errorf("date-only $date: %v", got)
	}
	// The first and last instants of the range are dates the server compares.
	for _, query := range []string{
		"created[gte]=0000-01-01",
		"created[lte]=" + url.QueryEscape("9999-12-31T23:59:59.999Z"),
		filter(`{"created":{"$gte":{"$date":{"$numberLong":"-62167219200000"}},"$lte":{"$date":253402300799999}}}`),
	} {
		if got := f.do(t, "GET", "/people?limit=50&"+query).docs(t); len(got) != 30 {
			t.Errorf("%s: %d people, want all 30", query, len(got))
		}
	}
}

// TestObjectIDFormsAgreeOnTheServer checks that every accepted form of an
// ObjectID finds the same document.
func TestObjectIDFormsAgreeOnTheServer(t *testing.T) {
	f := newFixture(t, 5)
	id := f.people[3].ID.Hex()
	for _, query := range []string{
		"_id=" + id,
		"_id=" + strings.ToUpper(id),
		"_id[in]=" + bson.NewObjectID().Hex() + "," + id,
		"filter=" + url.QueryEscape(`{"_id":"`+id+`"}`),
		"filter=" + url.QueryEscape(`{"_id":{"$oid":"`+id+`"}}`),
		"filter=" + url.QueryEscape(`{"_id":{"$in":[{"$oid":"`+id+`"}]}}`),
		"filter=" + url.QueryEscape(`{"$and":[{"_id":{"$nin":["`+f.people[4].ID.Hex()+`"]}},{"_id":{"$eq":{"$oid":"`+id+`"}}}]}`),
	} {
		got := names(f.do(t, "GET", "/people?"+query).docs(t))
		if !slices.Equal(got, []string{"p003"}) {
			t.Errorf("%s: %v, want [p003]", query, got)
		}
	}
}

// TestErrorFuncCannotChangeSentinels gives an ErrorFunc that rewrites the
// *Error it receives the package's own ErrNotFound (returned as is by a base
// filter) and a not-found lookup: ErrNotFound, and the answers of every
// other handler, stay the same.
func TestErrorFuncCannotChangeSentinels(t *testing.T) {
	f := newFixture(t, 3)
	before := *mongohttp.ErrNotFound
	rewrite := func(w http.ResponseWriter, r *http.Request, err error) {
		var e *mongohttp.Error
		if errors.As(err, &e) {
			e.Status, e.Code, e.Title, e.Detail = 410, "gone", "Gone", "rewritten"
		}
		a := mongohttp.AsError(err)
		a.Status, a.Code, a.Title = 410, "gone", "Gone"
		mongohttp.WriteError(w, r, a)
	}
	mux := http.NewServeMux()
	mux.Handle("/bare/{id}", mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{Client: f.client, Coll: f.coll,
		Policy:     peoplePolicy,
		BaseFilter: func(*http.Request) (bson.D, error) { return nil, mongohttp.ErrNotFound },
		ErrorFunc:  rewrite,
	})).FindOne())
	mux.Handle("/wrapped", mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{Client: f.client, Coll: f.coll,
		Policy: peoplePolicy,
		BaseFilter: func(*http.Request) (bson.D, error) {
			return nil, errors.Join(errors.New("no tenant"), mongohttp.ErrNotFound)
		},
		ErrorFunc: rewrite,
	})).Find())
	mux.Handle("/people/{id}", mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{Client: f.client, Coll: f.coll, Policy: peoplePolicy, ErrorFunc: rewrite})).FindOne())
	srv := httptest.NewServer(mux)
	defer srv.Close()
	g := &fixture{srv: srv}
	for _, target := range []string{"/bare/" + f.people[0].ID.Hex(), "/wrapped", "/people/" + bson.NewObjectID().Hex()} {
		if r := g.do(t, "GET", target); r.status != 410 {
			t.Fatalf("%s: status %d, want the ErrorFunc's 410: %s", target, r.status, r.body)
		}
	}
	if !reflect.DeepEqual(*mongohttp.ErrNotFound, before) {
		t.Fatalf("ErrNotFound was changed to %+v", *mongohttp.ErrNotFound)
	}
	r := f.do(t, "GET", "/people/"+bson.NewObjectID().Hex())
	if r.status != 404 {
		t.Fatalf("status %d, want 404: %s", r.status, r.body)
	}
	checkProblem(t, r, "not_found")
}

// TestBrokenErrorsStillAnswer checks, through the handlers, that an error
// whose status cannot carry a problem is answered 500, not a dropped
// connection, and that a huge path is not echoed.
func TestBrokenErrorsStillAnswer(t *testing.T) {
	f := newFixture(t, 3)
	mux := http.NewServeMux()
	mux.Handle("/people/{id}", mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{Client: f.client, Coll: f.coll,
		Policy:     peoplePolicy,
		BaseFilter: func(*http.Request) (bson.D, error) { return nil, &mongohttp.Error{Code: "no_status"} },
	})).FindOne())
	mux.Handle("/custom", mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{Client: f.client, Coll: f.coll,
		Policy: peoplePolicy,
		BaseFilter: func(*http.Request) (bson.D, error) {
			return nil, &mongohttp.Error{Status: 200, Code: "ok_but_not"}
		},
		ErrorFunc: mongohttp.WriteError,
	})).Find())
	srv := httptest.NewServer(mux)
	defer srv.Close()
	g := &fixture{srv: srv}
	for _, target := range []string{"/people/" + f.people[0].ID.Hex(), "/custom"} {
		r := g.do(t, "GET", target)
		if r.status != 500 {
			t.Fatalf("%s: status %d, want 500: %s", target, r.status, r.body)
		}
		checkProblem(t, r, "internal")
	}

	// About 300 KB of path, NUL bytes and invalid UTF-8 included.
	long := "/people/" + strings.Repeat("%00%ff", 50<<10)
	r := f.do(t, "GET", long)
	if r.status != 400 || len(r.body) > 2048 {
		t.Fatalf("status %d, %d bytes of problem", r.status, len(r.body))
	}
	checkProblem(t, r, "invalid_object_id")
	var p struct{ Instance string }
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatal(err)
	}
	if len(p.Instance) > mongohttp.MaxInstanceLength || !strings.HasPrefix(strings.ToUpper(p.Instance), "/PEOPLE/%00%FF%00%FF") {
		t.Fatalf("instance %.100q… of %d bytes", p.Instance, len(p.Instance))
	}
}
