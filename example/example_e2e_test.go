package main

import (
	"cmp"
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// userJSON is a user as the service writes it.
type userJSON struct {
	ID      string    `json:"_id"`
	Name    string    `json:"name"`
	Email   string    `json:"email"`
	Age     int       `json:"age"`
	Created time.Time `json:"created"`
	Tags    []string  `json:"tags"`
	Profile struct {
		City  string  `json:"city"`
		Score float64 `json:"score"`
	} `json:"profile"`
}

// postJSON is a post as the service writes it.
type postJSON struct {
	ID        string    `json:"_id"`
	AuthorID  string    `json:"author_id"`
	Title     string    `json:"title"`
	Body      string    `json:"body"`
	Published time.Time `json:"published"`
	Likes     int       `json:"likes"`
}

// Expected answers, computed from the sample data.

// where returns the elements of all that keep accepts.
func where[T any](all []T, keep func(T) bool) []T {
	var out []T
	for _, x := range all {
		if keep(x) {
			out = append(out, x)
		}
	}
	return out
}

func usersWhere(keep func(u seedUser) bool) []seedUser { return where(wantUsers, keep) }
func postsWhere(keep func(p Post) bool) []Post         { return where(wantPosts, keep) }

// byPublishedDesc is the posts' default order: -published, then _id.
func byPublishedDesc(a, b Post) int {
	return cmp.Or(b.Published.Compare(a.Published), strings.Compare(a.ID.Hex(), b.ID.Hex()))
}

func userIDs(us []seedUser) []string {
	return hexIDs(us, func(u seedUser) bson.ObjectID { return u.ID })
}

func postIDs(ps []Post) []string {
	return hexIDs(ps, func(p Post) bson.ObjectID { return p.ID })
}

func hexIDs[T any](docs []T, id func(T) bson.ObjectID) []string {
	out := make([]string, len(docs))
	for i, d := range docs {
		out[i] = id(d).Hex()
	}
	return out
}

// A user with several posts, and one post, for the id routes.
var (
	someUser = func() seedUser {
		most, best := 0, wantUsers[0]
		for _, u := range wantUsers[:50] {
			if n := len(postsOf(u.ID.Hex())); n > most {
				most, best = n, u
			}
		}
		return best
	}()
	otherUser = wantUsers[len(wantUsers)-1]
	somePost  = wantPosts[123]
	unknownID = "0123456789abcdef01234567"
)

func postsOf(id string) []Post {
	return postsWhere(func(p Post) bool { return p.AuthorID.Hex() == id })
}

func decode[T any](t *testing.T, body []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("decoding %T: %v\n%s", v, err, body)
	}
	return v
}

func wantStatus(t *testing.T, resp *http.Response, body []byte, status int, contentType string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d\n%s", resp.StatusCode, status, body)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != contentType {
		t.Fatalf("Content-Type %q, want %s", resp.Header.Get("Content-Type"), contentType)
	}
}

func wantIDs(t *testing.T, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("ids:\n got %d %v\nwant %d %v", len(got), got, len(want), want)
	}
}

func idsOf[T interface{ userJSON | postJSON }](docs []T) []string {
	out := make([]string, len(docs))
	for i, d := range docs {
		switch d := any(d).(type) {
		case userJSON:
			out[i] = d.ID
		case postJSON:
			out[i] = d.ID
		}
	}
	return out
}

func wantTotal(t *testing.T, resp *http.Response, n int) {
	t.Helper()
	if got := resp.Header.Get("X-Total-Count"); got != strconv.Itoa(n) {
		t.Fatalf("X-Total-Count %q, want %d", got, n)
	}
}

var nextRE = regexp.MustCompile(`^<([^>]+)>; rel="next"$`)

// nextLink returns the target of the Link rel="next" header, or "".
func nextLink(t *testing.T, resp *http.Response) string {
	t.Helper()
	link := resp.Header.Get("Link")
	if link == "" {
		return ""
	}
	m := nextRE.FindStringSubmatch(link)
	if m == nil {
		t.Fatalf("Link %q is not a next link", link)
	}
	return m[1]
}

