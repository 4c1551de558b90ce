package mongohttp_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mongohttp/mongohttp"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// offline returns a client of a server nobody listens on, and one of its
// collections: New and the handlers' construction need no server.
func offline(t *testing.T, name string) (*mongohttp.Client, *mongo.Collection) {
	t.Helper()
	c, err := mongohttp.Connect(context.Background(), "mongodb://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c, c.Database("db").Collection(name)
}

func TestNewRefusesBadDeclarations(t *testing.T) {
	client, coll := offline(t, "things")
	_, foreign := offline(t, "things")
	tests := []struct {
		name string
		c    mongohttp.Collection[bson.Raw]
		want string
	}{
		{"no collection", mongohttp.Collection[bson.Raw]{Client: client}, "Coll is nil"},
		{"no client", mongohttp.Collection[bson.Raw]{Coll: coll}, "Client is nil"},
		{"another client's collection", mongohttp.Collection[bson.Raw]{Client: client, Coll: foreign}, "another client"},
		{"bad policy", mongohttp.Collection[bson.Raw]{Client: client, Coll: coll, Policy: mongohttp.Policy{Sort: []string{"$where"}}}, "mongohttp: collection things: Policy.Sort"},
		{"bad named policy", mongohttp.Collection[bson.Raw]{Client: client, Coll: coll, Policies: map[string]mongohttp.Policy{"admin": {MaxLimit: -1}}}, `Policies["admin"]`},
		{"reserved name", mongohttp.Collection[bson.Raw]{Client: client, Coll: coll, Policies: map[string]mongohttp.Policy{"": {}}}, `"" is reserved`},
		{"negative wait", mongohttp.Collection[bson.Raw]{Client: client, Coll: coll, Admission: mongohttp.Admission{MaxWait: -time.Second}}, "MaxWait"},
		{"bad vary", mongohttp.Collection[bson.Raw]{Client: client, Coll: coll, Vary: []string{"A, B"}}, "Vary"},
		{"negative max time", mongohttp.Collection[bson.Raw]{Client: client, Coll: coll, MaxTime: -1}, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := mongohttp.New(tt.c)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: %v, want an error containing %q", err, tt.want)
			}
			if n := strings.Count(err.Error(), "mongohttp:"); n != 1 {
				t.Errorf("New: %v: the package is named %d times", err, n)
			}
		})
	}
	// A policy's own error is kept in the chain, not rebuilt from its text.
	_, err := mongohttp.New(mongohttp.Collection[bson.Raw]{Client: client, Coll: coll, Policies: map[string]mongohttp.Policy{"admin": {MaxLimit: -1}}})
	_, policyErr := mongohttp.NewQueryParser(mongohttp.Policy{MaxLimit: -1})
	if inner := errors.Unwrap(err); inner == nil || "mongohttp: "+inner.Error() != policyErr.Error() {
		t.Errorf("New: %v wraps %v, want NewQueryParser's %v", err, inner, policyErr)
	}
}

// TestNewRefusesTypesThatAreNotDocuments checks that a T that cannot hold
// a document is refused by New, not by every request.
func TestNewRefusesTypesThatAreNotDocuments(t *testing.T) {
	client, coll := offline(t, "things")
	type doc struct {
		Name string `bson:"name"`
	}
	for name, err := range map[string]error{
		"int":      newError[int](client, coll),
		"string":   newError[string](client, coll),
		"slice":    newError[[]string](client, coll),
		"bson.A":   newError[bson.A](client, coll),
		"any":      newError[any](client, coll),
		"map[int]": newError[map[int]string](client, coll),
	} {
		if err == nil || !strings.Contains(err.Error(), "not a document type") {
			t.Errorf("%s: New: %v, want an error about the document type", name, err)
		}
	}
	for name, err := range map[string]error{
		"bson.Raw": newError[bson.Raw](client, coll),
		"bson.D":   newError[bson.D](client, coll),
		"bson.M":   newError[bson.M](client, coll),
		"map":      newError[map[string]any](client, coll),
		"struct":   newError[doc](client, coll),
		"*struct":  newError[*doc](client, coll),
	} {
		if err != nil {
			t.Errorf("%s: New: %v", name, err)
		}
	}
}

