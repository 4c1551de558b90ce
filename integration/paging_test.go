package integration_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mongohttp/mongohttp"
	"github.com/mongohttp/mongohttp/bsonjson"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// The tests of this file check the paging invariant on the real server:
// following rel="next" from a first page gives exactly the documents the
// server itself returns for the same filter and sort (a direct driver
// query), once each and in order, whatever the documents' sizes and
// whatever their sort fields hold.

// awkwardValues are sort values of every kind the server orders: missing
// (nil), null, numbers of three types that compare equal or not, strings,
// dates, booleans, ObjectIDs, documents, binaries, timestamps, regular
// expressions (which cannot anchor a page), strings too long for a token,
// and arrays, empty, holding null, or mixing types (their smallest element
// sorts them in ascending order, their largest in descending order).
func awkwardValues() []any {
	d := func(day int) bson.DateTime {
		return bson.NewDateTimeFromTime(time.Date(2024, 1, day, 0, 0, 0, 0, time.UTC))
	}
	long := strings.Repeat("L", 1500)
	return []any{
		nil, bson.Null{}, int32(5), int64(5), 5.0, int32(-3), 2.5, int64(1) << 40, 0.1,
		"", "abc", "B", "é", "abd", long + "1", long + "2",
		d(1), d(2), d(3), true, false,
		bson.ObjectID{1}, bson.ObjectID{2}, bson.D{{Key: "x", Value: int32(1)}}, bson.D{{Key: "w", Value: "z"}},
		bson.Binary{Data: []byte{1, 2}}, bson.Binary{Data: []byte{3}}, bson.Timestamp{T: 5, I: 1}, bson.Timestamp{T: 5, I: 2},
		bson.Regex{Pattern: "^a", Options: "i"},
		bson.A{}, bson.A{nil}, bson.A{int32(1), "z"}, bson.A{int32(3), int32(10)}, bson.A{"b"}, bson.A{d(2)},
		bson.A{nil, int32(8)}, bson.A{true, int32(1)}, bson.A{int32(5), 5.0}, bson.A{"abc", bson.D{{Key: "x", Value: int32(1)}}},
		bson.A{d(1), "abc", int64(7)}, bson.A{false, bson.ObjectID{1}}, bson.A{long + "3", int32(2)},
		bson.A{bson.Regex{Pattern: "x"}, int32(4)},
	}
}

// seedAwkward inserts n documents whose "a", "b" and "p.c" fields take
// awkward values in a fixed pseudo-random pattern (with many ties), and
// whose _id is mostly an ObjectID, sometimes a number or a string. "p" is a
// document, a string or missing, never an array of documents: FerretDB
// sorts "p.c" through one as if it were missing, while its queries (and
// MongoDB's sorts) read the elements' "c".
func seedAwkward(t *testing.T, coll *mongo.Collection, n int) {
	t.Helper()
	vals := awkwardValues()
	docs := make([]any, n)
	for i := range n {
		var id any = bson.NewObjectID()
		switch i % 11 {
		case 3:
			id = int32(1000 - i)
		case 7:
			id = fmt.Sprintf("id-%03d", i)
		}
		doc := bson.D{{Key: "_id", Value: id}, {Key: "k", Value: []string{"x", "y"}[i%2]}}
		n := len(vals)
		if i%3 == 0 {
			n = 6 // many ties on missing, null and 5 (as int32, int64 and double)
		}
		if v := vals[pick(i, 1, n)]; v != nil {
			doc = append(doc, bson.E{Key: "a", Value: v})
		}
		if v := vals[pick(i, 2, len(vals))]; v != nil && i%4 != 0 {
			doc = append(doc, bson.E{Key: "b", Value: v})
		}
		switch i % 5 {
		case 0:
			doc = append(doc, bson.E{Key: "p", Value: bson.D{{Key: "c", Value: vals[pick(i, 3, len(vals))]}}})
		case 1:
			doc = append(doc, bson.E{Key: "p", Value: "flat"})
		case 2:
			doc = append(doc, bson.E{Key: "p", Value: bson.D{}})
		}
		docs[i] = doc
	}
	if _, err := coll.InsertMany(context.Background(), docs); err != nil {
		t.Fatal(err)
	}
}