// TestReads exercises every read route with answers checked against the
// sample data.
func TestReads(t *testing.T) {
	t.Run("users first page", func(t *testing.T) {
		resp, body := fetch(t, "GET", "/users")
		wantStatus(t, resp, body, 200, "application/json")
		got := decode[[]userJSON](t, body)
		sorted := slices.Clone(wantUsers)
		slices.SortFunc(sorted, func(a, b seedUser) int { return strings.Compare(a.ID.Hex(), b.ID.Hex()) })
		wantIDs(t, idsOf(got), userIDs(sorted[:20]))
		if nextLink(t, resp) == "" {
			t.Error("no next link on a full page")
		}
		// Every visible field is there, with its stored value.
		u := sorted[0]
		g := got[0]
		if g.Name != u.Name || g.Email != u.Email || g.Age != int(u.Age) || !g.Created.Equal(u.Created) ||
			!slices.Equal(g.Tags, u.Tags) || g.Profile.City != u.Profile.City || g.Profile.Score != u.Profile.Score {
			t.Errorf("first user %+v, want %+v", g, u)
		}
		var raw []map[string]any
		_ = json.Unmarshal(body, &raw)
		for _, d := range raw {
			if len(d) != 7 {
				t.Fatalf("user has fields %v, want _id name email age created tags profile", keys(d))
			}
		}
	})

	t.Run("users largest page", func(t *testing.T) {
		resp, body := fetch(t, "GET", "/users?limit=100")
		wantStatus(t, resp, body, 200, "application/json")
		if n := len(decode[[]userJSON](t, body)); n != 100 {
			t.Fatalf("%d users, want 100", n)
		}
	})

	t.Run("users filtered by every filterable field", func(t *testing.T) {
		u := wantUsers[42]
		cases := []struct {
			query string
			keep  func(seedUser) bool
		}{
			{"name=" + url.QueryEscape(u.Name), func(x seedUser) bool { return x.Name == u.Name }},
			{"email=" + url.QueryEscape(u.Email), func(x seedUser) bool { return x.Email == u.Email }},
			{"age=30", func(x seedUser) bool { return x.Age == 30 }},
			{"age[gte]=70&age[lt]=72", func(x seedUser) bool { return x.Age >= 70 && x.Age < 72 }},
			{"tags=go&age[lt]=40", func(x seedUser) bool { return slices.Contains(x.Tags, "go") && x.Age < 40 }},
			{"tags[in]=music,cooking&profile.city=Berlin", func(x seedUser) bool {
				return (slices.Contains(x.Tags, "music") || slices.Contains(x.Tags, "cooking")) && x.Profile.City == "Berlin"
			}},
			{"profile.city=" + url.QueryEscape("São Paulo"), func(x seedUser) bool { return x.Profile.City == "São Paulo" }},
			{"profile.city[ne]=Lisbon&age[lte]=20", func(x seedUser) bool { return x.Profile.City != "Lisbon" && x.Age <= 20 }},
			{"created[gte]=2022-01-01&created[lt]=2022-03-01", func(x seedUser) bool {
				return !x.Created.Before(time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC)) && x.Created.Before(time.Date(2022, 3, 1, 0, 0, 0, 0, time.UTC))
			}},
			{"filter=" + url.QueryEscape(`{"$or":[{"age":{"$lt":19}},{"profile.city":"Osaka","tags":"go"}]}`), func(x seedUser) bool {
				return x.Age < 19 || (x.Profile.City == "Osaka" && slices.Contains(x.Tags, "go"))
			}},
		}
		for _, c := range cases {
			t.Run(c.query, func(t *testing.T) {
				want := usersWhere(c.keep)
				if len(want) == 0 || len(want) > 100 {
					t.Fatalf("the case matches %d users; pick one matching 1 to 100", len(want))
				}
				slices.SortFunc(want, func(a, b seedUser) int {
					return cmp.Or(cmp.Compare(a.Age, b.Age), strings.Compare(a.ID.Hex(), b.ID.Hex()))
				})
				resp, body := fetch(t, "GET", "/users?"+c.query+"&sort=age&limit=100&count=exact")
				wantStatus(t, resp, body, 200, "application/json")
				wantTotal(t, resp, len(want))
				wantIDs(t, idsOf(decode[[]userJSON](t, body)), userIDs(want))
				if link := resp.Header.Get("Link"); link != "" {
					t.Errorf("Link %q on the last page", link)
				}
			})
		}
	})

	t.Run("users sorted and paged to the end", func(t *testing.T) {
		want := usersWhere(func(u seedUser) bool { return u.Age >= 75 })
		slices.SortFunc(want, func(a, b seedUser) int {
			return cmp.Or(strings.Compare(b.Name, a.Name), strings.Compare(a.ID.Hex(), b.ID.Hex()))
		})
		var got []string
		target := "/users?age[gte]=75&sort=-name&limit=25&count=exact"
		for pages := 0; target != ""; pages++ {
			if pages > 10 {
				t.Fatal("more than 10 pages")
			}
			resp, body := fetch(t, "GET", target)
			wantStatus(t, resp, body, 200, "application/json")
			wantTotal(t, resp, len(want)) // the same total on every page
			got = append(got, idsOf(decode[[]userJSON](t, body))...)
			target = nextLink(t, resp)
			if target != "" && !strings.HasPrefix(target, "/users?") {
				t.Fatalf("next link %q is not relative to /users", target)
			}
		}
		wantIDs(t, got, userIDs(want))
	})

	t.Run("users sorted by age then name", func(t *testing.T) {
		want := slices.Clone(wantUsers)
		slices.SortFunc(want, func(a, b seedUser) int {
			return cmp.Or(cmp.Compare(b.Age, a.Age), strings.Compare(a.Name, b.Name), strings.Compare(a.ID.Hex(), b.ID.Hex()))
		})
		resp, body := fetch(t, "GET", "/users?sort=-age,name&limit=30")
		wantStatus(t, resp, body, 200, "application/json")
		wantIDs(t, idsOf(decode[[]userJSON](t, body)), userIDs(want[:30]))
	})

	t.Run("users sorted by created", func(t *testing.T) {
		want := slices.Clone(wantUsers)
		slices.SortFunc(want, func(a, b seedUser) int {
			return cmp.Or(b.Created.Compare(a.Created), strings.Compare(a.ID.Hex(), b.ID.Hex()))
		})
		resp, body := fetch(t, "GET", "/users?sort=-created&limit=10")
		wantStatus(t, resp, body, 200, "application/json")
		wantIDs(t, idsOf(decode[[]userJSON](t, body)), userIDs(want[:10]))
	})

	t.Run("users projected", func(t *testing.T) {
		resp, body := fetch(t, "GET", "/users?fields=name,profile.city&limit=5")
		wantStatus(t, resp, body, 200, "application/json")
		for _, d := range decode[[]map[string]any](t, body) {
			if !slices.Equal(keys(d), []string{"_id", "name", "profile"}) {
				t.Fatalf("fields %v, want _id name profile", keys(d))
			}
			if p, _ := d["profile"].(map[string]any); len(p) != 1 || p["city"] == nil {
				t.Fatalf("profile %v, want city alone", d["profile"])
			}
		}
	})

	t.Run("users as NDJSON", func(t *testing.T) {
		resp, body := fetch(t, "GET", "/users?limit=4", "Accept", "application/x-ndjson")
		wantStatus(t, resp, body, 200, "application/x-ndjson")
		lines := strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
		if len(lines) != 4 {
			t.Fatalf("%d lines, want 4:\n%s", len(lines), body)
		}
		for _, l := range lines {
			decode[userJSON](t, []byte(l))
		}
	})

	t.Run("users HEAD", func(t *testing.T) {
		resp, body := fetch(t, "HEAD", "/users?limit=2")
		if resp.StatusCode != 200 || len(body) != 0 || resp.Header.Get("Link") == "" {
			t.Fatalf("HEAD: status %d, %d body bytes, Link %q", resp.StatusCode, len(body), resp.Header.Get("Link"))
		}
	})

	t.Run("user by id", func(t *testing.T) {
		u := someUser
		resp, body := fetch(t, "GET", "/users/"+u.ID.Hex())
		wantStatus(t, resp, body, 200, "application/json")
		g := decode[userJSON](t, body)
		if g.ID != u.ID.Hex() || g.Name != u.Name || g.Email != u.Email || g.Age != int(u.Age) || !g.Created.Equal(u.Created) ||
			!slices.Equal(g.Tags, u.Tags) || g.Profile.City != u.Profile.City || g.Profile.Score != u.Profile.Score {
			t.Fatalf("user %+v, want %+v", g, u)
		}
		etag := resp.Header.Get("ETag")
		if etag == "" {
			t.Fatal("no ETag")
		}
		resp, body = fetch(t, "GET", "/users/"+u.ID.Hex(), "If-None-Match", etag)
		if resp.StatusCode != http.StatusNotModified || len(body) != 0 {
			t.Fatalf("If-None-Match: status %d, %d body bytes; want 304 and none", resp.StatusCode, len(body))
		}
		// Uppercase hex is the same id.
		resp, body = fetch(t, "GET", "/users/"+strings.ToUpper(u.ID.Hex()))
		wantStatus(t, resp, body, 200, "application/json")
	})

	t.Run("user by id projected", func(t *testing.T) {
		resp, body := fetch(t, "GET", "/users/"+someUser.ID.Hex()+"?fields=email")
		wantStatus(t, resp, body, 200, "application/json")
		d := decode[map[string]any](t, body)
		if !slices.Equal(keys(d), []string{"_id", "email"}) || d["email"] != someUser.Email {
			t.Fatalf("got %v, want _id and email %s", d, someUser.Email)
		}
	})

	t.Run("posts of a user", func(t *testing.T) {
		want := postsOf(someUser.ID.Hex())
		if len(want) < 3 {
			t.Fatalf("the chosen user has %d posts; the test needs at least 3", len(want))
		}
		slices.SortFunc(want, byPublishedDesc)
		resp, body := fetch(t, "GET", "/users/"+someUser.ID.Hex()+"/posts?limit=100&count=exact")
		wantStatus(t, resp, body, 200, "application/json")
		wantTotal(t, resp, len(want))
		got := decode[[]postJSON](t, body)
		wantIDs(t, idsOf(got), postIDs(want))
		for _, p := range got {
			if p.AuthorID != someUser.ID.Hex() {
				t.Fatalf("post %s has author %s", p.ID, p.AuthorID)
			}
		}
	})

	t.Run("posts of a user sorted by likes", func(t *testing.T) {
		want := postsOf(someUser.ID.Hex())
		slices.SortFunc(want, func(a, b Post) int {
			return cmp.Or(cmp.Compare(b.Likes, a.Likes), strings.Compare(a.ID.Hex(), b.ID.Hex()))
		})
		resp, body := fetch(t, "GET", "/users/"+someUser.ID.Hex()+"/posts?sort=-likes&limit=2")
		wantStatus(t, resp, body, 200, "application/json")
		wantIDs(t, idsOf(decode[[]postJSON](t, body)), postIDs(want[:2]))
		next := nextLink(t, resp)
		if !strings.HasPrefix(next, "/users/"+someUser.ID.Hex()+"/posts?") {
			t.Fatalf("next link %q does not stay on the user's posts", next)
		}
		resp, body = fetch(t, "GET", next)
		wantStatus(t, resp, body, 200, "application/json")
		wantIDs(t, idsOf(decode[[]postJSON](t, body)), postIDs(want[2:min(4, len(want))]))
	})

	t.Run("posts of a user cannot be widened", func(t *testing.T) {
		// The base filter comes from the path; the query string can only
		// narrow it, whatever it names.
		other := otherUser.ID.Hex()
		for _, q := range []string{
			"author_id=" + other,
			"author_id[ne]=" + someUser.ID.Hex(),
			"filter=" + url.QueryEscape(`{"$or":[{"author_id":{"$oid":"`+other+`"}},{"likes":{"$gte":0}}],"author_id":"`+other+`"}`),
		} {
			resp, body := fetch(t, "GET", "/users/"+someUser.ID.Hex()+"/posts?"+q)
			wantStatus(t, resp, body, 200, "application/json")
			if got := decode[[]postJSON](t, body); len(got) != 0 {
				t.Fatalf("%s: %d posts, want none", q, len(got))
			}
		}
	})

	t.Run("posts default order", func(t *testing.T) {
		want := slices.Clone(wantPosts)
		slices.SortFunc(want, byPublishedDesc)
		resp, body := fetch(t, "GET", "/posts?limit=15")
		wantStatus(t, resp, body, 200, "application/json")
		wantIDs(t, idsOf(decode[[]postJSON](t, body)), postIDs(want[:15]))
	})

	t.Run("posts filtered", func(t *testing.T) {
		title := somePost.Title
		cases := []struct {
			query string
			keep  func(Post) bool
		}{
			{"likes[gte]=1950", func(p Post) bool { return p.Likes >= 1950 }},
			{"author_id=" + otherUser.ID.Hex(), func(p Post) bool { return p.AuthorID == otherUser.ID }},
			{"title=" + url.QueryEscape(title) + "&published[lt]=2023-01-01", func(p Post) bool {
				return p.Title == title && p.Published.Before(time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC))
			}},
			{"filter=" + url.QueryEscape(`{"published":{"$gte":{"$date":"2025-06-01T00:00:00Z"}},"likes":{"$gt":500}}`), func(p Post) bool {
				return !p.Published.Before(time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)) && p.Likes > 500
			}},
		}
		for _, c := range cases {
			t.Run(c.query, func(t *testing.T) {
				want := postsWhere(c.keep)
				if len(want) == 0 || len(want) > 100 {
					t.Fatalf("the case matches %d posts; pick one matching 1 to 100", len(want))
				}
				slices.SortFunc(want, byPublishedDesc)
				resp, body := fetch(t, "GET", "/posts?"+c.query+"&limit=100&count=exact")
				wantStatus(t, resp, body, 200, "application/json")
				wantTotal(t, resp, len(want))
				wantIDs(t, idsOf(decode[[]postJSON](t, body)), postIDs(want))
			})
		}
	})

	t.Run("post by id", func(t *testing.T) {
		p := somePost
		resp, body := fetch(t, "GET", "/posts/"+p.ID.Hex())
		wantStatus(t, resp, body, 200, "application/json")
		g := decode[postJSON](t, body)
		if g.ID != p.ID.Hex() || g.AuthorID != p.AuthorID.Hex() || g.Title != p.Title || g.Body != p.Body ||
			!g.Published.Equal(p.Published) || g.Likes != int(p.Likes) {
			t.Fatalf("post %+v, want %+v", g, p)
		}
		// Fields in the struct's order, all of them.
		if want := `{"_id":"` + p.ID.Hex() + `","author_id":"` + p.AuthorID.Hex() + `","title":`; !strings.HasPrefix(string(body), want) {
			t.Fatalf("body %s does not start with %s", body, want)
		}
	})

	t.Run("health", func(t *testing.T) {
		resp, body := fetch(t, "GET", "/healthz")
		wantStatus(t, resp, body, 200, "application/json")
		if got := decode[map[string]string](t, body); got["status"] != "ok" {
			t.Fatalf("health %v", got)
		}
	})

	t.Run("pool statistics", func(t *testing.T) {
		resp, body := fetch(t, "GET", shared.ops+"/debug/pool")
		wantStatus(t, resp, body, 200, "application/json")
		s := decode[poolJSON](t, body)
		if s.Current.Open < 1 || s.Cumulative.Checkouts < 1 || s.Cumulative.ConnectionsCreated < 1 {
			t.Fatalf("pool statistics of a busy client: %s", body)
		}
	})

	t.Run("expvar", func(t *testing.T) {
		resp, body := fetch(t, "GET", shared.ops+"/debug/vars")
		wantStatus(t, resp, body, 200, "application/json")
		vars := decode[map[string]json.RawMessage](t, body)
		if vars["memstats"] == nil {
			t.Fatalf("no memstats in %v", keys(vars))
		}
		s := decode[poolJSON](t, vars["mongohttp.pool"])
		if s.Cumulative.Checkouts < 1 {
			t.Fatalf("mongohttp.pool: %s", vars["mongohttp.pool"])
		}
	})
}

