package integration_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mongohttp/mongohttp"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// sentComments records the comment of every command a client sends, by
// command name.
type sentComments struct {
	mu   sync.Mutex
	sent map[string][]string
}

func (c *sentComments) monitor() *event.CommandMonitor {
	return &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		comment, _ := e.Command.Lookup("comment").StringValueOK()
		c.mu.Lock()
		c.sent[e.CommandName] = append(c.sent[e.CommandName], comment)
		c.mu.Unlock()
	}}
}

// TestObserveWrites checks the reports of the write handlers and of an
// aggregation on a real server: the kind of handler, the route, the method,
// the status and code, the documents stored or deleted; and that their
// commands carry the request's id and trace context in their comment.
func TestObserveWrites(t *testing.T) {
	obs := &reports{}
	cmds := &sentComments{sent: map[string][]string{}}
	c, err := mongohttp.ConnectConfig(context.Background(), mongohttp.Config{
		URI: serverURI, Observer: obs, Options: options.Client().SetMonitor(cmds.monitor()),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	res := mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{
		Client: c,
		Coll:   database(t, c).Collection("notes"), Policy: notesPolicy,
	}))
	stats, err := res.Aggregate(mongohttp.Aggregation{Pipeline: mongo.Pipeline{{{Key: "$count", Value: "n"}}}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/notes", mongohttp.Methods{"POST": res.Insert()})
	mux.Handle("/notes/bulk", res.BulkInsert())
	mux.Handle("GET /notes/stats", stats)
	mux.Handle("/notes/{id}", mongohttp.Methods{"PUT": res.Replace(), "PATCH": res.Patch(), "DELETE": res.Delete()})
	f := &writeFixture{srv: httptest.NewServer(mux)}
	t.Cleanup(f.srv.Close)
	cmds.mu.Lock()
	clear(cmds.sent)
	cmds.mu.Unlock()

	trace := []string{"Traceparent", testTraceParent, "X-Request-Id", "w-1"}
	created := f.send(t, http.MethodPost, "/notes", "application/json", `{"title":"SECRET-TITLE","likes":2}`, trace...)
	if created.status != http.StatusCreated {
		t.Fatalf("insert: %d %s", created.status, created.body)
	}
	id := jsonDoc(t, created)["_id"].(string)
	f.send(t, http.MethodPatch, "/notes/"+id, "application/merge-patch+json", `{"likes":3}`, trace...)
	f.send(t, http.MethodPut, "/notes/"+id, "application/json", `{"title":"other"}`, trace...)
	f.send(t, http.MethodPost, "/notes/bulk", mongohttp.NDJSON, "{\"title\":\"b1\"}\n{\"title\":\"b2\"}\n{\"colour\":\"red\"}\n{\"title\":\"b4\"}\n", trace...)
	f.send(t, http.MethodGet, "/notes/stats?title=other", "", "", trace...)
	f.send(t, http.MethodDelete, "/notes/"+id, "", "", trace...)
	gone := f.send(t, http.MethodDelete, "/notes/"+id, "", "", trace...)
	f.send(t, http.MethodGet, "/notes/"+id, "", "", trace...) // no GET on this route

	want := []struct {
		handler, route, method string
		status, documents      int
		code                   string
	}{
		{"insert", "/notes", "POST", 201, 1, ""},
		{"patch", "/notes/{id}", "PATCH", 200, 1, ""},
		{"replace", "/notes/{id}", "PUT", 200, 1, ""},
		{"bulkInsert", "/notes/bulk", "POST", 422, 2, "validation_failed"},
		{"aggregate", "/notes/stats", "GET", 200, 1, ""},
		{"delete", "/notes/{id}", "DELETE", 204, 1, ""},
		{"delete", "/notes/{id}", "DELETE", 404, 0, "not_found"},
	}
	got := obs.take(t, len(want))
	for i, w := range want {
		rep := got[i]
		if rep.Handler != w.handler || rep.Route != w.route || rep.Method != w.method || rep.Status != w.status ||
			rep.Documents != w.documents || rep.Code != w.code || rep.Collection != "notes" ||
			rep.RequestID != "w-1" || rep.TraceParent != testTraceParent || rep.Duration <= 0 || rep.Aborted {
			t.Errorf("report %d: %+v\nwant %+v", i, rep, w)
		}
	}
	if gone.header.Get(mongohttp.RequestIDHeader) != "w-1" {
		t.Errorf("the 404 carries X-Request-Id %q", gone.header.Get(mongohttp.RequestIDHeader))
	}
	if shape := got[4].Shape(); !slices.Equal(shape.Filter, []string{"title $eq"}) {
		t.Errorf("aggregation's shape %+v", shape)
	}

	comment := "request_id='w-1',traceparent='" + testTraceParent + "'"
	cmds.mu.Lock()
	defer cmds.mu.Unlock()
	for _, name := range []string{"insert", "find", "update", "delete", "aggregate"} {
		sent := cmds.sent[name]
		if len(sent) == 0 {
			t.Errorf("no %s command was sent", name)
		}
		for _, c := range sent {
			if c != comment && !(name == "insert" || name == "delete") {
				t.Errorf("%s command with comment %q, want %q", name, c, comment)
			}
		}
		if !slices.Contains(sent, comment) {
			t.Errorf("no %s command carries the request's comment: %q", name, sent)
		}
	}
	for name, sent := range cmds.sent {
		for _, c := range sent {
			if strings.Contains(c, "SECRET") {
				t.Errorf("a %s comment holds a value: %q", name, c)
			}
		}
	}
}
