package mongohttp_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/mongohttp/mongohttp"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// A service with a list route, a by-id route and a health check, which
// shuts down cleanly on Ctrl-C or SIGTERM. (It needs a MongoDB server, so it
// has no output to check.)
func Example() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	client, err := mongohttp.Connect(ctx, "mongodb://localhost:27017")
	if err != nil {
		log.Fatal(err)
	}

	users := client.Database("app").Collection("users")
	policy := mongohttp.Policy{
		Filter: map[string]mongohttp.Type{"name": mongohttp.String, "age": mongohttp.Int},
		Sort:   []string{"age", "name"},
		Hidden: []string{"password_hash"},
	}
	mux := http.NewServeMux()
	mux.Handle("GET /users", mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{Client: client, Coll: users, Policy: policy})).Find())
	mux.Handle("GET /users/{id}", mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{Client: client, Coll: users, Policy: policy})).FindOne())
	mux.Handle("GET /healthz", &mongohttp.HealthHandler{Client: client})

	srv := &http.Server{Addr: "127.0.0.1:8080", Handler: mux,
		ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	go func() {
		if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
			log.Print(err) // the port is taken, for instance
			stop()
		}
	}()
	<-ctx.Done()

	// Finish the requests in flight, then close the client.
	shutCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		log.Print(err)
	}
	if err := client.Close(shutCtx); err != nil {
		log.Print(err)
	}
}

// The parser turns a query string into a filter, sort and projection that
// reference only what the policy allows.
func ExampleQueryParser_Parse() {
	qp, err := mongohttp.NewQueryParser(mongohttp.Policy{
		Filter: map[string]mongohttp.Type{"age": mongohttp.Int, "name": mongohttp.String},
		Sort:   []string{"age"},
		Hidden: []string{"password_hash"},
	})
	if err != nil {
		log.Fatal(err)
	}
	q, err := qp.Parse("age[gte]=30&age[lt]=40&sort=-age&limit=5")
	if err != nil {
		log.Fatal(err)
	}
	show := func(name string, d bson.D) {
		b, _ := bson.MarshalExtJSON(d, false, false)
		fmt.Printf("%s: %s\n", name, b)
	}
	show("filter", q.Filter)
	show("sort", q.Sort)
	show("projection", q.Projection)
	fmt.Println("limit:", q.Limit)

	_, err = qp.Parse("password_hash[exists]=true")
	fmt.Println(err)
	// Output:
	// filter: {"age":{"$gte":30,"$lt":40}}
	// sort: {"age":-1,"_id":1}
	// projection: {"password_hash":0}
	// limit: 5
	// mongohttp: field_not_allowed: "password_hash" is not a filterable field or a parameter; accepted: _id, age, name, filter, sort, limit, skip, after, count
}

// WriteError answers any error as an RFC 9457 problem document; driver
// errors are mapped and their messages kept out of the answer.
func ExampleWriteError() {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/users/42", nil)
	mongohttp.WriteError(rec, req, mongohttp.ErrInvalidObjectID.Detailf("id must be 24 hex digits"))
	fmt.Println(rec.Code, rec.Header().Get("Content-Type"))
	fmt.Print(rec.Body.String())
	// Output:
	// 400 application/problem+json
	// {"type":"urn:mongohttp:problem:invalid_object_id","title":"Invalid object id","status":400,"detail":"id must be 24 hex digits","instance":"/users/42","code":"invalid_object_id"}
}

// Middleware carries a client in every request's context, for handlers of
// your own.
func ExampleClient_Middleware() {
	client := mongohttp.Wrap(nil) // normally from Connect
	h := client.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Println("client in context:", mongohttp.ClientFrom(r.Context()) == client)
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	// Output:
	// client in context: true
}

// AsError tells what a client would see for an error, for logs or your own
// handlers.
func ExampleAsError() {
	for _, err := range []error{
		mongohttp.ErrFieldNotAllowed.Detailf("field %q may not be sorted", "password_hash"),
		context.DeadlineExceeded,
		fmt.Errorf("decode: %w", bson.ErrDecodeToNil),
	} {
		e := mongohttp.AsError(err)
		fmt.Println(e.Status, e.Code)
	}
	// Output:
	// 400 field_not_allowed
	// 504 timeout
	// 500 internal
}

