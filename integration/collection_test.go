package integration_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/mongohttp/mongohttp"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// TestPolicyPerRequest serves one declaration under two policies chosen by
// a request header: the guest's hidden field and filters stay refused for
// guests, while the administrator sees and filters them.
func TestPolicyPerRequest(t *testing.T) {
	c := connect(t, mongohttp.PoolConfig{})
	coll := database(t, c).Collection("people")
	ps := people(t, coll, 12)
	admin := peoplePolicy
	admin.Hidden = nil
	admin.Filter = map[string]mongohttp.Type{"name": mongohttp.String, "secret": mongohttp.String}
	res, err := mongohttp.New(mongohttp.Collection[bson.Raw]{
		Client:    c,
		Coll:      coll,
		Policy:    peoplePolicy,
		Policies:  map[string]mongohttp.Policy{"admin": admin},
		PolicyFor: func(r *http.Request) string { return r.Header.Get("X-Role") },
		Vary:      []string{"X-Role"},
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/people", res.Find())
	mux.Handle("/people/{id}", res.FindOne())
	srv := httptest.NewServer(mux)
	defer srv.Close()

	get := func(target, role string) response {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+target, nil)
		if role != "" {
			req.Header.Set("X-Role", role)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body json.RawMessage
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return response{resp.StatusCode, resp.Header, body}
	}
	secretQuery := "/people?secret=" + ps[3].Secret

	guest := get(secretQuery, "")
	if guest.status != 400 {
		t.Fatalf("guest filtering a hidden field: %d %s", guest.status, guest.body)
	}
	checkProblem(t, guest, "field_not_allowed")
	if got := get("/people/"+ps[3].ID.Hex(), ""); got.status != 200 || json.Valid(got.body) && containsKey(t, got.body, "secret") {
		t.Fatalf("guest FindOne: %d %s", got.status, got.body)
	}

	adm := get(secretQuery, "admin")
	var docs []map[string]any
	if err := json.Unmarshal(adm.body, &docs); err != nil || adm.status != 200 {
		t.Fatalf("admin: %d %s", adm.status, adm.body)
	}
	if len(docs) != 1 || docs[0]["secret"] != ps[3].Secret {
		t.Fatalf("admin filter on secret gave %s", adm.body)
	}
	// The administrator's policy allows no age filter: each policy is its
	// own allow-list, not a union.
	if got := get("/people?age=21", "admin"); got.status != 400 {
		t.Fatalf("admin age filter: %d %s", got.status, got.body)
	}

	unknown := get("/people", "root")
	if unknown.status != 500 {
		t.Fatalf("unknown policy name: %d %s", unknown.status, unknown.body)
	}
	checkProblem(t, unknown, "internal")

	for _, r := range []response{adm, get("/people/"+ps[0].ID.Hex(), "admin")} {
		if cc := r.header.Get("Cache-Control"); cc != "private, no-cache" {
			t.Errorf("Cache-Control %q, want private, no-cache", cc)
		}
		if v := r.header.Values("Vary"); !containsValue(v, "X-Role") {
			t.Errorf("Vary %q lacks X-Role", v)
		}
	}
	if cc := unknown.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("error Cache-Control %q, want no-store", cc)
	}
}

func containsKey(t *testing.T, body []byte, key string) bool {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	_, ok := m[key]
	return ok
}

func containsValue(vs []string, want string) bool {
	for _, v := range vs {
		for _, part := range splitComma(v) {
			if part == want {
				return true
			}
		}
	}
	return false
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			p := s[start:i]
			for len(p) > 0 && p[0] == ' ' {
				p = p[1:]
			}
			out = append(out, p)
			start = i + 1
		}
	}
	return out
}

// TestCacheHeadersWithoutScope: a declaration with neither BaseFilter nor
// PolicyFor sets no Cache-Control of its own, and one with CacheControl
// set uses it.
func TestCacheHeadersWithoutScope(t *testing.T) {
	c := connect(t, mongohttp.PoolConfig{})
	coll := database(t, c).Collection("people")
	people(t, coll, 2)
	plain := mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{Client: c, Coll: coll}))
	public := mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{Client: c, Coll: coll, CacheControl: "public, max-age=60"}))
	for _, tt := range []struct {
		h    http.Handler
		want string
	}{{plain.Find(), ""}, {public.Find(), "public, max-age=60"}} {
		rec := httptest.NewRecorder()
		tt.h.ServeHTTP(rec, httptest.NewRequest("GET", "/people", nil))
		if rec.Code != 200 || rec.Header().Get("Cache-Control") != tt.want {
			t.Errorf("status %d, Cache-Control %q, want %q", rec.Code, rec.Header().Get("Cache-Control"), tt.want)
		}
	}
}