// pick is a fixed pseudo-random choice among n for document i.
func pick(i, salt, n int) int {
	h := uint32(i*31+salt) * 2654435761
	return int(h>>16) % n
}

var awkwardPolicy = mongohttp.Policy{
	Filter:    map[string]mongohttp.Type{"k": mongohttp.String},
	Sort:      []string{"a", "b", "p.c"},
	MaxLimit:  100,
	MaxSkip:   100000,
	CursorKey: []byte("0123456789abcdef-paging-tests"),
}

// pageAnswer is one page of a walk.
type pageAnswer struct {
	ids   []string // each document's _id, as the driver renders a RawValue
	next  string
	total string
	ctype string
}

// getPage fetches a page from a handler that writes canonical Extended
// JSON, so that every _id can be compared with the driver's.
func getPage(t *testing.T, base, target, accept string) pageAnswer {
	t.Helper()
	req, err := http.NewRequest("GET", base+target, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: status %d: %s", target, resp.StatusCode, body)
	}
	var docs []json.RawMessage
	if strings.HasPrefix(resp.Header.Get("Content-Type"), mongohttp.NDJSON) {
		for line := range bytes.SplitSeq(bytes.TrimSuffix(body, []byte("\n")), []byte("\n")) {
			if len(line) > 0 {
				docs = append(docs, line)
			}
		}
	} else if err := json.Unmarshal(body, &docs); err != nil {
		t.Fatalf("GET %s: %v: %.300s", target, err, body)
	}
	p := pageAnswer{next: nextLink(t, resp.Header), total: resp.Header.Get("X-Total-Count"), ctype: resp.Header.Get("Content-Type")}
	for _, d := range docs {
		var doc bson.D
		if err := bson.UnmarshalExtJSON(d, false, &doc); err != nil {
			t.Fatalf("document %.200s: %v", d, err)
		}
		raw, err := bson.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		p.ids = append(p.ids, bson.Raw(raw).Lookup("_id").String())
	}
	return p
}

// walk follows rel="next" from target to the end and returns the _ids of
// every page in order. Every page must report wantTotal (when not "") and
// every page but the last must hold documents.
func walk(t *testing.T, base, target, accept, wantTotal string) (ids []string, pages int) {
	t.Helper()
	for target != "" {
		p := getPage(t, base, target, accept)
		if wantTotal != "" && p.total != wantTotal {
			t.Fatalf("page %d (%s): X-Total-Count %q, want %s", pages+1, target, p.total, wantTotal)
		}
		if p.next != "" && len(p.ids) == 0 {
			t.Fatalf("page %d (%s) is empty but links on", pages+1, target)
		}
		ids = append(ids, p.ids...)
		target = p.next
		pages++
		if pages > 2000 {
			t.Fatal("paging does not end")
		}
	}
	return ids, pages
}

// serverOrder is what the server itself answers for filter and sort.
func serverOrder(t *testing.T, coll *mongo.Collection, filter, sort bson.D) []string {
	t.Helper()
	cur, err := coll.Find(context.Background(), filter, options.Find().SetSort(sort).SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cur.Close(context.Background())
	var ids []string
	for cur.Next(context.Background()) {
		ids = append(ids, cur.Current.Lookup("_id").String())
	}
	if err := cur.Err(); err != nil {
		t.Fatal(err)
	}
	return ids
}

// sameWalk fails unless got is want: no document missing or repeated, and
// the server's order.
func sameWalk(t *testing.T, what string, got, want []string) {
	t.Helper()
	seen := map[string]int{}
	for _, id := range got {
		seen[id]++
		if seen[id] == 2 {
			t.Errorf("%s: document %s served twice", what, id)
		}
	}
	for _, id := range want {
		if seen[id] == 0 {
			t.Errorf("%s: document %s never served", what, id)
		}
	}
	if !t.Failed() && !slices.Equal(got, want) {
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%s: position %d holds %s, the server puts %s there", what, i, got[i], want[i])
				break
			}
		}
	}
}

// sortDoc turns "-a,b" into the driver's sort, with the _id tie-breaker.
func sortDoc(spec string) bson.D {
	var d bson.D
	hasID := false
	for _, f := range strings.Split(spec, ",") {
		dir := int32(1)
		if strings.HasPrefix(f, "-") {
			dir, f = -1, f[1:]
		}
		hasID = hasID || f == "_id"
		d = append(d, bson.E{Key: f, Value: dir})
	}
	if !hasID {
		d = append(d, bson.E{Key: "_id", Value: int32(1)})
	}
	return d
}

