package mongohttp_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mongohttp/mongohttp"
	"go.mongodb.org/mongo-driver/v2/bson"
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
