package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// statsJSON is the answer of the stats routes.
type statsJSON struct {
	Posts   int64 `json:"posts"`
	Likes   int64 `json:"likes"`
	ByMonth []struct {
		Month string `json:"month"`
		Posts int64  `json:"posts"`
		Likes int64  `json:"likes"`
	} `json:"by_month"`
}

// rawPosts reads the posts the filter keeps straight from the collection.
func rawPosts(t *testing.T, filter bson.D) []Post {
	t.Helper()
	coll, _ := sharedCollection(t, "posts")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cur, err := coll.Find(ctx, filter)
	if err != nil {
		t.Fatal(err)
	}
	var out []Post
	if err := cur.All(ctx, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// wantStats compares a stats answer with sums over posts, per month of
// their publication date.
func wantStats(t *testing.T, got statsJSON, posts []Post) {
	t.Helper()
	type sums struct{ posts, likes int64 }
	byMonth := map[string]*sums{}
	var total sums
	for _, p := range posts {
		m := p.Published.UTC().Format("2006-01")
		if byMonth[m] == nil {
			byMonth[m] = &sums{}
		}
		byMonth[m].posts++
		byMonth[m].likes += int64(p.Likes)
		total.posts++
		total.likes += int64(p.Likes)
	}
	months := slices.Sorted(func(yield func(string) bool) {
		for m := range byMonth {
			if !yield(m) {
				return
			}
		}
	})
	if got.Posts != total.posts || got.Likes != total.likes || len(got.ByMonth) != len(months) {
		t.Fatalf("got %d posts, %d likes, %d months; want %d, %d, %d", got.Posts, got.Likes, len(got.ByMonth), total.posts, total.likes, len(months))
	}
	for i, m := range months {
		g := got.ByMonth[i]
		if g.Month != m || g.Posts != byMonth[m].posts || g.Likes != byMonth[m].likes {
			t.Fatalf("month %d: %+v, want %s: %d posts, %d likes", i, g, m, byMonth[m].posts, byMonth[m].likes)
		}
	}
}

func TestStats(t *testing.T) {
	t.Run("one user", func(t *testing.T) {
		resp, body := fetch(t, "GET", "/users/"+someUser.ID.Hex()+"/stats")
		wantStatus(t, resp, body, 200, "application/json")
		got := decode[statsJSON](t, body)
		wantStats(t, got, rawPosts(t, bson.D{{Key: "author_id", Value: someUser.ID}}))
		if got.Posts == 0 || len(got.ByMonth) < 2 {
			t.Fatalf("the sample user has too few posts to test with: %s", body)
		}
	})
	t.Run("one user, one year", func(t *testing.T) {
		from, to := time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
		resp, body := fetch(t, "GET", "/users/"+someUser.ID.Hex()+"/stats?published[gte]=2023-01-01&published[lt]=2024-01-01")
		wantStatus(t, resp, body, 200, "application/json")
		wantStats(t, decode[statsJSON](t, body), rawPosts(t, bson.D{{Key: "author_id", Value: someUser.ID},
			{Key: "published", Value: bson.D{{Key: "$gte", Value: from}, {Key: "$lt", Value: to}}}}))
	})
	t.Run("everyone, a date range", func(t *testing.T) {
		from, to := time.Date(2024, 3, 15, 0, 0, 0, 0, time.UTC), time.Date(2024, 9, 1, 0, 0, 0, 0, time.UTC)
		q := url.Values{"published[gte]": {"2024-03-15"}, "published[lt]": {"2024-09-01T00:00:00Z"}}
		resp, body := fetch(t, "GET", "/posts/stats?"+q.Encode())
		wantStatus(t, resp, body, 200, "application/json")
		got := decode[statsJSON](t, body)
		wantStats(t, got, rawPosts(t, bson.D{{Key: "published", Value: bson.D{{Key: "$gte", Value: from}, {Key: "$lt", Value: to}}}}))
		if len(got.ByMonth) != 6 || got.ByMonth[0].Month != "2024-03" {
			t.Fatalf("months %+v", got.ByMonth)
		}
	})
	t.Run("everyone", func(t *testing.T) {
		resp, body := fetch(t, "GET", "/posts/stats")
		wantStatus(t, resp, body, 200, "application/json")
		got := decode[statsJSON](t, body)
		wantStats(t, got, rawPosts(t, bson.D{}))
		if got.Posts < samplePosts {
			t.Fatalf("%d posts in all", got.Posts)
		}
	})
	t.Run("no posts in range", func(t *testing.T) {
		resp, body := fetch(t, "GET", "/users/"+someUser.ID.Hex()+"/stats?published[lt]=2000-01-01")
		wantStatus(t, resp, body, 200, "application/json")
		if string(body) != `{"posts":0,"likes":0,"by_month":[]}`+"\n" {
			t.Fatalf("empty stats: %s", body)
		}
	})

	for _, tt := range []struct {
		path   string
		status int
		code   string
	}{
		{"/users/" + unknownID + "/stats", 404, "not_found"},
		{"/users/xyz/stats", 400, "invalid_object_id"},
		{"/users/%00/stats", 400, "invalid_object_id"},
		{"/posts/stats?published[gte]=yesterday", 400, "invalid_parameter"},
		{"/posts/stats?published[gte]=2024-13-01", 400, "invalid_parameter"},
		{"/posts/stats?published[gte]=2024-01-01&published[gte]=2024-02-01", 400, "invalid_parameter"},
		{"/posts/stats?month=2024-04", 400, "field_not_allowed"},
		{"/posts/stats?month[eq]=2024-04", 400, "field_not_allowed"},
		{"/posts/stats?sort=-posts", 400, "unknown_parameter"},
		{"/posts/stats?limit=5", 400, "unknown_parameter"},
		{"/posts/stats?embed=author", 400, "unknown_parameter"},
		{"/posts/stats?group=$author_id", 400, "field_not_allowed"},
		{"/posts/stats?likes[$gt]=1", 400, "operator_not_allowed"},
		{`/posts/stats?filter={"month":"2024-04"}`, 400, "field_not_allowed"},
		{`/posts/stats?filter={"$where":"1"}`, 400, "operator_not_allowed"},
		{`/posts/stats?filter={"author_id":"xyz"}`, 400, "invalid_object_id"},
		{"/users/" + someUser.ID.Hex() + "/stats?password_hash=x", 400, "field_not_allowed"},
	} {
		t.Run(tt.path, func(t *testing.T) {
			resp, body := fetch(t, "GET", tt.path)
			wantProblem(t, resp, body, tt.status, tt.code)
		})
	}
	resp, body := fetch(t, "POST", "/posts/stats")
	wantProblem(t, resp, body, 405, "method_not_allowed")
}

// TestMonthFollowsPublished: the writes keep each post's month in step
// with its publication date, so the stats count it where it belongs.
func TestMonthFollowsPublished(t *testing.T) {
	coll, created := sharedCollection(t, "posts")
	author := someUser.ID.Hex()
	stored := func(id string) string {
		t.Helper()
		oid, _ := bson.ObjectIDFromHex(id)
		var p Post
		if err := coll.FindOne(context.Background(), bson.D{{Key: "_id", Value: oid}}).Decode(&p); err != nil {
			t.Fatal(err)
		}
		if p.Month != monthOf(p.Published) {
			t.Fatalf("stored month %q, published %s", p.Month, p.Published)
		}
		return p.Month
	}
	statsOf := func(month string) (posts int64) {
		t.Helper()
		_, body := fetch(t, "GET", "/users/"+author+"/stats")
		for _, m := range decode[statsJSON](t, body).ByMonth {
			if m.Month == month {
				return m.Posts
			}
		}
		return 0
	}
	before2019, before2018 := statsOf("2019-02"), statsOf("2018-07")

	resp, body := send(t, "POST", "/posts", "application/json", `{"author_id":"`+author+`","title":"Old news","published":"2019-02-10T08:00:00Z","likes":3}`)
	if resp.StatusCode != 201 {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	var post map[string]any
	_ = json.Unmarshal(body, &post)
	id := post["_id"].(string)
	created(id)
	if _, ok := post["month"]; ok {
		t.Fatalf("the hidden month was answered: %s", body)
	}
	if m := stored(id); m != "2019-02" || statsOf("2019-02") != before2019+1 {
		t.Fatalf("after create: month %s, stats %d (before %d)", m, statsOf("2019-02"), before2019)
	}
	resp, body = send(t, "PATCH", "/posts/"+id, "application/merge-patch+json", `{"published":"2018-07-31T23:59:59Z"}`)
	if resp.StatusCode != 200 {
		t.Fatalf("patch: %d %s", resp.StatusCode, body)
	}
	if m := stored(id); m != "2018-07" || statsOf("2019-02") != before2019 || statsOf("2018-07") != before2018+1 {
		t.Fatalf("after patch: month %s", m)
	}
	resp, body = send(t, "PUT", "/posts/"+id, "application/json", `{"author_id":"`+author+`","title":"Replaced","published":"2019-02-01T00:00:00+01:00"}`)
	if resp.StatusCode != 200 {
		t.Fatalf("replace: %d %s", resp.StatusCode, body)
	}
	// 2019-02-01T00:00:00+01:00 is still January in UTC.
	if m := stored(id); m != "2019-01" {
		t.Fatalf("after replace: month %s", m)
	}
	resp, body = send(t, "POST", "/posts", "application/json", `{"author_id":"`+author+`","title":"Now"}`)
	if resp.StatusCode != 201 {
		t.Fatalf("create without a date: %d %s", resp.StatusCode, body)
	}
	_ = json.Unmarshal(body, &post)
	created(post["_id"].(string))
	if m := stored(post["_id"].(string)); m != monthOf(time.Now()) {
		t.Fatalf("dated now, month %s", m)
	}
	// The seeded posts have theirs too.
	for _, p := range rawPosts(t, bson.D{{Key: "author_id", Value: someUser.ID}}) {
		if p.Month != monthOf(p.Published) {
			t.Fatalf("seeded post %s: month %q, published %s", p.ID.Hex(), p.Month, p.Published)
		}
	}
}

// TestEmbedAuthor: ?embed=author adds each post's author, as /users/{id}
// serves it (password_hash never included, which the leak check of every
// answer verifies), on list and single-post routes.
func TestEmbedAuthor(t *testing.T) {
	users := map[string]seedUser{}
	for _, u := range wantUsers {
		users[u.ID.Hex()] = u
	}
	type withAuthor struct {
		postJSON
		Author *userJSON `json:"author"`
	}
	check := func(p withAuthor) {
		t.Helper()
		u, ok := users[p.AuthorID]
		if !ok || p.Author == nil || p.Author.ID != p.AuthorID || p.Author.Name != u.Name || p.Author.Email != u.Email || !p.Author.Created.Equal(u.Created) {
			t.Fatalf("post %s: author %+v, want %+v", p.ID, p.Author, u)
		}
	}
	resp, body := fetch(t, "GET", "/posts?limit=100&embed=author")
	wantStatus(t, resp, body, 200, "application/json")
	page := decode[[]withAuthor](t, body)
	if len(page) != 100 || resp.Header.Get("Link") == "" {
		t.Fatalf("%d posts, Link %q", len(page), resp.Header.Get("Link"))
	}
	for _, p := range page {
		check(p)
	}
	// The next page embeds too.
	resp, body = fetch(t, "GET", nextLink(t, resp))
	wantStatus(t, resp, body, 200, "application/json")
	for _, p := range decode[[]withAuthor](t, body) {
		check(p)
	}
	resp, body = fetch(t, "GET", "/posts/"+somePost.ID.Hex()+"?embed=author")
	wantStatus(t, resp, body, 200, "application/json")
	check(decode[withAuthor](t, body))
	resp, body = fetch(t, "GET", "/users/"+someUser.ID.Hex()+"/posts?embed=author&limit=3")
	wantStatus(t, resp, body, 200, "application/json")
	for _, p := range decode[[]withAuthor](t, body) {
		check(p)
	}
	for path, code := range map[string]string{
		"/posts?embed=password_hash":                        "unknown_parameter",
		"/posts?embed=author.team":                          "unknown_parameter",
		"/posts?embed=posts":                                "unknown_parameter",
		"/users?embed=author":                               "unknown_parameter",
		"/posts?embed=author,author":                        "invalid_parameter",
		"/posts?embed=":                                     "invalid_parameter",
		fmt.Sprintf("/posts/%s?embed=x", somePost.ID.Hex()): "unknown_parameter",
	} {
		resp, body := fetch(t, "GET", path)
		wantProblem(t, resp, body, 400, code)
	}
}