func TestPagingAwkwardSortValues(t *testing.T) {
	c := connect(t, mongohttp.PoolConfig{})
	coll := database(t, c).Collection("awkward")
	const n = 90
	seedAwkward(t, coll, n)
	var logs syncBuffer
	srv := httptest.NewServer(mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{Client: c, Coll: coll,
		Policy:  awkwardPolicy,
		Encoder: &bsonjson.Encoder{Format: bsonjson.FormatCanonical},
		Logger:  slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})).Find())
	defer srv.Close()

	sorts := []string{"a", "-a", "b", "-b", "a,b", "-a,b", "a,-b", "-a,-b", "b,-a", "p.c", "-p.c", "_id", "-_id", "-_id,a"}
	for _, spec := range sorts {
		t.Run(spec, func(t *testing.T) {
			want := serverOrder(t, coll, bson.D{}, sortDoc(spec))
			if len(want) != n {
				t.Fatalf("the server answers %d documents, want %d", len(want), n)
			}
			limits := []int{4, 13}
			if spec == "a" || spec == "-a,b" || spec == "b,-a" {
				limits = append(limits, 1)
			}
			for _, limit := range limits {
				got, _ := walk(t, srv.URL, fmt.Sprintf("/?sort=%s&limit=%d&count=exact", spec, limit), "", strconv.Itoa(n))
				sameWalk(t, fmt.Sprintf("sort=%s&limit=%d", spec, limit), got, want)
			}
			// A client filter, which the tokens are bound to.
			want = serverOrder(t, coll, bson.D{{Key: "k", Value: "y"}}, sortDoc(spec))
			got, _ := walk(t, srv.URL, fmt.Sprintf("/?k=y&sort=%s&limit=6&count=exact", spec), "application/x-ndjson", strconv.Itoa(len(want)))
			sameWalk(t, fmt.Sprintf("k=y&sort=%s", spec), got, want)
		})
	}
	// Both ways around documents that cannot anchor a token were taken.
	for _, msg := range []string{"page shortened", "continuing by position"} {
		if !strings.Contains(logs.String(), msg) {
			t.Errorf("no walk logged %q", msg)
		}
	}
}

// syncBuffer is a bytes.Buffer that handlers may log to concurrently.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// bigDoc is a typed document for the large-document walks.
type bigDoc struct {
	ID   bson.ObjectID `bson:"_id"`
	Name string        `bson:"name"`
	Pad  string        `bson:"pad"`
}

