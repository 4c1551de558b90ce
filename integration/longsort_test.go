package integration_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/mongohttp/mongohttp"
	"github.com/mongohttp/mongohttp/bsonjson"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// longNamesService serves coll sorted by name with the default MaxSkip
// (1,000), which a walk by position could not pass.
func longNamesService(t *testing.T, c *mongohttp.Client, coll *mongo.Collection) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{Client: c, Coll: coll,
		Policy:  mongohttp.Policy{Sort: []string{"name", "tag"}, MaxLimit: 100, CursorKey: []byte("0123456789abcdef-long-names")},
		Encoder: &bsonjson.Encoder{Format: bsonjson.FormatCanonical},
	})).Find())
	t.Cleanup(srv.Close)
	return srv
}

// walkBounded walks as walk does, and checks that every token stays within
// MaxCursorLength.
func walkBounded(t *testing.T, base, target string) []string {
	t.Helper()
	var ids []string
	for pages := 0; target != ""; pages++ {
		if pages > 1000 {
			t.Fatal("paging does not end")
		}
		p := getPage(t, base, target, "")
		ids = append(ids, p.ids...)
		target = p.next
		if target != "" {
			u, err := url.Parse(target)
			if err != nil {
				t.Fatal(err)
			}
			if n := len(u.Query().Get("after")); n == 0 || n > mongohttp.MaxCursorLength {
				t.Fatalf("page %d links with a token of %d characters", pages+1, n)
			}
		}
	}
	return ids
}

// TestPagingLongSortValues: 1,200 documents whose names are 700 bytes
// long, sorted by name both ways, are each served once and in the
// server's order by following the links, with tokens within
// MaxCursorLength and never a 5xx. Before, a name too long for a token
// made the walk continue by position, and past MaxSkip the next page was a
// 500. The names come in three shapes: distinct from their first bytes;
// sharing a 690-byte prefix (hundreds of documents, more than MaxSkip, in
// one group of what a token can hold) with many exact ties broken by _id;
// and awkward text at the cut: multi-byte characters, U+10FFFF (whose
// prefix has no simple successor), invalid UTF-8 written by another
// program.
func TestPagingLongSortValues(t *testing.T) {
	c := connect(t, mongohttp.PoolConfig{})
	db := database(t, c)
	shapes := map[string]func(i int) any{
		"distinct": func(i int) any { return fmt.Sprintf("%04d", (i*7919)%1200) + strings.Repeat("n", 696) },
		"shared prefix": func(i int) any {
			return strings.Repeat("p", 690) + fmt.Sprintf("%04d", i%400) // three documents per name
		},
		"awkward text": func(i int) any {
			heads := []string{strings.Repeat("é", 345), strings.Repeat("\U0010FFFF", 172), strings.Repeat("z", 689) + "\xff", strings.Repeat("\u00ff", 340) + "\x80"}
			switch i % 7 {
			case 5:
				return bson.A{heads[i%4] + fmt.Sprint(i%50), "a"} // an array: sorted by its smallest or largest
			case 6:
				return nil // missing
			}
			return heads[i%4] + fmt.Sprintf("%03d", i%50)
		},
	}
	for name, shape := range shapes {
		t.Run(name, func(t *testing.T) {
			coll := db.Collection(strings.ReplaceAll(name, " ", "_"))
			docs := make([]any, 1200)
			for i := range docs {
				doc := bson.D{{Key: "_id", Value: bson.NewObjectID()}, {Key: "tag", Value: int32(i % 3)}}
				if v := shape(i); v != nil {
					doc = append(doc, bson.E{Key: "name", Value: v})
				}
				docs[i] = doc
			}
			if _, err := coll.InsertMany(context.Background(), docs); err != nil {
				t.Fatal(err)
			}
			srv := longNamesService(t, c, coll)
			for _, spec := range []string{"-name", "name", "tag,-name"} {
				want := serverOrder(t, coll, bson.D{}, sortDoc(spec))
				got := walkBounded(t, srv.URL, "/?sort="+spec+"&limit=100")
				sameWalk(t, "sort="+spec, got, want)
			}
		})
	}
}

// TestPagingLongSortValuesWhileTheAnchorMoves: when the document a page
// ended at is deleted or renamed before the next page, that page starts
// at the group of documents sharing what its token kept of the name: some
// may come again, none is left out, and nothing fails.
func TestPagingLongSortValuesWhileTheAnchorMoves(t *testing.T) {
	c := connect(t, mongohttp.PoolConfig{})
	coll := database(t, c).Collection("moving")
	docs := make([]any, 300)
	for i := range docs {
		docs[i] = bson.D{{Key: "_id", Value: bson.NewObjectID()}, {Key: "name", Value: strings.Repeat("m", 700) + fmt.Sprintf("%03d", i)}}
	}
	if _, err := coll.InsertMany(context.Background(), docs); err != nil {
		t.Fatal(err)
	}
	srv := longNamesService(t, c, coll)
	want := serverOrder(t, coll, bson.D{}, sortDoc("-name"))
	seen := map[string]bool{}
	removed := map[string]bool{}
	target := "/?sort=-name&limit=40"
	for pages := 0; target != ""; pages++ {
		if pages > 100 {
			t.Fatal("paging does not end")
		}
		p := getPage(t, srv.URL, target, "")
		for _, id := range p.ids {
			seen[id] = true
		}
		target = p.next
		if target == "" || len(p.ids) == 0 {
			break
		}
		// Move the anchor: delete it on even pages, rename it on odd ones.
		var last bson.D
		if err := bson.UnmarshalExtJSON([]byte(`{"_id":`+p.ids[len(p.ids)-1]+`}`), true, &last); err != nil {
			t.Fatal(err)
		}
		if pages%2 == 0 {
			if _, err := coll.DeleteOne(context.Background(), last); err != nil {
				t.Fatal(err)
			}
			removed[p.ids[len(p.ids)-1]] = true
		} else if _, err := coll.UpdateOne(context.Background(), last, bson.D{{Key: "$set", Value: bson.D{{Key: "name", Value: "renamed"}}}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range want {
		if !seen[id] && !removed[id] {
			t.Errorf("document %s was never served", id)
		}
	}
}