type poolJSON struct {
	Current struct {
		Open    int64 `json:"open"`
		InUse   int64 `json:"in_use"`
		Idle    int64 `json:"idle"`
		Waiting int64 `json:"waiting"`
	} `json:"current"`
	Cumulative struct {
		Checkouts          uint64 `json:"checkouts"`
		ConnectionsCreated uint64 `json:"connections_created"`
	} `json:"cumulative"`
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// problemJSON is an RFC 9457 answer.
type problemJSON struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail"`
	Instance string `json:"instance"`
	Code     string `json:"code"`
}

func wantProblem(t *testing.T, resp *http.Response, body []byte, status int, code string) problemJSON {
	t.Helper()
	wantStatus(t, resp, body, status, "application/problem+json")
	p := decode[problemJSON](t, body)
	if p.Code != code || p.Status != status || p.Type != "urn:mongohttp:problem:"+code || p.Title == "" || p.Detail == "" {
		t.Fatalf("problem %+v, want status %d and code %s", p, status, code)
	}
	return p
}

// TestHostileInput sends what an attacker or a careless client would, and
// checks each answer is the right 4xx problem, never a 200 and never a 500.
func TestHostileInput(t *testing.T) {
	// A genuine after token of /users, and the same token damaged.
	resp, body := fetch(t, "GET", "/users?limit=2")
	wantStatus(t, resp, body, 200, "application/json")
	next, _ := url.Parse(nextLink(t, resp))
	token := next.Query().Get("after")
	if token == "" {
		t.Fatal("no after token in the next link")
	}
	tampered := []byte(token)
	i := len(tampered) / 2
	tampered[i] = map[bool]byte{true: 'B', false: 'A'}[tampered[i] == 'A']

	user, post := someUser.ID.Hex(), somePost.ID.Hex()
	q := url.QueryEscape
	cases := []struct {
		name, method, path string
		status             int
		code               string
	}{
		// Operator injection.
		{"operator in brackets", "GET", "/users?name[$ne]=x", 400, "operator_not_allowed"},
		{"operator as parameter", "GET", "/users?$where=sleep(1000)", 400, "operator_not_allowed"},
		{"where in filter", "GET", "/users?filter=" + q(`{"$where":"sleep(1000)"}`), 400, "operator_not_allowed"},
		{"where nested in or", "GET", "/users?filter=" + q(`{"$or":[{"age":1},{"$where":"1"}]}`), 400, "operator_not_allowed"},
		{"expr in filter", "GET", "/users?filter=" + q(`{"$expr":{"$gt":["$age",1]}}`), 400, "operator_not_allowed"},
		{"regex not allowed", "GET", "/users?name[regex]=^A", 400, "operator_not_allowed"},
		{"regex in filter", "GET", "/users?filter=" + q(`{"name":{"$regex":"^A"}}`), 400, "operator_not_allowed"},
		{"unknown operator", "GET", "/users?age[foo]=1", 400, "operator_not_allowed"},
		{"operator on posts", "GET", "/posts?likes[$gt]=1", 400, "operator_not_allowed"},

		// The hidden field, every way in.
		{"hidden equality", "GET", "/users?password_hash=x", 400, "field_not_allowed"},
		{"hidden with operator", "GET", "/users?password_hash[exists]=true", 400, "field_not_allowed"},
		{"hidden in filter", "GET", "/users?filter=" + q(`{"password_hash":{"$exists":true}}`), 400, "field_not_allowed"},
		{"hidden in or", "GET", "/users?filter=" + q(`{"$or":[{"password_hash":"x"},{"age":30}]}`), 400, "field_not_allowed"},
		{"hidden in nor", "GET", "/users?filter=" + q(`{"$nor":[{"password_hash":{"$gt":""}}]}`), 400, "field_not_allowed"},
		{"hidden sort", "GET", "/users?sort=password_hash", 400, "field_not_allowed"},
		{"hidden sort descending", "GET", "/users?sort=age,-password_hash", 400, "field_not_allowed"},
		{"hidden projection", "GET", "/users?fields=password_hash", 400, "field_not_allowed"},
		{"hidden among projected", "GET", "/users?fields=name,password_hash", 400, "field_not_allowed"},
		{"hidden projection by id", "GET", "/users/" + user + "?fields=password_hash", 400, "field_not_allowed"},

		// Other fields that are not allowed.
		{"unlisted nested field", "GET", "/users?profile.score=5", 400, "field_not_allowed"},
		{"unlisted field in filter", "GET", "/users?filter=" + q(`{"profile.score":{"$gt":5}}`), 400, "field_not_allowed"},
		{"unsortable field", "GET", "/users?sort=email", 400, "field_not_allowed"},
		{"projection refused on posts", "GET", "/posts?fields=title", 400, "field_not_allowed"},

		// Values of the wrong type.
		{"age not a number", "GET", "/users?age=thirty", 400, "invalid_parameter"},
		{"date not a date", "GET", "/users?created[gte]=yesterday", 400, "invalid_parameter"},
		{"string for an int in filter", "GET", "/users?filter=" + q(`{"age":"30"}`), 400, "invalid_parameter"},
		{"filter not JSON", "GET", "/users?filter=" + q(`{age:30`), 400, "invalid_parameter"},
		{"author not an ObjectID", "GET", "/posts?author_id=bob", 400, "invalid_object_id"},

		// Limits and paging.
		{"limit zero", "GET", "/users?limit=0", 400, "invalid_parameter"},
		{"limit negative", "GET", "/users?limit=-1", 400, "invalid_parameter"},
		{"limit not a number", "GET", "/users?limit=ten", 400, "invalid_parameter"},
		{"limit above maximum", "GET", "/users?limit=101", 400, "limit_exceeded"},
		{"limit huge", "GET", "/users?limit=99999999999999999999999", 400, "limit_exceeded"},
		{"skip huge", "GET", "/users?skip=1000000", 400, "limit_exceeded"},
		{"after garbage", "GET", "/users?after=garbage", 400, "invalid_cursor"},
		{"after tampered", "GET", "/users?limit=2&after=" + string(tampered), 400, "invalid_cursor"},
		{"after for another sort", "GET", "/users?sort=age&after=" + token, 400, "invalid_cursor"},
		{"after and skip", "GET", "/users?after=" + token + "&skip=2", 400, "invalid_parameter"},
		{"count unknown", "GET", "/users?count=all", 400, "invalid_parameter"},
		{"parameter twice", "GET", "/users?limit=5&limit=6", 400, "invalid_parameter"},
		{"query string too long", "GET", "/users?name=" + strings.Repeat("a", 5000), 400, "limit_exceeded"},

		// Unknown parameters.
		{"unknown field", "GET", "/users?admin=true", 400, "field_not_allowed"},
		{"unknown field with operator", "GET", "/users?admin[eq]=true", 400, "field_not_allowed"},
		{"a users field on posts", "GET", "/posts?email=x", 400, "field_not_allowed"},
		{"a users field on posts with operator", "GET", "/posts?email[eq]=x", 400, "field_not_allowed"},
		{"unknown parameter by id", "GET", "/users/" + user + "?admin=true", 400, "unknown_parameter"},
		{"filter on a single post", "GET", "/posts/" + post + "?likes=1", 400, "unknown_parameter"},

		// Ids.
		{"user id malformed", "GET", "/users/xyz", 400, "invalid_object_id"},
		{"user id not hex", "GET", "/users/zzzzzzzzzzzzzzzzzzzzzzzz", 400, "invalid_object_id"},
		{"user id too long", "GET", "/users/" + user + "00", 400, "invalid_object_id"},
		{"user id injection", "GET", "/users/" + url.PathEscape(`{"$ne":null}`), 400, "invalid_object_id"},
		{"user id unknown", "GET", "/users/" + unknownID, 404, "not_found"},
		{"posts of malformed user id", "GET", "/users/xyz/posts", 400, "invalid_object_id"},
		{"posts of unknown user", "GET", "/users/" + unknownID + "/posts", 404, "not_found"},
		{"post id malformed", "GET", "/posts/" + post[:23], 400, "invalid_object_id"},
		{"post id unknown", "GET", "/posts/" + unknownID, 404, "not_found"},
		{"post id of a user", "GET", "/posts/" + user, 404, "not_found"},

		// Methods.
		{"POST users without a body type", "POST", "/users", 415, "unsupported_media_type"},
		{"DELETE user", "DELETE", "/users/" + user, 405, "method_not_allowed"},
		{"PUT posts of user", "PUT", "/users/" + user + "/posts", 405, "method_not_allowed"},
		{"PATCH post without a body type", "PATCH", "/posts/" + post, 415, "unsupported_media_type"},
		{"POST posts without a body type", "POST", "/posts", 415, "unsupported_media_type"},
		{"PUT user", "PUT", "/users/" + user, 405, "method_not_allowed"},
		{"POST healthz", "POST", "/healthz", 405, "method_not_allowed"},

		// Paths no route serves.
		{"unknown path", "GET", "/admin", 404, "not_found"},
		{"empty id", "GET", "/users/", 404, "not_found"},
		{"too deep", "GET", "/users/" + user + "/posts/" + post, 404, "not_found"},
		// The operator endpoints live on their own listener.
		{"pool statistics on the public address", "GET", "/debug/pool", 404, "not_found"},
		{"expvar on the public address", "GET", "/debug/vars", 404, "not_found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := fetch(t, c.method, c.path)
			p := wantProblem(t, resp, body, c.status, c.code)
			if c.status == 405 && resp.Header.Get("Allow") != "GET, HEAD" {
				t.Errorf("Allow %q, want GET, HEAD", resp.Header.Get("Allow"))
			}
			if u, _ := url.Parse(c.path); p.Instance != u.EscapedPath() {
				t.Errorf("instance %q, want %q", p.Instance, u.EscapedPath())
			}
			for _, h := range []string{"Link", "ETag", "X-Total-Count"} {
				if resp.Header.Get(h) != "" {
					t.Errorf("a problem answer carries %s", h)
				}
			}
		})
	}
}