// TestPagingLargeDocuments: pages larger than the look-ahead end early and
// link on, so a walk gives every document (the case: 150 documents
// of 15 KB, limit 100, the default look-ahead of 1 MiB).
func TestPagingLargeDocuments(t *testing.T) {
	c := connect(t, mongohttp.PoolConfig{})
	db := database(t, c)
	coll := db.Collection("big")
	insertDocs(t, coll, 150, 15000)
	huge := db.Collection("huge")
	insertDocs(t, huge, 12, 40000) // each larger than a small look-ahead
	policy := mongohttp.Policy{Sort: []string{"name"}, Filter: map[string]mongohttp.Type{"name": mongohttp.String}, MaxLimit: 1000}
	canonical := &bsonjson.Encoder{Format: bsonjson.FormatCanonical}
	mux := http.NewServeMux()
	mux.Handle("/raw", mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{Client: c, Coll: coll, Policy: policy, Encoder: canonical})).Find())
	mux.Handle("/typed", mongohttp.Must(mongohttp.New(mongohttp.Collection[bigDoc]{Client: c, Coll: coll, Policy: policy, Encoder: canonical})).Find())
	mux.Handle("/small", mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{Client: c, Coll: coll, Policy: policy, Encoder: canonical, Lookahead: 100 << 10})).Find())
	mux.Handle("/huge", mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{Client: c, Coll: huge, Policy: policy, Encoder: canonical, Lookahead: 16 << 10})).Find())
	srv := httptest.NewServer(mux)
	defer srv.Close()

	for _, sort := range []string{"", "&sort=-name"} {
		want := serverOrder(t, coll, bson.D{}, sortDoc(strings.TrimPrefix(cmpOr(sort, "&sort=_id"), "&sort=")))
		for _, path := range []string{"/raw", "/typed", "/small"} {
			for _, accept := range []string{"", "application/x-ndjson"} {
				what := path + sort + " " + accept
				first := getPage(t, srv.URL, path+"?limit=100&count=exact"+sort, accept)
				if len(first.ids) >= 100 || first.next == "" || first.total != "150" {
					t.Fatalf("%s: first page of %d documents, Link %q, X-Total-Count %q; want fewer than 100, a link, 150",
						what, len(first.ids), first.next, first.total)
				}
				got, pages := walk(t, srv.URL, path+"?limit=100&count=exact"+sort, accept, "150")
				sameWalk(t, what, got, want)
				if pages < 3 {
					t.Errorf("%s: %d pages", what, pages)
				}
			}
		}
	}
	// A document larger than the look-ahead is a page of its own.
	want := serverOrder(t, huge, bson.D{{Key: "name", Value: bson.D{{Key: "$gte", Value: "n00003"}}}}, sortDoc("name"))
	got, pages := walk(t, srv.URL, "/huge?sort=name&name[gte]=n00003&limit=5", "", "")
	sameWalk(t, "/huge", got, want)
	if pages != len(want) {
		t.Errorf("/huge: %d pages for %d documents", pages, len(want))
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// TestPagingFailsRatherThanStops: when no document of a page can anchor a
// token and the positional continuation would pass MaxSkip, the request
// fails with a problem (500, "internal") instead of answering a page
// without its next link.
func TestPagingFailsRatherThanStops(t *testing.T) {
	c := connect(t, mongohttp.PoolConfig{})
	coll := database(t, c).Collection("long")
	long := strings.Repeat("x", 1200) // too long for a token
	docs := make([]any, 10)
	for i := range docs {
		// An _id too long for a token that names the document (see
		// TestPagingLongSortValues for the usual ones).
		docs[i] = bson.D{{Key: "_id", Value: fmt.Sprintf("%s%02d", long[:300], i)}, {Key: "name", Value: fmt.Sprintf("%s%02d", long, i)}}
	}
	if _, err := coll.InsertMany(context.Background(), docs); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	srv := httptest.NewServer(mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{Client: c, Coll: coll,
		Policy:  mongohttp.Policy{Sort: []string{"name"}, MaxSkip: 5, CursorKey: []byte("0123456789abcdef-fail")},
		Encoder: &bsonjson.Encoder{Format: bsonjson.FormatCanonical},
		Logger:  slog.New(slog.NewTextHandler(&logs, nil)),
	})).Find())
	defer srv.Close()
	want := serverOrder(t, coll, bson.D{}, sortDoc("name"))
	var got []string
	target := "/?sort=name&limit=2"
	for range 2 {
		p := getPage(t, srv.URL, target, "")
		if len(p.ids) != 2 || p.next == "" {
			t.Fatalf("%s: %d documents, Link %q", target, len(p.ids), p.next)
		}
		got = append(got, p.ids...)
		target = p.next
	}
	sameWalk(t, "two pages", got, want[:4])
	// The third page would have to skip 6 documents past no anchor.
	resp, err := http.Get(srv.URL + target)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	checkProblem(t, response{resp.StatusCode, resp.Header, body}, "internal")
	if resp.StatusCode != 500 || resp.Header.Get("Link") != "" {
		t.Fatalf("third page: status %d, Link %q; want 500 and no link", resp.StatusCode, resp.Header.Get("Link"))
	}
	if !strings.Contains(logs.String(), "cannot be addressed") {
		t.Errorf("the failure was not logged:\n%s", logs.String())
	}
}

// scopedService serves users and posts of one database as the example
// does, plus posts of another database.
type scopedService struct {
	srv         *httptest.Server
	users       []bson.ObjectID
	postsPerUsr int
}

