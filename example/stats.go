package main

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"

	"github.com/mongohttp/mongohttp"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// postStats is the aggregation behind GET /posts/stats and
// GET /users/{id}/stats: posts and likes in total and per month, over the
// posts that the client's filters (published[gte]=…&published[lt]=…) and
// the route's base filter keep.
//
// The embedded FerretDB computes only the first accumulator of a $group
// and has no date operators, so each figure has a pipeline of its own,
// grouped by the stored month, and reduceStats combines them. On MongoDB
// one pipeline does it, with no stored month:
//
//	{$group: {_id: {$dateToString: {format: "%Y-%m", date: "$published"}},
//	          posts: {$sum: 1}, likes: {$sum: "$likes"}}},
//	{$sort: {_id: 1}}
var postStats = mongohttp.Aggregation{
	Facets: map[string]mongo.Pipeline{
		"posts": {
			{{Key: "$group", Value: bson.D{{Key: "_id", Value: "$month"}, {Key: "n", Value: bson.D{{Key: "$sum", Value: 1}}}}}},
		},
		"likes": {
			{{Key: "$group", Value: bson.D{{Key: "_id", Value: "$month"}, {Key: "n", Value: bson.D{{Key: "$sum", Value: "$likes"}}}}}},
		},
	},
	Reduce: reduceStats,
}

// stats is the answer of the stats routes.
type stats struct {
	Posts   int64        `bson:"posts"`
	Likes   int64        `bson:"likes"`
	ByMonth []monthStats `bson:"by_month"`
}

type monthStats struct {
	// Month is "2024-04"; null for posts written without one.
	Month *string `bson:"month"`
	Posts int64   `bson:"posts"`
	Likes int64   `bson:"likes"`
}

// reduceStats merges the per-month counts and sums of postStats' facets,
// months in order.
func reduceStats(_ *http.Request, results map[string][]bson.Raw) (any, error) {
	months := map[string]*monthStats{}
	month := func(doc bson.Raw) *monthStats {
		key, ok := doc.Lookup("_id").StringValueOK()
		if !ok {
			key = "\x00" // no month: sorts first, answered as null
		}
		m := months[key]
		if m == nil {
			m = &monthStats{}
			if ok {
				m.Month = &key
			}
			months[key] = m
		}
		return m
	}
	out := stats{ByMonth: []monthStats{}}
	for _, facet := range []string{"posts", "likes"} {
		for _, doc := range results[facet] {
			n, ok := doc.Lookup("n").AsInt64OK()
			if !ok {
				return nil, fmt.Errorf("stats: %s of month %s is not a number", facet, doc.Lookup("_id"))
			}
			m := month(doc)
			if facet == "posts" {
				m.Posts, out.Posts = n, out.Posts+n
			} else {
				m.Likes, out.Likes = n, out.Likes+n
			}
		}
	}
	for _, m := range months {
		out.ByMonth = append(out.ByMonth, *m)
	}
	key := func(m monthStats) string {
		if m.Month == nil {
			return ""
		}
		return *m.Month
	}
	slices.SortFunc(out.ByMonth, func(a, b monthStats) int { return cmp.Compare(key(a), key(b)) })
	return out, nil
}
