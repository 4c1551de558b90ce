package integration_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mongohttp/mongohttp"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// commandLog records the commands a client sends, through the driver's
// command monitor: the proof that a page costs a fixed number of queries.
type commandLog struct {
	mu   sync.Mutex
	sent []sentCommand
}

type sentCommand struct {
	name, coll string // "find" and "users"
	cmd        bson.Raw
}

func (l *commandLog) monitor() *event.CommandMonitor {
	return &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		coll, _ := e.Command.Lookup(e.CommandName).StringValueOK()
		l.mu.Lock()
		defer l.mu.Unlock()
		l.sent = append(l.sent, sentCommand{e.CommandName, coll, slices.Clone(e.Command)})
	}}
}

func (l *commandLog) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sent = nil
}

// counts returns the commands sent since the last reset, as "find users"
// → number.
func (l *commandLog) counts() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]int{}
	for _, c := range l.sent {
		key := c.name
		if c.coll != "" {
			key += " " + c.coll
		}
		out[key]++
	}
	return out
}

func (l *commandLog) commands(name string) []bson.Raw {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []bson.Raw
	for _, c := range l.sent {
		if c.name == name {
			out = append(out, c.cmd)
		}
	}
	return out
}

// connectLogged connects to the test server with a command log.
func connectLogged(t *testing.T) (*mongohttp.Client, *commandLog) {
	t.Helper()
	log := &commandLog{}
	c, err := mongohttp.ConnectConfig(context.Background(), mongohttp.Config{URI: serverURI, Options: options.Client().SetMonitor(log.monitor())})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = c.Close(ctx)
	})
	return c, log
}

type blogUser struct {
	ID           bson.ObjectID `bson:"_id"`
	Name         string        `bson:"name"`
	TeamID       bson.ObjectID `bson:"team_id"`
	PasswordHash string        `bson:"password_hash"`
}

type blogTeam struct {
	ID     bson.ObjectID `bson:"_id"`
	Name   string        `bson:"name"`
	Budget int           `bson:"budget"`
}

type blogPost struct {
	ID          bson.ObjectID   `bson:"_id"`
	AuthorID    bson.ObjectID   `bson:"author_id"`
	ReviewerIDs []bson.ObjectID `bson:"reviewer_ids,omitempty"`
	Title       string          `bson:"title"`
	N           int32           `bson:"n"`
	Draft       string          `bson:"draft"`
}

// blog is a seeded posts, users and teams database served with relations.
type blog struct {
	log   *commandLog
	db    *mongo.Database
	users map[bson.ObjectID]blogUser
	teams map[bson.ObjectID]blogTeam
	team0 bson.ObjectID // the scope of /scoped
	posts []blogPost
	srv   *httptest.Server
}

const (
	blogUsers = 40
	blogPosts = 150
)

var (
	teamsPolicy = mongohttp.Policy{Hidden: []string{"budget"}}
	usersPolicy = mongohttp.Policy{
		Project: []string{"name"},
		Hidden:  []string{"password_hash"},
	}
)

func blogPolicy(db *mongo.Database) mongohttp.Policy {
	users := usersPolicy
	users.Relations = map[string]mongohttp.Relation{
		"team": {Local: "team_id", Coll: db.Collection("teams"), Policy: teamsPolicy},
	}
	return mongohttp.Policy{
		Filter:   map[string]mongohttp.Type{"n": mongohttp.Int},
		Sort:     []string{"n"},
		Project:  []string{"title", "n"},
		Hidden:   []string{"draft"},
		MaxLimit: 200,
		Relations: map[string]mongohttp.Relation{
			"author":    {Local: "author_id", Coll: db.Collection("users"), Policy: users},
			"reviewers": {Local: "reviewer_ids", Coll: db.Collection("users"), Policy: users, Fields: []string{"name"}},
		},
	}
}