func newScopedService(t *testing.T, count []mongohttp.CountMode) *scopedService {
	t.Helper()
	c := connect(t, mongohttp.PoolConfig{})
	db, other := database(t, c), database(t, c)
	s := &scopedService{postsPerUsr: 5}
	var users, posts []any
	for i := range 6 {
		id := bson.NewObjectID()
		s.users = append(s.users, id)
		users = append(users, bson.D{{Key: "_id", Value: id}, {Key: "name", Value: fmt.Sprintf("u%d", i)}, {Key: "likes", Value: int32(i)}})
		for j := range s.postsPerUsr {
			posts = append(posts, bson.D{{Key: "_id", Value: bson.NewObjectID()}, {Key: "author_id", Value: id}, {Key: "likes", Value: int32(j)}})
		}
	}
	for _, d := range []*mongo.Database{db, other} {
		if _, err := d.Collection("users").InsertMany(context.Background(), users); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Collection("posts").InsertMany(context.Background(), posts); err != nil {
			t.Fatal(err)
		}
	}
	// One policy for all, so that only the handlers' scopes differ.
	policy := mongohttp.Policy{
		Filter: map[string]mongohttp.Type{"likes": mongohttp.Int, "author_id": mongohttp.ObjectID},
		Sort:   []string{"likes"}, Count: count, CursorKey: []byte("0123456789abcdef-scopes"),
	}
	author := func(r *http.Request) (bson.D, error) {
		id, err := mongohttp.ParseObjectID(r.PathValue("id"))
		return bson.D{{Key: "author_id", Value: id}}, err
	}
	mux := http.NewServeMux()
	mux.Handle("/users", mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{Client: c, Coll: db.Collection("users"), Policy: policy})).Find())
	mux.Handle("/posts", mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{Client: c, Coll: db.Collection("posts"), Policy: policy})).Find())
	mux.Handle("/users/{id}/posts", mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{Client: c, Coll: db.Collection("posts"), Policy: policy, BaseFilter: author})).Find())
	// Two policies alike but for their names, chosen by a header.
	mux.Handle("/split/posts", mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{
		Client: c, Coll: db.Collection("posts"), Policy: policy, Policies: map[string]mongohttp.Policy{"other": policy},
		PolicyFor: func(r *http.Request) string { return r.Header.Get("X-Policy") }, Vary: []string{"X-Policy"},
	})).Find())
	mux.Handle("/other/posts", mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{Client: c, Coll: other.Collection("posts"), Policy: policy})).Find())
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	return s
}

func (s *scopedService) get(t *testing.T, target string) response {
	t.Helper()
	resp, err := http.Get(s.srv.URL + target)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, body}
}

// afterOf returns the after token of r's next link.
func afterOf(t *testing.T, r response) string {
	t.Helper()
	_, tok, ok := strings.Cut(nextLink(t, r.header), "after=")
	if !ok {
		t.Fatalf("no after token in %q (status %d: %s)", r.header.Get("Link"), r.status, r.body)
	}
	return tok
}

// TestTokensAreBoundToTheirHandler: a token made by one handler is refused
// by handlers of other collections or databases, and with another sort or
// filter.
func TestTokensAreBoundToTheirHandler(t *testing.T) {
	s := newScopedService(t, nil)
	posts := afterOf(t, s.get(t, "/posts?sort=likes&limit=2"))
	if r := s.get(t, "/posts?sort=likes&limit=2&after="+posts); r.status != 200 {
		t.Fatalf("the token on its own handler: %d %s", r.status, r.body)
	}
	filtered := afterOf(t, s.get(t, "/posts?sort=likes&likes[gte]=1&limit=2"))
	for _, target := range []string{
		"/users?sort=likes&after=" + posts,
		"/other/posts?sort=likes&after=" + posts,
		"/posts?sort=-likes&after=" + posts,
		"/posts?sort=likes&likes[gte]=1&after=" + posts,
		"/posts?sort=likes&likes[gte]=2&after=" + filtered,
		"/posts?sort=likes&after=" + filtered,
	} {
		r := s.get(t, target)
		if r.status != 400 {
			t.Errorf("%s: status %d, want 400", target, r.status)
			continue
		}
		checkProblem(t, r, "invalid_cursor")
	}
}