// New checks a declaration before any request: a policy that would let
// clients write a hidden field is an error naming the collection and the
// field.
func ExampleNew() {
	client, _ := mongohttp.Connect(context.Background(), "mongodb://localhost:27017") // connects lazily: New needs no server
	_, err := mongohttp.New(mongohttp.Collection[bson.Raw]{
		Client: client,
		Coll:   client.Database("app").Collection("users"),
		Policy: mongohttp.Policy{
			Hidden: []string{"password_hash"},
			Write:  map[string]mongohttp.Type{"name": mongohttp.String, "password_hash": mongohttp.String},
		},
	})
	fmt.Println(err)
	// Output:
	// mongohttp: collection users: Policy.Write: field "password_hash" would reach hidden field "password_hash"
}

// Methods mounts a collection's reads and writes on one path each, on any
// router; methods not listed get 405 with an Allow header.
func ExampleMethods() {
	client, _ := mongohttp.Connect(context.Background(), "mongodb://localhost:27017")
	posts := mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{
		Client: client,
		Coll:   client.Database("app").Collection("posts"),
		Policy: mongohttp.Policy{Write: map[string]mongohttp.Type{"title": mongohttp.String}},
	}))
	mux := http.NewServeMux()
	mux.Handle("/posts", mongohttp.Methods{"GET": posts.Find(), "POST": posts.Insert()})
	mux.Handle("/posts/{id}", mongohttp.Methods{
		"GET": posts.FindOne(), "PUT": posts.Replace(), "PATCH": posts.Patch(), "DELETE": posts.Delete(),
	})

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("OPTIONS", "/posts/65f0a1b2c3d4e5f6a7b8c9d0", nil))
	fmt.Println(rec.Code, rec.Header().Get("Allow"))
	// Output:
	// 405 DELETE, GET, HEAD, PATCH, PUT
}

// Connect names its server: an empty connection string means MONGODB_URI,
// and with that unset too Connect fails rather than dial localhost. It does
// not wait for the server, so a service starts while its database is down.
func ExampleConnect() {
	if uri, ok := os.LookupEnv("MONGODB_URI"); ok {
		os.Unsetenv("MONGODB_URI")
		defer os.Setenv("MONGODB_URI", uri)
	}
	_, err := mongohttp.Connect(context.Background(), "")
	fmt.Println(errors.Is(err, mongohttp.ErrNoURI))

	client, err := mongohttp.Connect(context.Background(), "mongodb://127.0.0.1:1") // nobody listens there
	fmt.Println(err)
	defer client.Close(context.Background())
	// Output:
	// true
	// <nil>
}

// Find checks the request against the policy before it asks the database:
// a filter on a field the policy does not list is a 400 with a stable code.
// (Nobody listens on the client's server: the request never reaches it.)
func ExampleResource_Find() {
	client, _ := mongohttp.Connect(context.Background(), "mongodb://127.0.0.1:1")
	defer client.Close(context.Background())
	users := mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{
		Client: client,
		Coll:   client.Database("app").Collection("users"),
		Policy: mongohttp.Policy{Filter: map[string]mongohttp.Type{"age": mongohttp.Int}, Hidden: []string{"password_hash"}},
	}))
	mux := http.NewServeMux()
	mux.Handle("GET /users", users.Find())
	mux.Handle("GET /users/{id}", users.FindOne())

	for _, target := range []string{"/users?password_hash[exists]=true", "/users?age=old", "/users/42"} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("GET", target, nil))
		fmt.Println(rec.Code, problemCode(rec))
	}
	// Output:
	// 400 field_not_allowed
	// 400 invalid_parameter
	// 400 invalid_object_id
}

// problemCode returns the "code" member of a problem+json answer.
func problemCode(rec *httptest.ResponseRecorder) string {
	var p struct{ Code string }
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		return err.Error()
	}
	return p.Code
}