func newError[T any](client *mongohttp.Client, coll *mongo.Collection) error {
	_, err := mongohttp.New(mongohttp.Collection[T]{Client: client, Coll: coll})
	return err
}

func TestMustPanicsOnError(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("Must did not panic")
		}
	}()
	mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{}))
}

func TestResourceCollectionHasDefaults(t *testing.T) {
	policies := map[string]mongohttp.Policy{"admin": {}}
	client, coll := offline(t, "things")
	res, err := mongohttp.New(mongohttp.Collection[bson.Raw]{
		Client:     client,
		Coll:       coll,
		Policies:   policies,
		BaseFilter: func(*http.Request) (bson.D, error) { return nil, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	c := res.Collection()
	if c.MaxTime != mongohttp.DefaultMaxTime || c.Lookahead != mongohttp.DefaultLookahead || c.Logger == nil || c.ID == nil {
		t.Fatalf("defaults not filled in: %+v", c)
	}
	if c.CacheControl != "private, no-cache" {
		t.Fatalf("CacheControl with a BaseFilter: %q", c.CacheControl)
	}
	// The declaration's maps are copies: changing them changes nothing.
	policies["guest"] = mongohttp.Policy{}
	c.Policies["other"] = mongohttp.Policy{}
	if got := res.Collection().Policies; len(got) != 1 {
		t.Fatalf("Policies changed through a copy: %v", got)
	}
}

// TestClientAdmissionIsTheDeclaredClients checks that the client-wide bound
// a handler counts against is its Collection.Client's: a full client
// refuses the handlers of all its declarations, and no other client's.
func TestClientAdmissionIsTheDeclaredClients(t *testing.T) {
	busy, err := mongohttp.ConnectConfig(context.Background(), mongohttp.Config{
		URI:       "mongodb://127.0.0.1:1",
		Admission: mongohttp.Admission{MaxActive: 1, MaxQueued: -1},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = busy.Close(context.Background()) })
	other, otherColl := offline(t, "things")
	// The base filters answer 404 without a query: a request that passes
	// admission never needs the server.
	notFound := func(*http.Request) (bson.D, error) { return nil, mongohttp.ErrNotFound }
	entered, release := make(chan struct{}), make(chan struct{})
	slow := mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{
		Client: busy, Coll: busy.Database("db").Collection("a"),
		BaseFilter: func(r *http.Request) (bson.D, error) {
			close(entered)
			<-release
			return notFound(r)
		},
	})).Find()
	same := mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{Client: busy, Coll: busy.Database("db").Collection("b"), BaseFilter: notFound})).Find()
	elsewhere := mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{Client: other, Coll: otherColl, BaseFilter: notFound})).Find()

	get := func(h http.Handler) int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		return rec.Code
	}
	done := make(chan int)
	go func() { done <- get(slow) }()
	<-entered
	if code := get(same); code != http.StatusServiceUnavailable {
		t.Errorf("another declaration on the full client: %d, want 503", code)
	}
	if code := get(elsewhere); code != http.StatusNotFound {
		t.Errorf("a declaration on another client: %d, want 404", code)
	}
	close(release)
	if code := <-done; code != http.StatusNotFound {
		t.Errorf("the slow request: %d, want 404", code)
	}
	if st := busy.AdmissionStats(); st.Refused != 1 || st.Admitted != 1 {
		t.Errorf("busy client's stats %+v, want 1 admitted and 1 refused", st)
	}
	if st := other.AdmissionStats(); st.Refused != 0 || st.Admitted != 1 {
		t.Errorf("other client's stats %+v, want 1 admitted", st)
	}
}