// TestTokensAreBoundToTheirScope: handlers of one collection under one
// policy that differ by their BaseFilter, or by the policy a request is
// served under, do not take each other's tokens: 400 invalid_cursor. A
// token keeps working in its own scope.
func TestTokensAreBoundToTheirScope(t *testing.T) {
	s := newScopedService(t, nil)
	userA, userB := s.users[1].Hex(), s.users[2].Hex()
	posts := afterOf(t, s.get(t, "/posts?sort=likes&limit=2"))
	ofA := afterOf(t, s.get(t, "/users/"+userA+"/posts?sort=likes&limit=2"))
	if r := s.get(t, "/users/"+userA+"/posts?sort=likes&limit=2&after="+ofA); r.status != 200 {
		t.Fatalf("a user's token on its own scope: %d %s", r.status, r.body)
	}
	split := func(policy, query string) response {
		req, _ := http.NewRequest("GET", s.srv.URL+"/split/posts?"+query, nil)
		req.Header.Set("X-Policy", policy)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return response{resp.StatusCode, resp.Header, body}
	}
	underOther := afterOf(t, split("other", "sort=likes&limit=2"))
	if r := split("other", "sort=likes&limit=2&after="+underOther); r.status != 200 {
		t.Fatalf("a token under its own policy: %d %s", r.status, r.body)
	}
	for _, tt := range []struct {
		name string
		get  func() response
	}{
		{"/posts token on /users/{id}/posts", func() response { return s.get(t, "/users/"+userA+"/posts?sort=likes&after="+posts) }},
		{"a user's token on /posts", func() response { return s.get(t, "/posts?sort=likes&after="+ofA) }},
		{"a user's token on another user's posts", func() response { return s.get(t, "/users/"+userB+"/posts?sort=likes&after="+ofA) }},
		{"another policy's token", func() response { return split("", "sort=likes&after="+underOther) }},
		{"the default policy's token under another", func() response {
			return split("other", "sort=likes&after="+afterOf(t, split("", "sort=likes&limit=2")))
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.get()
			if r.status != 400 {
				t.Fatalf("status %d, want 400: %s", r.status, r.body)
			}
			checkProblem(t, r, "invalid_cursor")
		})
	}
}

// TestCountsStayInScope: an estimated count is the size of the whole
// collection, so it is answered only without any filter; filtered requests
// are counted exactly. A Policy restricts or switches off counting.
func TestCountsStayInScope(t *testing.T) {
	s := newScopedService(t, nil)
	user := s.users[2].Hex()
	tests := []struct{ target, want string }{
		{"/posts?count=estimated", "30"},
		{"/posts?count=exact", "30"},
		{"/users/" + user + "/posts?count=estimated", "5"},
		{"/users/" + user + "/posts?count=exact", "5"},
		{"/posts?count=estimated&likes[gte]=3", "12"},
		{"/posts?count=estimated&filter=" + url.QueryEscape(`{"likes":{"$lt":1}}`), "6"},
		{"/users/" + user + "/posts?count=estimated&likes=4", "1"},
	}
	for _, tt := range tests {
		r := s.get(t, tt.target)
		if r.status != 200 || r.header.Get("X-Total-Count") != tt.want {
			t.Errorf("%s: status %d, X-Total-Count %q; want %s", tt.target, r.status, r.header.Get("X-Total-Count"), tt.want)
		}
	}

	estimatedOnly := newScopedService(t, []mongohttp.CountMode{mongohttp.CountEstimated})
	off := newScopedService(t, []mongohttp.CountMode{})
	refused := []struct {
		s      *scopedService
		target string
	}{
		{estimatedOnly, "/posts?count=exact"},
		{estimatedOnly, "/posts?count=estimated&likes=1"},
		{estimatedOnly, "/users/" + estimatedOnly.users[0].Hex() + "/posts?count=estimated"},
		{off, "/posts?count=exact"},
		{off, "/posts?count=estimated"},
	}
	for _, tt := range refused {
		r := tt.s.get(t, tt.target)
		if r.status != 400 || r.header.Get("X-Total-Count") != "" {
			t.Errorf("%s: status %d, X-Total-Count %q; want 400 and none", tt.target, r.status, r.header.Get("X-Total-Count"))
			continue
		}
		checkProblem(t, r, "count_not_allowed")
	}
	if r := estimatedOnly.get(t, "/posts?count=estimated"); r.header.Get("X-Total-Count") != "30" {
		t.Errorf("estimated only, unfiltered: X-Total-Count %q, want 30", r.header.Get("X-Total-Count"))
	}
	if r := off.get(t, "/posts"); r.status != 200 || r.header.Get("X-Total-Count") != "" {
		t.Errorf("counting off, no count asked: status %d, X-Total-Count %q", r.status, r.header.Get("X-Total-Count"))
	}
}

