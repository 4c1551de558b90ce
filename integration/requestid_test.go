package integration_test

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/mongohttp/mongohttp"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// TestEveryAnswerCarriesARequestID: successes, errors, and the 405s of
// Methods and of bare handlers carry X-Request-Id: the client's when it
// sent a plausible one, a made one otherwise.
func TestEveryAnswerCarriesARequestID(t *testing.T) {
	c := connect(t, mongohttp.PoolConfig{})
	coll := database(t, c).Collection("notes")
	res := mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{Client: c, Coll: coll, Policy: notesPolicy,
		Changes: &mongohttp.ChangeFeed{}}))
	mux := http.NewServeMux()
	mux.Handle("/notes", mongohttp.Methods{"GET": res.Find(), "POST": res.Insert()})
	mux.Handle("/notes/{id}", mongohttp.Methods{"GET": res.FindOne(), "PUT": res.Replace(), "PATCH": res.Patch(), "DELETE": res.Delete()})
	mux.Handle("/bare/find", res.Find())
	mux.Handle("/bare/insert", res.Insert())
	mux.Handle("/health", &mongohttp.HealthHandler{Client: c})
	feed := res.Changes()
	t.Cleanup(feed.Close)
	mux.Handle("/notes/changes", feed)
	srv := httptest.NewServer(c.Middleware(mux))
	t.Cleanup(srv.Close)
	send := func(method, target, body string, header ...string) response {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+target, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return response{resp.StatusCode, resp.Header, nil}
	}
	created := send("POST", "/notes", `{"title":"t"}`)
	if created.status != 201 {
		t.Fatalf("POST: %d", created.status)
	}
	doc := created.header.Get("Location")
	etag := created.header.Get("ETag")
	made := regexp.MustCompile(`^[0-9a-f]{16}$`)
	for _, tt := range []struct {
		name, method, target, body string
		header                     []string
		status                     int
	}{
		{"find", "GET", "/notes", "", nil, 200},
		{"find HEAD", "HEAD", "/notes", "", nil, 200},
		{"findOne", "GET", doc, "", nil, 200},
		{"not modified", "GET", doc, "", []string{"If-None-Match", etag}, 304},
		{"insert", "POST", "/notes", `{"title":"u"}`, nil, 201},
		{"replace", "PUT", doc, `{"title":"v"}`, nil, 200},
		{"bad query", "GET", "/notes?limit=0", "", nil, 400},
		{"not found", "GET", "/notes/" + bson.NewObjectID().Hex(), "", nil, 404},
		{"Methods 405", "POST", doc, `{}`, nil, 405},
		{"Methods 405 on a collection", "DELETE", "/notes", "", nil, 405},
		{"bare Find 405", "POST", "/bare/find", `{}`, nil, 405},
		{"bare Insert 405", "GET", "/bare/insert", "", nil, 405},
		{"health", "GET", "/health", "", nil, 200},
		{"health 405", "POST", "/health", "", nil, 405},
		{"feed", "GET", "/notes/changes?since=0", "", nil, 200},
		{"feed 400", "GET", "/notes/changes?since=x", "", nil, 400},
		{"feed 405", "POST", "/notes/changes", `{}`, nil, 405},
		{"delete", "DELETE", doc, "", nil, 204},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := send(tt.method, tt.target, tt.body, tt.header...)
			if got.status != tt.status {
				t.Fatalf("status %d, want %d", got.status, tt.status)
			}
			if id := got.header.Get(mongohttp.RequestIDHeader); !made.MatchString(id) {
				t.Errorf("X-Request-Id %q, want a made id", id)
			}
			if tt.method == "DELETE" {
				return // the document is gone: the request cannot be repeated
			}
			again := send(tt.method, tt.target, tt.body, append([]string{mongohttp.RequestIDHeader, "client-id-7"}, tt.header...)...)
			if id := again.header.Get(mongohttp.RequestIDHeader); id != "client-id-7" {
				t.Errorf("with the client's id: X-Request-Id %q (status %d)", id, again.status)
			}
		})
	}
}