// Aggregate serves a pipeline whose parameters are typed and bounded; Must
// keeps its construction short. Mistakes in the aggregation are reported
// when it is built, and out-of-bounds parameters before the database is
// asked.
func ExampleResource_Aggregate() {
	client, _ := mongohttp.Connect(context.Background(), "mongodb://127.0.0.1:1")
	defer client.Close(context.Background())
	orders := mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{
		Client: client,
		Coll:   client.Database("app").Collection("orders"),
	}))
	top := mongohttp.Must(orders.Aggregate(mongohttp.Aggregation{
		Pipeline: mongo.Pipeline{
			{{Key: "$group", Value: bson.D{{Key: "_id", Value: "$customer"}, {Key: "n", Value: bson.D{{Key: "$sum", Value: 1}}}}}},
			{{Key: "$sort", Value: bson.D{{Key: "n", Value: -1}}}},
			{{Key: "$limit", Value: mongohttp.Arg("top")}},
		},
		Params: map[string]mongohttp.Param{"top": {Type: mongohttp.Int, Min: "1", Max: "50", Default: "10"}},
	}))

	rec := httptest.NewRecorder()
	top.ServeHTTP(rec, httptest.NewRequest("GET", "/orders/top?top=500", nil))
	fmt.Println(rec.Code, problemCode(rec))

	_, err := orders.Aggregate(mongohttp.Aggregation{
		Pipeline: mongo.Pipeline{{{Key: "$limit", Value: mongohttp.Arg("n")}}},
	})
	fmt.Println(err)
	// Output:
	// 400 invalid_parameter
	// mongohttp: collection orders: Aggregate: stage 0 of Aggregation.Pipeline: Arg("n") has no Param
}

// API collects the routes as they are mounted and serves their OpenAPI
// document, built from the declarations alone: no server is needed.
func ExampleAPI() {
	client, _ := mongohttp.Connect(context.Background(), "mongodb://127.0.0.1:1")
	defer client.Close(context.Background())
	users := mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{
		Client: client,
		Coll:   client.Database("app").Collection("users"),
		Policy: mongohttp.Policy{Filter: map[string]mongohttp.Type{"age": mongohttp.Int}, Sort: []string{"age"}},
	}))
	api := &mongohttp.API{Title: "Users", Version: "1.0.0"}
	mux := http.NewServeMux()
	mux.Handle("GET /users", api.Handle("GET /users", users.Find()))
	mux.Handle("GET /users/{id}", api.Handle("GET /users/{id}", users.FindOne()))
	mux.Handle("GET /openapi.json", api.Handle("GET /openapi.json", api))

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/openapi.json", nil))
	var doc struct {
		OpenAPI string
		Info    struct{ Title, Version string }
		Paths   map[string]map[string]json.RawMessage
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		log.Fatal(err)
	}
	fmt.Println(rec.Code, doc.OpenAPI, doc.Info.Title, doc.Info.Version)
	for _, path := range slices.Sorted(maps.Keys(doc.Paths)) {
		fmt.Println(path, slices.Sorted(maps.Keys(doc.Paths[path])))
	}
	// Output:
	// 200 3.1.0 Users 1.0.0
	// /openapi.json [get head]
	// /users [get head]
	// /users/{id} [get head]
}

// Indexes lists the indexes a declaration needs: each sort a client may
// ask for, with _id as its tie-breaker, and the expiry of the idempotency
// keys that writes store beside the collection.
func ExampleResource_Indexes() {
	client, _ := mongohttp.Connect(context.Background(), "mongodb://127.0.0.1:1")
	defer client.Close(context.Background())
	users := mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{
		Client: client,
		Coll:   client.Database("app").Collection("users"),
		Policy: mongohttp.Policy{Sort: []string{"age"}},
	}))
	for _, ix := range users.Indexes() {
		keys, _ := bson.MarshalExtJSON(ix.Keys, false, false)
		fmt.Println(ix.Coll.Name(), string(keys))
	}
	// Output:
	// users {"age":1,"_id":1}
	// users {"age":-1,"_id":1}
	// users_idempotency {"expires":1}
}

// EnsureIndexes creates the indexes of Indexes that are missing, at every
// start-up: a second call creates nothing. (It needs a server, so it has
// no output to check; the integration tests run it on one.)
func ExampleResource_EnsureIndexes() {
	ctx := context.Background()
	client, err := mongohttp.Connect(ctx, os.Getenv("MONGODB_URI"))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close(ctx)
	users := mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{
		Client: client,
		Coll:   client.Database("app").Collection("users"),
		Policy: mongohttp.Policy{Sort: []string{"age", "name"}},
	}))
	created, err := users.EnsureIndexes(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, ix := range created {
		log.Printf("created %s on %s", ix.Name, ix.Coll.Name())
	}
}