// strictLinkRE is the only shape of Link header Find writes.
var strictLinkRE = regexp.MustCompile(`^<(/[^<>";,\s]*)>; rel="next"$`)

// TestNextLinksRoundTrip: every link the handler emits, for ordinary and
// hostile queries and paths, is one rel="next" link to the request's own
// path on the same host, and is accepted by the same handler, to the end
// of the walk.
func TestNextLinksRoundTrip(t *testing.T) {
	f := newFixture(t, 25)
	q := url.QueryEscape
	targets := []string{
		"/people?limit=4",
		"/people?limit=4&sort=-age,name&age[gte]=21&count=exact",
		"/people?limit=3&skip=2&fields=name,tags&sort=name",
		"/people?limit=5&created[gte]=2024-01-01T02:00:00Z&tags[in]=go,db,web",
		"/people?limit=4&filter=" + q(`{"$or":[{"age":{"$lt":30}},{"name":"p003"}]}`),
		`/people?limit=4&filter={"age":{"$gte":22}}`,
		"/people?%6Cimit=4&sort=%6Eame",
		`/people?limit=4&name[ne]=a>;rel="prev",<//evil.example/p?`,
		"/people?limit=4&name[ne]=" + q(`a>; rel="next", <https://evil.example/x>; rel="next"`),
		"/people?limit=4&name[ne]=x%0D%0ALink:%20%3C//evil.example%3E",
		"/people?limit=4&name[nin]=" + q("é,<,>,\",;, ,+,%,&,="),
		"/groups/b/people?limit=3&sort=-age",
		"/groups/" + q("b>;rel=x") + "/people?limit=3",
	}
	for _, target := range targets {
		t.Run(target, func(t *testing.T) {
			path := strings.SplitN(target, "?", 2)[0]
			seen := map[string]bool{}
			for pages := 0; target != ""; pages++ {
				r := f.do(t, "GET", target)
				if r.status != 200 {
					t.Fatalf("%s: status %d: %s", target, r.status, r.body)
				}
				for _, d := range r.docs(t) {
					id := d["_id"].(string)
					if seen[id] {
						t.Fatalf("%s: document %s again", target, id)
					}
					seen[id] = true
				}
				links := r.header.Values("Link")
				if len(links) == 0 {
					break
				}
				m := strictLinkRE.FindStringSubmatch(links[0])
				if len(links) != 1 || m == nil {
					t.Fatalf("Link %q", links)
				}
				// Parsers that split on commas and semicolons see one link.
				if strings.Count(links[0], ";") != 1 || strings.Count(links[0], "<") != 1 {
					t.Fatalf("Link %q", links[0])
				}
				u, err := url.Parse(m[1])
				if err != nil || u.Host != "" || u.Scheme != "" || u.EscapedPath() != mustEscapedPath(t, path) {
					t.Fatalf("link %q: host %q, path %q; want path %q", m[1], u.Host, u.EscapedPath(), path)
				}
				target = m[1]
				if pages > 30 {
					t.Fatal("paging does not end")
				}
			}
		})
	}
}

func mustEscapedPath(t *testing.T, p string) string {
	t.Helper()
	u, err := url.Parse(p)
	if err != nil {
		t.Fatal(err)
	}
	return u.EscapedPath()
}