func newBlog(t *testing.T, lookahead int) *blog {
	t.Helper()
	c, log := connectLogged(t)
	b := &blog{log: log, db: database(t, c), users: map[bson.ObjectID]blogUser{}, teams: map[bson.ObjectID]blogTeam{}}
	ctx := context.Background()
	var teamIDs []bson.ObjectID
	var docs []any
	for i := range 3 {
		tm := blogTeam{ID: bson.NewObjectID(), Name: fmt.Sprintf("team%d", i), Budget: 1000 + i}
		b.teams[tm.ID] = tm
		teamIDs = append(teamIDs, tm.ID)
		docs = append(docs, tm)
	}
	b.team0 = teamIDs[0]
	if _, err := b.db.Collection("teams").InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	docs = nil
	var userIDs []bson.ObjectID
	for i := range blogUsers {
		u := blogUser{ID: bson.NewObjectID(), Name: fmt.Sprintf("user%02d", i), TeamID: teamIDs[i%3], PasswordHash: fmt.Sprintf("s3cr3t-%d", i)}
		if i == 0 {
			u.TeamID = bson.NewObjectID() // a team that does not exist
		}
		b.users[u.ID] = u
		userIDs = append(userIDs, u.ID)
		docs = append(docs, u)
	}
	if _, err := b.db.Collection("users").InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	docs = nil
	missing := bson.NewObjectID() // an author that does not exist
	for i := range blogPosts {
		p := blogPost{ID: bson.NewObjectID(), AuthorID: userIDs[i%blogUsers], Title: fmt.Sprintf("post %03d %s", i, strings.Repeat("x", 60)), N: int32(i), Draft: "s3cr3t-draft"}
		if i%10 == 9 {
			p.AuthorID = missing
		}
		if i%3 == 0 {
			p.ReviewerIDs = []bson.ObjectID{userIDs[(i+1)%blogUsers], missing, userIDs[(i+2)%blogUsers]}
		}
		b.posts = append(b.posts, p)
		docs = append(docs, p)
	}
	if _, err := b.db.Collection("posts").InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}

	posts := b.db.Collection("posts")
	decl := mongohttp.Collection[bson.Raw]{Client: c, Coll: posts, Policy: blogPolicy(b.db), Lookahead: lookahead}
	typed := mongohttp.Collection[blogPost]{Client: c, Coll: posts, Policy: blogPolicy(b.db), Lookahead: lookahead}
	plain := mongohttp.Collection[bson.Raw]{Client: c, Coll: posts, Policy: mongohttp.Policy{Hidden: []string{"draft"}}}
	// Authors in the scope of team0 only: the others are embedded as null.
	scoped := blogPolicy(b.db)
	author := scoped.Relations["author"]
	author.BaseFilter = func(*http.Request) (bson.D, error) { return bson.D{{Key: "team_id", Value: teamIDs[0]}}, nil }
	scoped.Relations = map[string]mongohttp.Relation{"author": author}

	mux := http.NewServeMux()
	mux.Handle("/posts", mongohttp.Must(mongohttp.New(decl)).Find())
	mux.Handle("/posts/{id}", mongohttp.Must(mongohttp.New(decl)).FindOne())
	mux.Handle("/typed", mongohttp.Must(mongohttp.New(typed)).Find())
	mux.Handle("/plain", mongohttp.Must(mongohttp.New(plain)).Find())
	mux.Handle("/scoped", mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{Client: c, Coll: posts, Policy: scoped})).Find())
	b.srv = httptest.NewServer(mux)
	t.Cleanup(b.srv.Close)
	b.log.reset()
	return b
}

// get fetches target and checks that no hidden field of any collection
// leaked.
func (b *blog) get(t *testing.T, target string) response {
	t.Helper()
	resp, err := http.Get(b.srv.URL + target)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("%s: %v", target, err)
	}
	for _, leak := range []string{"s3cr3t", "password_hash", "budget", `"draft"`} {
		// A problem may quote what the request itself named.
		if strings.Contains(string(body), leak) && !strings.Contains(target, strings.Trim(leak, `"`)) {
			t.Fatalf("%s leaked %s: %s", target, leak, body)
		}
	}
	return response{resp.StatusCode, resp.Header, body}
}

type embeddedPost struct {
	ID        bson.ObjectID `json:"_id"`
	AuthorID  bson.ObjectID `json:"author_id"`
	Title     string        `json:"title"`
	N         int32         `json:"n"`
	Author    *embeddedUser `json:"author"`
	Reviewers []*struct {
		ID   bson.ObjectID `json:"_id"`
		Name string        `json:"name"`
		More string        `json:"team_id"`
	} `json:"reviewers"`
	Raw map[string]json.RawMessage `json:"-"`
}

type embeddedUser struct {
	ID     bson.ObjectID `json:"_id"`
	Name   string        `json:"name"`
	TeamID bson.ObjectID `json:"team_id"`
	Team   *struct {
		ID   bson.ObjectID `json:"_id"`
		Name string        `json:"name"`
	} `json:"team"`
}