// TestConcurrentReads runs a burst of mixed requests at once: every answer
// must still be right, and the pool must hand connections back.
func TestConcurrentReads(t *testing.T) {
	paths := []string{
		"/users?limit=50&sort=name",
		"/users/" + someUser.ID.Hex(),
		"/users/" + someUser.ID.Hex() + "/posts",
		"/posts?likes[gte]=1000&limit=10",
		"/posts/" + somePost.ID.Hex(),
		"/users?name[$ne]=x",
	}
	type result struct {
		path   string
		status int
	}
	const rounds = 2
	results := make(chan result, rounds*len(paths))
	for range rounds {
		for _, p := range paths {
			go func() {
				resp, _, err := tryFetch("GET", shared.base+p)
				if err != nil {
					t.Errorf("%s: %v", p, err)
					results <- result{p, 0}
					return
				}
				results <- result{p, resp.StatusCode}
			}()
		}
	}
	for range rounds * len(paths) {
		r := <-results
		want := 200
		if strings.Contains(r.path, "$ne") {
			want = 400
		}
		if r.status != want {
			t.Errorf("%s: status %d, want %d", r.path, r.status, want)
		}
	}
	// Every connection goes back to the pool. A handler may still be
	// closing its cursor after its answer is out, so allow a moment.
	eventually(t, 10*time.Second, 50*time.Millisecond, func() (bool, string) {
		resp, body := fetch(t, "GET", shared.ops+"/debug/pool")
		s := decode[poolJSON](t, body)
		if resp.StatusCode != 200 || s.Current.Open > 100 {
			t.Fatalf("after the burst: %s", body)
		}
		return s.Current.InUse == 0 && s.Current.Waiting == 0, "connections still in use after the burst: " + string(body)
	})
}
