package main

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/gorilla/mux"
	"github.com/mongohttp/mongohttp"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// chiRouter mounts the service's handlers on chi. The only router-specific
// part is how a handler reads {id}: chi.URLParam.
func chiRouter(client *mongohttp.Client, db *mongo.Database) http.Handler {
	rt := newRoutes(client, db, func(r *http.Request) string { return chi.URLParam(r, "id") }, slog.Default(), limits{maxTime: testMaxTime})
	r := chi.NewRouter()
	// The handlers answer every method themselves (405 problem+json with
	// Allow for those they do not serve), so they are mounted for all.
	r.Handle("/users", rt.Users)
	r.Handle("/users/{id}", rt.User)
	r.Handle("/users/{id}/posts", rt.UserPosts)
	r.Handle("/users/{id}/stats", rt.UserStats)
	r.Handle("/posts", rt.Posts)
	r.Handle("/posts/stats", rt.PostStats)
	r.Handle("/posts/{id}", rt.Post)
	r.Handle("/healthz", rt.Health)
	r.NotFound(notFound)
	return r
}

// gorillaRouter mounts the same handlers on gorilla/mux, reading {id} with
// mux.Vars.
func gorillaRouter(client *mongohttp.Client, db *mongo.Database) http.Handler {
	rt := newRoutes(client, db, func(r *http.Request) string { return mux.Vars(r)["id"] }, slog.Default(), limits{maxTime: testMaxTime})
	r := mux.NewRouter()
	r.Handle("/users", rt.Users)
	r.Handle("/users/{id}", rt.User)
	r.Handle("/users/{id}/posts", rt.UserPosts)
	r.Handle("/users/{id}/stats", rt.UserStats)
	r.Handle("/posts", rt.Posts)
	r.Handle("/posts/stats", rt.PostStats) // before /posts/{id}: gorilla/mux takes the first match
	r.Handle("/posts/{id}", rt.Post)
	r.Handle("/healthz", rt.Health)
	r.NotFoundHandler = http.HandlerFunc(notFound)
	return r
}

// TestRouters serves the same database through chi and gorilla/mux and
// checks that every answer is the one the ServeMux service gives, byte for
// byte: status, media type, body, and the Link, ETag and X-Total-Count
// headers.
func TestRouters(t *testing.T) {
	client, err := mongohttp.Connect(context.Background(), shared.dbURI)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = client.Close(ctx)
	})
	db := client.Database(shared.dbName)

	user, post := someUser.ID.Hex(), somePost.ID.Hex()
	requests := []struct{ method, path string }{
		{"GET", "/users?limit=3"},
		{"GET", "/users?age[gte]=60&sort=-age,name&fields=name,age&limit=4&count=exact"},
		{"GET", "/users?profile.city=Lisbon&tags[in]=go,music"},
		{"HEAD", "/users?limit=2"},
		{"GET", "/users/" + user},
		{"GET", "/users/" + user + "?fields=name,tags"},
		{"GET", "/users/" + user + "/posts?sort=likes&limit=3"},
		{"GET", "/users/" + user + "/posts?author_id=" + otherUser.ID.Hex()},
		{"GET", "/posts?limit=5"},
		{"GET", "/posts/" + post},
		{"GET", "/posts?limit=5&embed=author"},
		{"GET", "/posts/" + post + "?embed=author"},
		{"GET", "/users/" + user + "/stats"},
		{"GET", "/posts/stats?published[gte]=2024-01-01&published[lt]=2024-04-01"},
		{"GET", "/healthz"},
		// Errors.
		{"GET", "/users?name[$ne]=x"},
		{"GET", "/users?sort=password_hash"},
		{"GET", "/users/xyz"},
		{"GET", "/users/" + unknownID},
		{"GET", "/users/xyz/posts"},
		{"GET", "/users/" + unknownID + "/posts"},
		{"GET", "/users/xyz/stats"},
		{"GET", "/users/" + unknownID + "/stats"},
		{"GET", "/posts/" + unknownID},
		{"GET", "/posts?limit=1000"},
		// Writes that change nothing: the shared data stays as seeded.
		{"POST", "/users"},
		{"PUT", "/users/" + user},
		{"PATCH", "/posts/" + post},
		{"DELETE", "/posts/" + unknownID},
		{"DELETE", "/posts/xyz"},
		{"GET", "/nowhere"},
	}
	for _, rt := range []struct {
		name    string
		handler http.Handler
	}{
		{"chi", chiRouter(client, db)},
		{"gorilla", gorillaRouter(client, db)},
	} {
		t.Run(rt.name, func(t *testing.T) {
			srv := httptest.NewServer(rt.handler)
			defer srv.Close()
			for _, req := range requests {
				t.Run(req.method+" "+req.path, func(t *testing.T) {
					want, wantBody := fetch(t, req.method, req.path)
					got, gotBody := fetch(t, req.method, srv.URL+req.path)
					if got.StatusCode != want.StatusCode || !bytes.Equal(gotBody, wantBody) {
						t.Fatalf("%s answers %d\n%s\nServeMux answers %d\n%s", rt.name, got.StatusCode, gotBody, want.StatusCode, wantBody)
					}
					for _, h := range []string{"Content-Type", "Link", "ETag", "X-Total-Count"} {
						if got.Header.Get(h) != want.Header.Get(h) {
							t.Errorf("%s: %q, ServeMux: %q", h, got.Header.Get(h), want.Header.Get(h))
						}
					}
					if want.StatusCode == 405 && got.Header.Get("Allow") == "" {
						t.Error("405 without an Allow header")
					}
				})
			}
		})
	}
}