func decodePosts(t *testing.T, r response) []embeddedPost {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	var out []embeddedPost
	if err := json.Unmarshal(r.body, &out); err != nil {
		t.Fatalf("%v: %s", err, r.body)
	}
	var raw []map[string]json.RawMessage
	_ = json.Unmarshal(r.body, &raw)
	for i := range out {
		out[i].Raw = raw[i]
	}
	return out
}

// checkAuthor compares an embedded author with the stored user.
func (b *blog) checkAuthor(t *testing.T, p embeddedPost, withTeam bool) {
	t.Helper()
	u, ok := b.users[p.AuthorID]
	if !ok {
		if p.Author != nil || string(p.Raw["author"]) != "null" {
			t.Fatalf("post %d: missing author embedded as %s, want null", p.N, p.Raw["author"])
		}
		return
	}
	if p.Author == nil || p.Author.ID != u.ID || p.Author.Name != u.Name || p.Author.TeamID != u.TeamID {
		t.Fatalf("post %d: author %+v, want %+v", p.N, p.Author, u)
	}
	if !withTeam {
		return
	}
	tm, ok := b.teams[u.TeamID]
	switch {
	case !ok && p.Author.Team != nil:
		t.Fatalf("post %d: missing team embedded as %+v", p.N, p.Author.Team)
	case ok && (p.Author.Team == nil || p.Author.Team.ID != tm.ID || p.Author.Team.Name != tm.Name):
		t.Fatalf("post %d: team %+v, want %+v", p.N, p.Author.Team, tm)
	}
}

// TestEmbedOneQueryPerRelation is the N+1 check: a page of 100 posts with
// embed=author costs exactly one find on posts and one on users, whatever
// the page holds, and each further relation one more.
func TestEmbedOneQueryPerRelation(t *testing.T) {
	b := newBlog(t, 0)
	cases := []struct {
		target string
		want   map[string]int
	}{
		{"/posts?limit=100&sort=n&embed=author", map[string]int{"find posts": 1, "find users": 1}},
		{"/typed?limit=100&sort=n&embed=author", map[string]int{"find posts": 1, "find users": 1}},
		{"/posts?limit=100&sort=n&embed=author,reviewers", map[string]int{"find posts": 1, "find users": 2}},
		{"/posts?limit=100&sort=n&embed=author.team", map[string]int{"find posts": 1, "find users": 1, "find teams": 1}},
		{"/posts?limit=150&sort=n&embed=author.team,reviewers", map[string]int{"find posts": 1, "find users": 2, "find teams": 1}},
		{"/posts?limit=100&sort=n", map[string]int{"find posts": 1}},
	}
	for _, tt := range cases {
		t.Run(tt.target, func(t *testing.T) {
			b.log.reset()
			got := decodePosts(t, b.get(t, tt.target))
			if counts := b.log.counts(); fmt.Sprint(counts) != fmt.Sprint(tt.want) {
				t.Fatalf("commands sent: %v, want %v", counts, tt.want)
			}
			t.Logf("%d posts, commands %v", len(got), b.log.counts())
			limit := 100
			if strings.Contains(tt.target, "limit=150") {
				limit = 150
			}
			if len(got) != limit {
				t.Fatalf("%d posts, want %d", len(got), limit)
			}
			embedsAuthor := strings.Contains(tt.target, "author")
			for i, p := range got {
				if p.N != int32(i) {
					t.Fatalf("post %d at position %d", p.N, i)
				}
				if _, has := p.Raw["author"]; has != embedsAuthor {
					t.Fatalf("post %d: author present %v, want %v", p.N, has, embedsAuthor)
				}
				if embedsAuthor {
					b.checkAuthor(t, p, strings.Contains(tt.target, "author.team"))
				}
				if strings.Contains(tt.target, "reviewers") {
					b.checkReviewers(t, p)
				}
			}
		})
	}
	// The related queries run under the handler's time limit too.
	b.log.reset()
	b.get(t, "/posts?limit=5&embed=author.team")
	for _, cmd := range b.log.commands("find") {
		if ms, ok := cmd.Lookup("maxTimeMS").AsInt64OK(); !ok || ms <= 0 || ms > mongohttp.DefaultMaxTime.Milliseconds() {
			t.Fatalf("a find without the time limit: %s", cmd)
		}
	}
}

