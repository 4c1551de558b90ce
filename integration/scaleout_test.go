package integration_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/mongohttp/mongohttp"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readconcern"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
)

// TestReadConcernReachesTheServer checks the per-handler read concern in
// the commands sent. (FerretDB is a standalone server, to which drivers
// never send a read preference; the read preference's plumbing is checked
// in the root package's tests.)
func TestReadConcernReachesTheServer(t *testing.T) {
	var mu sync.Mutex
	sent := map[string][]bson.Raw{}
	mon := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		mu.Lock()
		defer mu.Unlock()
		sent[e.CommandName] = append(sent[e.CommandName], append(bson.Raw(nil), e.Command...))
	}}
	c, err := mongohttp.ConnectConfig(context.Background(), mongohttp.Config{URI: serverURI, Options: options.Client().SetMonitor(mon)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	coll := database(t, c).Collection("rc")
	insertDocs(t, coll, 3, 1)

	mux := http.NewServeMux()
	mux.Handle("/docs", mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{Client: c, Coll: coll,
		ReadConcern: readconcern.Local(), ReadPreference: readpref.PrimaryPreferred(),
	})).Find())
	mux.Handle("/docs/{id}", mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{Client: c, Coll: coll, ReadConcern: readconcern.Local()})).FindOne())
	srv := httptest.NewServer(mux)
	defer srv.Close()

	for _, target := range []string{"/docs?count=exact", "/docs/" + bson.NewObjectID().Hex()} {
		resp, err := http.Get(srv.URL + target)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	mu.Lock()
	defer mu.Unlock()
	// Find's find, FindOne's find, and the count's aggregate.
	for name, want := range map[string]int{"find": 2, "aggregate": 1} {
		if len(sent[name]) != want {
			t.Fatalf("%d %s commands seen, want %d", len(sent[name]), name, want)
		}
		for _, cmd := range sent[name] {
			level, err := cmd.LookupErr("readConcern", "level")
			if err != nil || level.StringValue() != "local" {
				t.Fatalf("%s sent without readConcern local: %s", name, cmd)
			}
		}
	}
}