// TestNextLinkNeverNamesAnotherHost: a handler mounted without a router
// sees the path "//evil.example/p" as the client sent it; its link must
// still lead back to the same server and path.
func TestNextLinkNeverNamesAnotherHost(t *testing.T) {
	f := newFixture(t, 6)
	h := mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{Client: f.client, Coll: f.coll, Policy: peoplePolicy})).Find()
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, path := range []string{"//evil.example/p", "///evil.example", "/%2F%2Fevil.example"} {
		base, _ := url.Parse(srv.URL + path + "?limit=2")
		var ids []string
		for base != nil {
			resp, err := http.Get(base.String())
			if err != nil {
				t.Fatal(err)
			}
			var docs []map[string]any
			err = json.NewDecoder(resp.Body).Decode(&docs)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("%s: %d %v", base, resp.StatusCode, err)
			}
			for _, d := range docs {
				ids = append(ids, d["_id"].(string))
			}
			link := resp.Header.Get("Link")
			if link == "" {
				break
			}
			m := strictLinkRE.FindStringSubmatch(link)
			if m == nil || strings.HasPrefix(m[1], "//") {
				t.Fatalf("%s: Link %q", path, link)
			}
			ref, _ := url.Parse(m[1])
			next := base.ResolveReference(ref)
			if next.Host != base.Host || next.EscapedPath() != base.EscapedPath() {
				t.Fatalf("%s: link %q resolves to %s", path, m[1], next)
			}
			base = next
		}
		if len(ids) != 6 {
			t.Fatalf("%s: %d documents over the walk, want 6", path, len(ids))
		}
	}
}

// TestMaxQueryBytesNeverRefusesItsLinks: with a cap barely above the query
// and sort values that make long tokens, links are still accepted.
func TestMaxQueryBytesNeverRefusesItsLinks(t *testing.T) {
	c := connect(t, mongohttp.PoolConfig{})
	coll := database(t, c).Collection("names")
	docs := make([]any, 9)
	for i := range docs {
		docs[i] = bson.D{{Key: "_id", Value: bson.NewObjectID()}, {Key: "name", Value: fmt.Sprintf("%03d%s", i, strings.Repeat("n", 600))}}
	}
	if _, err := coll.InsertMany(context.Background(), docs); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{Client: c, Coll: coll,
		Policy: mongohttp.Policy{Sort: []string{"name"}, Filter: map[string]mongohttp.Type{"name": mongohttp.String}, MaxQueryBytes: 48},
	})).Find())
	defer srv.Close()
	for _, query := range []string{"sort=name&limit=2", `sort=name&limit=2&name[nin]=<">,{}`, "sort=name&limit=2&name[gt]=%30%30"} {
		target, n := "/?"+query, 0
		for target != "" {
			resp, err := http.Get(srv.URL + target)
			if err != nil {
				t.Fatal(err)
			}
			var docs []json.RawMessage
			err = json.NewDecoder(resp.Body).Decode(&docs)
			resp.Body.Close()
			if resp.StatusCode != 200 || err != nil {
				t.Fatalf("%.80s: status %d (%v)", target, resp.StatusCode, err)
			}
			n += len(docs)
			target = nextLink(t, resp.Header)
			if len(target) < 600 && target != "" {
				t.Fatalf("link of %d bytes: the test needs long tokens", len(target))
			}
		}
		if n != 9 {
			t.Errorf("%s: %d documents, want 9", query, n)
		}
	}
}

// TestAcceptNegotiation: NDJSON only when the client prefers it.
func TestAcceptNegotiation(t *testing.T) {
	f := newFixture(t, 3)
	tests := []struct{ accept, want string }{
		{"", "application/json"},
		{"application/x-ndjson", mongohttp.NDJSON},
		{"application/x-ndjson;q=0", "application/json"},
		{"application/x-ndjson;q=0, */*;q=0.5", "application/json"},
		{"application/json;q=0.4, application/x-ndjson;q=0.8", mongohttp.NDJSON},
		{"*/*", "application/json"},
		{"text/html", "application/json"},
		{"application/x-ndjson;q=abc", "application/json"},
	}
	for _, tt := range tests {
		r := f.do(t, "GET", "/people?limit=3", "Accept", tt.accept)
		if r.status != 200 || r.header.Get("Content-Type") != tt.want {
			t.Errorf("Accept %q: status %d, Content-Type %q; want %s", tt.accept, r.status, r.header.Get("Content-Type"), tt.want)
			continue
		}
		if tt.want == mongohttp.NDJSON {
			if lines := bytes.Count(r.body, []byte("\n")); lines != 3 || r.body[0] != '{' {
				t.Errorf("Accept %q: %d lines: %s", tt.accept, lines, r.body)
			}
		} else if len(r.docs(t)) != 3 {
			t.Errorf("Accept %q: %s", tt.accept, r.body)
		}
		if !slices.Contains(r.header.Values("Vary"), "Accept") {
			t.Errorf("Accept %q: Vary %q", tt.accept, r.header.Values("Vary"))
		}
	}
}