// checkReviewers compares an embedded array with the stored keys: one
// entry per key, in order, null where the user does not exist, and only
// the relation's fields.
func (b *blog) checkReviewers(t *testing.T, p embeddedPost) {
	t.Helper()
	stored := b.posts[p.N].ReviewerIDs
	if stored == nil {
		if string(p.Raw["reviewers"]) != "null" {
			t.Fatalf("post %d without reviewer_ids: reviewers %s, want null", p.N, p.Raw["reviewers"])
		}
		return
	}
	if len(p.Reviewers) != len(stored) {
		t.Fatalf("post %d: %d reviewers, want %d", p.N, len(p.Reviewers), len(stored))
	}
	for i, id := range stored {
		u, ok := b.users[id]
		r := p.Reviewers[i]
		switch {
		case !ok && r != nil:
			t.Fatalf("post %d: missing reviewer embedded as %+v", p.N, r)
		case ok && (r == nil || r.ID != id || r.Name != u.Name || r.More != ""):
			t.Fatalf("post %d: reviewer %d is %+v, want only _id and name of %+v", p.N, i, r, u)
		}
	}
}

// TestEmbedPagesCutAtTheLookahead: with a look-ahead smaller than the
// page, a page with embed holds what fits and links to the rest, as every
// page does, and every page still costs one query per relation.
func TestEmbedPagesCutAtTheLookahead(t *testing.T) {
	b := newBlog(t, 4<<10) // about 30 posts of 130 bytes
	seen := 0
	target := "/posts?limit=100&sort=n&embed=author"
	pages := 0
	for target != "" {
		b.log.reset()
		r := b.get(t, target)
		got := decodePosts(t, r)
		if counts := b.log.counts(); fmt.Sprint(counts) != fmt.Sprint(map[string]int{"find posts": 1, "find users": 1}) {
			t.Fatalf("page %d: commands %v", pages, counts)
		}
		if len(got) == 0 || len(got) >= 100 {
			t.Fatalf("page %d holds %d posts; a cut page holds some and fewer than the limit", pages, len(got))
		}
		for _, p := range got {
			if int(p.N) != seen {
				t.Fatalf("post %d where %d was expected: a post skipped or repeated", p.N, seen)
			}
			seen++
			b.checkAuthor(t, p, false)
		}
		target = ""
		if link := r.header.Get("Link"); link != "" {
			u, err := url.Parse(strings.TrimSuffix(strings.TrimPrefix(link, "<"), `>; rel="next"`))
			if err != nil {
				t.Fatal(err)
			}
			target = u.RequestURI()
		}
		pages++
	}
	if seen != blogPosts || pages < 4 {
		t.Fatalf("%d posts in %d pages, want %d in several", seen, pages, blogPosts)
	}
	// Without embed the page ends at the same place: every page is cut at
	// the look-ahead, embed or not.
	r := b.get(t, "/posts?limit=100&sort=n")
	if got := decodePosts(t, r); len(got) == 0 || len(got) >= 100 || r.header.Get("Link") == "" {
		t.Fatalf("page without embed: %d posts, Link %q", len(got), r.header.Get("Link"))
	}
}

func TestEmbedFindOne(t *testing.T) {
	b := newBlog(t, 0)
	p := b.posts[3] // has an author and reviewers
	r := b.get(t, "/posts/"+p.ID.Hex()+"?embed=author.team,reviewers")
	if counts := b.log.counts(); fmt.Sprint(counts) != fmt.Sprint(map[string]int{"find posts": 1, "find users": 2, "find teams": 1}) {
		t.Fatalf("commands %v", counts)
	}
	var got embeddedPost
	if err := json.Unmarshal(r.body, &got); err != nil || r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	_ = json.Unmarshal(r.body, &got.Raw)
	b.checkAuthor(t, got, true)
	b.checkReviewers(t, got)

	// fields= narrows the post; the key of the relation is kept.
	r = b.get(t, "/posts/"+p.ID.Hex()+"?fields=title&embed=author")
	var narrow map[string]json.RawMessage
	_ = json.Unmarshal(r.body, &narrow)
	if len(narrow) != 4 || narrow["author_id"] == nil || narrow["author"] == nil || narrow["n"] != nil {
		t.Fatalf("fields=title&embed=author: %s", r.body)
	}

	// The ETag covers the related document: a renamed author changes it.
	target := "/posts/" + p.ID.Hex() + "?embed=author"
	before := b.get(t, target).header.Get("ETag")
	if _, err := b.db.Collection("users").UpdateByID(context.Background(), p.AuthorID, bson.D{{Key: "$set", Value: bson.D{{Key: "name", Value: "renamed"}}}}); err != nil {
		t.Fatal(err)
	}
	after := b.get(t, target)
	if after.header.Get("ETag") == before || !strings.Contains(string(after.body), `"renamed"`) {
		t.Fatalf("ETag %s then %s; body %s", before, after.header.Get("ETag"), after.body)
	}
	head, err := http.Head(b.srv.URL + target)
	if err != nil {
		t.Fatal(err)
	}
	head.Body.Close()
	if head.Header.Get("ETag") != after.header.Get("ETag") {
		t.Fatalf("HEAD ETag %s, GET ETag %s", head.Header.Get("ETag"), after.header.Get("ETag"))
	}
}

