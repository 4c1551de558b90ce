package openapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/mongohttp/mongohttp"
	"github.com/mongohttp/mongohttp/bsonjson"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// account is a typed view of the example's users, with more kinds of
// fields than the example's Post: pointers, int64, decimal128, bytes, maps
// and a nested named struct. Fields the stored users lack are left out of
// the answers.
type account struct {
	ID       bson.ObjectID     `bson:"_id"`
	Name     string            `bson:"name" doc:"The user's full name."`
	Email    *string           `bson:"email,omitempty"`
	Age      int32             `bson:"age"`
	Created  time.Time         `bson:"created"`
	Tags     []string          `bson:"tags"`
	Profile  accountProfile    `bson:"profile"`
	Balance  bson.Decimal128   `bson:"balance,omitempty"`
	Visits   int64             `bson:"visits,omitempty"`
	Avatar   []byte            `bson:"avatar,omitempty"`
	Labels   map[string]string `bson:"labels,omitempty"`
	Password string            `bson:"password_hash"` // hidden by the policy
}

type accountProfile struct {
	City  string  `bson:"city"`
	Score float64 `bson:"score"`
}

// richPolicy allows every operator and every field type, with small caps,
// so that the document states all of them.
var richPolicy = mongohttp.Policy{
	Filter: map[string]mongohttp.Type{
		"name": mongohttp.String, "age": mongohttp.Int, "created": mongohttp.Date, "tags": mongohttp.String,
		"profile.score": mongohttp.Float, "profile.city": mongohttp.String, "active": mongohttp.Bool,
		"items": mongohttp.String, "items.sku": mongohttp.String, "owner": mongohttp.ObjectID,
	},
	Sort:            []string{"age", "name", "profile.score"},
	Project:         []string{"name", "age", "tags", "profile", "profile.city"},
	Hidden:          []string{"password_hash"},
	Operators:       append(mongohttp.DefaultOperators(), "regex", "all", "size", "elemMatch"),
	ExtraParameters: []string{"pretty"},
	MaxInValues:     5,
	MaxRegexLength:  8,
	DefaultLimit:    5,
	MaxLimit:        50,
	MaxSkip:         10,
}

// richService mounts, in this process, a typed and a bson.Raw declaration
// on the example's users under richPolicy, with their document; with
// quick, queries time out at once, for requests that check only verdicts.
func richService(t *testing.T, quick bool) (string, []byte) {
	t.Helper()
	ctx := context.Background()
	client, err := mongohttp.Connect(ctx, service.dbURI)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close(ctx) })
	users := client.Database("mongohttp_example").Collection("users")
	maxTime := time.Minute
	if quick {
		maxTime = time.Nanosecond
	}
	accounts := mongohttp.Must(mongohttp.New(mongohttp.Collection[account]{Client: client, Coll: users, Policy: richPolicy, MaxTime: maxTime,
		Encoder: &bsonjson.Encoder{Int64AsString: true}}))
	raw := mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{Client: client, Coll: users, Policy: richPolicy, MaxTime: maxTime,
		CacheControl: "private, max-age=60"}))
	api := &mongohttp.API{Title: "accounts", Version: "2"}
	mux := http.NewServeMux()
	for pattern, h := range map[string]http.Handler{
		"/accounts": accounts.Find(), "/accounts/{id}": accounts.FindOne(),
		"GET /raw": raw.Find(), "GET /raw/{id}": raw.FindOne(),
		"/openapi.json": api,
	} {
		mux.Handle(pattern, api.Handle(pattern, h))
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	api.Servers = []mongohttp.APIServer{{URL: srv.URL, Description: "This test's server."}}
	doc, err := api.Document()
	if err != nil {
		t.Fatal(err)
	}
	return srv.URL, doc
}

// TestRichPolicy checks the document of declarations that use every
// operator, field type and parameter kind the query language has: it
// validates as OpenAPI 3.1, the service agrees with it on every request
// made from it, and the typed and raw documents it answers match it.
func TestRichPolicy(t *testing.T) {
	s := mustSamples(t)
	base, doc := richService(t, false)
	quick, quickDoc := richService(t, true)
	if withoutServers(doc) != withoutServers(quickDoc) {
		t.Fatal("the time limit changed the document")
	}
	validateDocument(t, doc)
	c, err := newChecker(doc)
	if err != nil {
		t.Fatal(err)
	}

	var account struct {
		Properties map[string]any `json:"properties"`
	}
	b, _ := json.Marshal(c.doc.Components.Schemas["Account"].Value)
	_ = json.Unmarshal(b, &account)
	for _, name := range []string{"_id", "name", "email", "age", "created", "tags", "profile", "balance", "visits", "avatar", "labels"} {
		if account.Properties[name] == nil {
			t.Errorf("Account has no %s", name)
		}
	}
	if account.Properties["password_hash"] != nil || account.Properties["password"] != nil {
		t.Error("Account describes the hidden field")
	}

	// Each document names its own server, which the router matches.
	qc, err := newChecker(quickDoc)
	if err != nil {
		t.Fatal(err)
	}
	// The typed and raw lists share the policy, and so their parameters,
	// which the matrix then checks once, on the raw one.
	list := func(path string) []*openapi3.ParameterRef { return qc.doc.Paths.Find(path).Get.Parameters }
	if a, b := mustJSON(t, list("/accounts")), mustJSON(t, list("/raw")); a != b {
		t.Fatal("the typed and raw lists of one policy take different parameters")
	}
	var xs []exchange
	for _, x := range qc.everyParameter(t, s, quick, map[string]string{
		"/accounts/{id}": "/accounts/" + s.userID,
		"/raw/{id}":      "/raw/" + s.userID,
	}) {
		if !strings.HasPrefix(x.target, "/accounts?") {
			xs = append(xs, x)
		}
	}
	if len(xs) < 1000 {
		t.Fatalf("only %d requests made from the document", len(xs))
	}
	qc.runAll(t, xs)
	q := url.QueryEscape
	xs = nil
	for _, x := range []exchange{
		{target: "/accounts?limit=50&sort=-profile.score"},
		{target: "/accounts?limit=3", header: []string{"Accept", "application/x-ndjson"}},
		{target: "/accounts?fields=name,profile.city&limit=3"},
		{target: "/accounts?tags[all]=go&tags[size]=1&name[regex]=^A&pretty=1"},
		{target: "/accounts?filter=" + q(`{"tags":{"$elemMatch":{"$regex":"^g"}},"profile.score":{"$gt":50.5}}`)},
		{target: "/accounts/" + s.userID},
		{target: "/accounts/" + s.userID + "?fields=profile"},
		{target: "/raw?limit=50&count=exact"},
		{target: "/raw/" + s.userID + "?pretty="},
		{method: http.MethodHead, target: "/raw?limit=1"},
		{method: http.MethodPost, target: "/raw"},
		{method: http.MethodPost, target: "/accounts"},
		{target: "/openapi.json"},
	} {
		x.base = base
		xs = append(xs, x)
	}
	c.runAll(t, xs)
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func withoutServers(doc []byte) string {
	var d map[string]any
	_ = json.Unmarshal(doc, &d)
	delete(d, "servers")
	b, _ := json.Marshal(d)
	return string(b)
}

// validateDocument validates a document with both validators, as
// TestDocumentIsOpenAPI31 does the example's.
func validateDocument(t *testing.T, doc []byte) {
	t.Helper()
	if errs := libopenapiErrors(doc); len(errs) > 0 {
		t.Errorf("libopenapi: %v", errs)
	}
	if err := kinErrors(doc); err != nil {
		t.Errorf("kin-openapi: %v", err)
	}
}
