package mongohttp_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mongohttp/mongohttp"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// collection returns a handle on a collection of a client that never
// connects: New and the handlers' construction need no server.
func collection(t *testing.T) *mongo.Collection {
	t.Helper()
	mc, err := mongo.Connect()
	if err != nil {
		t.Fatal(err)
	}
	return mc.Database("db").Collection("things")
}

func TestNewRefusesBadDeclarations(t *testing.T) {
	coll := collection(t)
	tests := []struct {
		name string
		c    mongohttp.Collection[bson.Raw]
		want string
	}{
		{"no collection", mongohttp.Collection[bson.Raw]{}, "Coll is nil"},
		{"bad policy", mongohttp.Collection[bson.Raw]{Coll: coll, Policy: mongohttp.Policy{Sort: []string{"$where"}}}, "mongohttp: collection things: Policy.Sort"},
		{"bad named policy", mongohttp.Collection[bson.Raw]{Coll: coll, Policies: map[string]mongohttp.Policy{"admin": {MaxLimit: -1}}}, `Policies["admin"]`},
		{"reserved name", mongohttp.Collection[bson.Raw]{Coll: coll, Policies: map[string]mongohttp.Policy{"": {}}}, `"" is reserved`},
		{"negative wait", mongohttp.Collection[bson.Raw]{Coll: coll, Admission: mongohttp.Admission{MaxWait: -time.Second}}, "MaxWait"},
		{"bad vary", mongohttp.Collection[bson.Raw]{Coll: coll, Vary: []string{"A, B"}}, "Vary"},
		{"negative max time", mongohttp.Collection[bson.Raw]{Coll: coll, MaxTime: -1}, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := mongohttp.New(tt.c)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: %v, want an error containing %q", err, tt.want)
			}
		})
	}
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
	res, err := mongohttp.New(mongohttp.Collection[bson.Raw]{
		Coll:       collection(t),
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