func TestEmbedScopeAndEmptyPages(t *testing.T) {
	b := newBlog(t, 0)
	got := decodePosts(t, b.get(t, "/scoped?limit=60&sort=n&embed=author"))
	var embedded, nulls int
	for _, p := range got {
		u, ok := b.users[p.AuthorID]
		inScope := ok && u.TeamID == b.team0
		switch {
		case inScope && (p.Author == nil || p.Author.ID != u.ID):
			t.Fatalf("post %d: author in scope embedded as %s", p.N, p.Raw["author"])
		case !inScope && string(p.Raw["author"]) != "null":
			t.Fatalf("post %d: author out of scope embedded as %s", p.N, p.Raw["author"])
		case inScope:
			embedded++
		default:
			nulls++
		}
	}
	if embedded == 0 || nulls == 0 {
		t.Fatalf("%d embedded, %d null: the scope was not exercised", embedded, nulls)
	}
	// A page without keys, or without documents, sends no related query.
	b.log.reset()
	if got := decodePosts(t, b.get(t, "/posts?n[gte]=1000&embed=author")); len(got) != 0 {
		t.Fatalf("%d posts", len(got))
	}
	if counts := b.log.counts(); fmt.Sprint(counts) != fmt.Sprint(map[string]int{"find posts": 1}) {
		t.Fatalf("empty page: commands %v", counts)
	}
}

func TestEmbedHostileInput(t *testing.T) {
	b := newBlog(t, 0)
	id := b.posts[0].ID.Hex()
	for _, tt := range []struct {
		target, code string
	}{
		{"/posts?embed=nope", "unknown_parameter"},
		{"/posts?embed=author.nope", "unknown_parameter"},
		{"/posts?embed=team", "unknown_parameter"},
		{"/posts?embed=author.team.author", "unknown_parameter"},
		{"/posts?embed=password_hash", "unknown_parameter"},
		{"/posts?embed=draft", "unknown_parameter"},
		{"/posts?embed=$lookup", "unknown_parameter"},
		{"/posts?embed=author,author", "invalid_parameter"},
		{"/posts?embed=author&embed=reviewers", "invalid_parameter"},
		{"/posts?embed=", "invalid_parameter"},
		{"/posts?embed=,", "invalid_parameter"},
		{"/posts?embed=%00", "invalid_parameter"},
		{"/posts?embed=%ff", "invalid_parameter"},
		{"/posts?embed=%zz", "invalid_parameter"},
		{"/posts?embed=" + strings.Repeat("author,", 600), "limit_exceeded"},
		{"/posts?embed[in]=author", "field_not_allowed"},
		{"/posts?embed[$ne]=author", "operator_not_allowed"},
		{"/posts?fields=draft&embed=author", "field_not_allowed"},
		{"/posts/" + id + "?embed=nope", "unknown_parameter"},
		{"/posts/" + id + "?embed=author,,reviewers", "invalid_parameter"},
		{"/posts/" + id + "?embed[x]=author", "unknown_parameter"},
		{"/posts/nope?embed=author", "invalid_object_id"},
		{"/plain?embed=author", "unknown_parameter"},
	} {
		t.Run(shortName(tt.target), func(t *testing.T) {
			b.log.reset()
			r := b.get(t, tt.target)
			if r.status != 400 {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			checkProblem(t, r, tt.code)
			if n := len(b.log.commands("find")); n != 0 {
				t.Fatalf("%d finds sent for a refused request", n)
			}
		})
	}
}
