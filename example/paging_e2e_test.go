package main

import (
	"context"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// TestPagingEverySort walks every sort the service allows, following
// rel="next" to the end, and compares the pages with what the database
// answers to the same query directly: every document once, in its order,
// and the same total on every page.
func TestPagingEverySort(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	mc, err := mongo.Connect(options.Client().ApplyURI(shared.dbURI))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = mc.Disconnect(context.Background()) }()
	db := mc.Database(shared.dbName)
	author := someUser.ID.Hex()

	// Each page costs the database a scan of its collection, so the posts'
	// sorts, the default one among them, are walked over a fifth of them
	// (likes are skewed: 20 % of the posts have fewer than 16, with many
	// ties).
	fewLikes := bson.D{{Key: "likes", Value: bson.D{{Key: "$lt", Value: 16}}}}
	cases := []walkCase{
		{"/users?", "users", bson.D{}, []string{"age", "-age", "name", "-name", "created", "-created", "-age,name"}, 100},
		{"/posts?likes[lt]=16&", "posts", fewLikes, []string{"", "published", "-published", "likes", "-likes", "-likes,published"}, 100},
		{"/users/" + author + "/posts?", "posts", bson.D{{Key: "author_id", Value: someUser.ID}}, []string{"likes", "-likes", "published", "-published"}, 2},
	}
	// The walks run in parallel inside one group, which returns (and lets
	// the deferred calls above run) only when all have ended.
	t.Run("walks", func(t *testing.T) {
		walkAll(ctx, t, db, cases)
	})
}

func walkAll(ctx context.Context, t *testing.T, db *mongo.Database, cases []walkCase) {
	for _, c := range cases {
		for _, sort := range c.sorts {
			// The total is asked for on the first page; the walk drops it
			// from the links (tokens do not depend on it) to spare the
			// database a count per page.
			target := c.target + "limit=" + strconv.Itoa(c.limit) + "&count=exact"
			spec := sort
			if sort != "" {
				target += "&sort=" + url.QueryEscape(sort)
			} else if c.coll == "posts" {
				spec = "-published" // the posts' default sort
			}
			t.Run(target, func(t *testing.T) {
				t.Parallel()
				want := directOrder(ctx, t, db.Collection(c.coll), c.filter, spec)
				total := strconv.Itoa(len(want))
				var got []string
				for pages := 0; target != ""; pages++ {
					if pages > len(want)/c.limit+2 {
						t.Fatalf("more pages than %d documents need", len(want))
					}
					resp, body := fetch(t, "GET", target)
					wantStatus(t, resp, body, 200, "application/json")
					if pages == 0 && resp.Header.Get("X-Total-Count") != total {
						t.Fatalf("X-Total-Count %q, want %s", resp.Header.Get("X-Total-Count"), total)
					}
					docs := decode[[]struct {
						ID string `json:"_id"`
					}](t, body)
					for _, d := range docs {
						got = append(got, d.ID)
					}
					next := nextLink(t, resp)
					if next != "" && !strings.HasPrefix(next, strings.SplitN(target, "?", 2)[0]+"?") {
						t.Fatalf("next link %q leaves %s", next, target)
					}
					if next != "" && len(docs) == 0 {
						t.Fatalf("an empty page links on to %s", next)
					}
					target = strings.Replace(next, "&count=exact", "", 1)
				}
				seen := map[string]bool{}
				for _, id := range got {
					if seen[id] {
						t.Fatalf("document %s served twice", id)
					}
					seen[id] = true
				}
				if !slices.Equal(got, want) {
					for _, id := range want {
						if !seen[id] {
							t.Fatalf("document %s never served (%d of %d served)", id, len(got), len(want))
						}
					}
					t.Fatalf("the pages hold the documents in another order than the database's")
				}
			})
		}
	}
}

// walkCase is a route to walk under several sorts.
type walkCase struct {
	target string // the path and the parameters before limit, count and sort
	coll   string
	filter bson.D // what the route selects, for the direct query
	sorts  []string
	limit  int
}

// directOrder is the database's own answer: the _ids matching filter, in
// the order of spec ("-age,name") with the _id tie-breaker.
func directOrder(ctx context.Context, t *testing.T, coll *mongo.Collection, filter bson.D, spec string) []string {
	t.Helper()
	var sort bson.D
	for _, f := range strings.Split(spec, ",") {
		dir := 1
		if strings.HasPrefix(f, "-") {
			dir, f = -1, f[1:]
		}
		sort = append(sort, bson.E{Key: f, Value: dir})
	}
	if sort[len(sort)-1].Key != "_id" {
		sort = append(sort, bson.E{Key: "_id", Value: 1})
	}
	cur, err := coll.Find(ctx, filter, options.Find().SetSort(sort).SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for cur.Next(ctx) {
		ids = append(ids, cur.Current.Lookup("_id").ObjectID().Hex())
	}
	if err := cur.Err(); err != nil {
		t.Fatal(err)
	}
	if len(ids) == 0 {
		t.Fatal("the database answers no documents; the case checks nothing")
	}
	return ids
}