// The write handlers check the body against Policy.Write and its
// Constraints before anything is stored: a field the policy does not list,
// or a value outside its bounds, is a 422 naming each failing field, and a
// body that cannot be read a 400, without asking the database.
func ExampleResource_Patch() {
	client, _ := mongohttp.Connect(context.Background(), "mongodb://127.0.0.1:1")
	defer client.Close(context.Background())
	posts := mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{
		Client: client,
		Coll:   client.Database("app").Collection("posts"),
		Policy: mongohttp.Policy{
			Write:       map[string]mongohttp.Type{"title": mongohttp.String},
			Constraints: map[string]mongohttp.Constraint{"title": {MaxLength: 10}},
		},
	}))
	h := http.NewServeMux()
	h.Handle("/posts", mongohttp.Methods{"POST": posts.Insert()})
	h.Handle("/posts/{id}", mongohttp.Methods{"PATCH": posts.Patch(), "DELETE": posts.Delete()})

	for _, tt := range []struct{ method, target, contentType, body string }{
		{"PATCH", "/posts/65f0a1b2c3d4e5f6a7b8c9d0", "application/merge-patch+json", `{"author":"eve"}`},
		{"POST", "/posts", "application/json", `{"title":"far longer than ten"}`},
		{"POST", "/posts", "application/json", `{"title":`},
	} {
		req := httptest.NewRequest(tt.method, tt.target, strings.NewReader(tt.body))
		req.Header.Set("Content-Type", tt.contentType)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		fmt.Println(tt.method, rec.Code, problemCode(rec))
	}
	// Output:
	// PATCH 422 validation_failed
	// POST 422 validation_failed
	// POST 400 invalid_body
}

// BulkInsert takes a stream of documents, one a line, on a route of its
// own; Insert takes one JSON document. A line that fails stops the stream,
// and the problem says which line and how many were stored before it.
func ExampleResource_BulkInsert() {
	client, _ := mongohttp.Connect(context.Background(), "mongodb://127.0.0.1:1")
	defer client.Close(context.Background())
	posts := mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{
		Client: client,
		Coll:   client.Database("app").Collection("posts"),
		Policy: mongohttp.Policy{Write: map[string]mongohttp.Type{"title": mongohttp.String}},
	}))
	h := http.NewServeMux()
	h.Handle("/posts", mongohttp.Methods{"POST": posts.Insert()})
	h.Handle("/posts/bulk", posts.BulkInsert())

	for _, tt := range []struct{ target, contentType, body string }{
		{"/posts/bulk", "application/json", `{"title":"one"}`},
		{"/posts", "application/x-ndjson", "{\"title\":\"one\"}\n"},
		{"/posts/bulk", "application/x-ndjson", "{\"title\":\n"},
	} {
		req := httptest.NewRequest("POST", tt.target, strings.NewReader(tt.body))
		req.Header.Set("Content-Type", tt.contentType)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var p struct {
			Code           string
			Line, Inserted *int
		}
		_ = json.Unmarshal(rec.Body.Bytes(), &p)
		if p.Line == nil {
			fmt.Println(tt.target, rec.Code, p.Code, "Accept-Post:", rec.Header().Get("Accept-Post"))
		} else {
			fmt.Println(tt.target, rec.Code, p.Code, "line:", *p.Line, "inserted:", *p.Inserted)
		}
	}
	// Output:
	// /posts/bulk 415 unsupported_media_type Accept-Post: application/x-ndjson
	// /posts 415 unsupported_media_type Accept-Post: application/json
	// /posts/bulk 400 invalid_body line: 1 inserted: 0
}

// Changes serves a collection's change feed. The declaration says that
// the collection has one (Collection.Changes), so that its deletes leave
// the tombstones the feed reads; give every instance that writes the
// collection the same declaration. Browsers follow the feed with
// EventSource; a token that is not one of the feed's is refused before the
// database is asked.
func ExampleResource_Changes() {
	client, _ := mongohttp.Connect(context.Background(), "mongodb://127.0.0.1:1")
	defer client.Close(context.Background())
	posts := mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{
		Client:  client,
		Coll:    client.Database("app").Collection("posts"),
		Policy:  mongohttp.Policy{Filter: map[string]mongohttp.Type{"likes": mongohttp.Int}, CursorKey: []byte("shared by every instance")},
		Changes: &mongohttp.ChangeFeed{},
	}))
	feed := posts.Changes()
	defer feed.Close() // ends the open streams; so does http.Server.Shutdown
	h := http.NewServeMux()
	h.Handle("GET /posts/changes", feed)

	// new EventSource("/posts/changes?since=0&likes[gte]=10") in a browser.
	req := httptest.NewRequest("GET", "/posts/changes?likes[gte]=10", nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Last-Event-ID", "not-a-token")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	fmt.Println(rec.Code, problemCode(rec))
	// Output:
	// 400 invalid_resume_token
}