// TestAdmissionRefusesWhenFull holds the only place of a handler (its base
// filter blocks until released) and checks that the next request is
// refused at once with 503 "overloaded" and Retry-After, that a request
// of another handler is not affected, and that the place comes back.
func TestAdmissionRefusesWhenFull(t *testing.T) {
	c := connect(t, mongohttp.PoolConfig{})
	coll := database(t, c).Collection("people")
	people(t, coll, 3)
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	res := mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{
		Client: c,
		Coll:   coll,
		BaseFilter: func(r *http.Request) (bson.D, error) {
			if r.Header.Get("X-Hold") != "" {
				once.Do(func() { close(entered) })
				<-release
			}
			return nil, nil
		},
		Admission: mongohttp.Admission{MaxActive: 1, MaxQueued: -1},
	}))
	find, findOne := res.Find(), res.FindOne()
	mux := http.NewServeMux()
	mux.Handle("/people", find)
	mux.Handle("/people/{id}", findOne)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	held := make(chan int)
	go func() {
		req, _ := http.NewRequest("GET", srv.URL+"/people", nil)
		req.Header.Set("X-Hold", "1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			held <- 0
			return
		}
		resp.Body.Close()
		held <- resp.StatusCode
	}()
	<-entered

	get := func(target string) response {
		t.Helper()
		resp, err := http.Get(srv.URL + target)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body json.RawMessage
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return response{resp.StatusCode, resp.Header, body}
	}
	refused := get("/people")
	if refused.status != http.StatusServiceUnavailable {
		t.Fatalf("second request while the only place is taken: %d %s", refused.status, refused.body)
	}
	checkProblem(t, refused, "overloaded")
	if refused.header.Get("Retry-After") == "" {
		t.Error("503 overloaded without Retry-After")
	}
	// FindOne is another handler with a place of its own.
	if got := get("/people/" + bson.NewObjectID().Hex()); got.status != 404 {
		t.Fatalf("FindOne while Find is full: %d %s", got.status, got.body)
	}
	if st := c.AdmissionStats(); st.Active != 1 || st.Refused != 0 {
		t.Errorf("client-wide stats %+v, want 1 active, none refused by the client", st)
	}
	close(release)
	if s := <-held; s != 200 {
		t.Fatalf("held request ended %d", s)
	}
	// The answer can reach the client a moment before its handler returns
	// and gives the place back.
	eventually(t, 10*time.Second, "the place given back", func() bool { return c.AdmissionStats().Active == 0 })
	if got := get("/people"); got.status != 200 {
		t.Fatalf("after release: %d %s", got.status, got.body)
	}
	// Again the answer can come before the handler gives its place back.
	eventually(t, 10*time.Second, "client-wide stats back to 0 active, 0 queued", func() bool {
		st := c.AdmissionStats()
		return st.Active == 0 && st.Queued == 0
	})
}

// TestAdmissionClientWide: a client bound of one place is shared by the
// handlers of two declarations.
func TestAdmissionClientWide(t *testing.T) {
	c, err := mongohttp.ConnectConfig(context.Background(), mongohttp.Config{
		URI:       serverURI,
		Admission: mongohttp.Admission{MaxActive: 1, MaxQueued: -1},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) }) // after the database is dropped
	coll := database(t, c).Collection("people")
	people(t, coll, 2)
	entered, release := make(chan struct{}), make(chan struct{})
	slow := mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{
		Client: c,
		Coll:   coll,
		BaseFilter: func(r *http.Request) (bson.D, error) {
			close(entered)
			<-release
			return nil, nil
		},
	}))
	other := mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{Client: c, Coll: coll}))
	done := make(chan int)
	go func() {
		rec := httptest.NewRecorder()
		slow.Find().ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		done <- rec.Code
	}()
	<-entered
	rec := httptest.NewRecorder()
	other.Find().ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("second handler while the client's only place is taken: %d %s", rec.Code, rec.Body)
	}
	close(release)
	if code := <-done; code != 200 {
		t.Fatalf("slow request: %d", code)
	}
	rec = httptest.NewRecorder()
	other.Find().ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != 200 {
		t.Fatalf("after release: %d %s", rec.Code, rec.Body)
	}
	if st := c.AdmissionStats(); st.Refused != 1 || st.Active != 0 {
		t.Fatalf("client stats %+v, want 1 refused, 0 active", st)
	}
}
