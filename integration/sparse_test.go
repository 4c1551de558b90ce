package integration_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mongohttp/mongohttp"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// TestTypedServesSparseDocumentsAsRaw: a struct handler serves the same
// JSON as a bson.Raw one for documents that lack some of the struct's
// fields (absent fields stay absent, in pages and single documents), while
// a Transform can still add a field the document lacked.
func TestTypedServesSparseDocumentsAsRaw(t *testing.T) {
	c := connect(t, mongohttp.PoolConfig{})
	coll := database(t, c).Collection("people")
	ids := []bson.ObjectID{bson.NewObjectID(), bson.NewObjectID(), bson.NewObjectID()}
	docs := []any{
		bson.D{{Key: "_id", Value: ids[0]}, {Key: "name", Value: "only a name"}},
		bson.D{{Key: "_id", Value: ids[1]}, {Key: "age", Value: int32(0)}, {Key: "tags", Value: bson.A{}}},
		bson.D{{Key: "_id", Value: ids[2]}, {Key: "name", Value: "full"}, {Key: "age", Value: int32(40)}, {Key: "group", Value: "a"},
			{Key: "tags", Value: bson.A{"x"}}, {Key: "secret", Value: "s3cr3t-x"}},
	}
	if _, err := coll.InsertMany(context.Background(), docs); err != nil {
		t.Fatal(err)
	}
	raw := mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{Client: c, Coll: coll, Policy: peoplePolicy}))
	typed := mongohttp.Must(mongohttp.New(mongohttp.Collection[person]{Client: c, Coll: coll, Policy: peoplePolicy}))
	shout := mongohttp.Must(mongohttp.New(mongohttp.Collection[person]{Client: c, Coll: coll, Policy: peoplePolicy,
		Transform: func(r *http.Request, p *person) error {
			if p.Group == "" {
				p.Group = "none" // set by the service: kept although the document lacks it
			}
			return nil
		},
	}))
	mux := http.NewServeMux()
	mux.Handle("/raw", raw.Find())
	mux.Handle("/raw/{id}", raw.FindOne())
	mux.Handle("/typed", typed.Find())
	mux.Handle("/typed/{id}", typed.FindOne())
	mux.Handle("/shout", shout.Find())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	f := &fixture{srv: srv}

	for _, q := range []string{"", "?fields=name", "?fields=age,tags"} {
		r, ty := f.do(t, "GET", "/raw"+q), f.do(t, "GET", "/typed"+q)
		if r.status != 200 || !bytes.Equal(r.body, ty.body) {
			t.Fatalf("Find%s differs:\nraw   %s\ntyped %s", q, r.body, ty.body)
		}
		for _, id := range ids {
			r, ty := f.do(t, "GET", "/raw/"+id.Hex()+q), f.do(t, "GET", "/typed/"+id.Hex()+q)
			if r.status != 200 || !bytes.Equal(r.body, ty.body) || r.header.Get("ETag") != ty.header.Get("ETag") {
				t.Fatalf("FindOne%s of %s differs:\nraw   %s\ntyped %s", q, id.Hex(), r.body, ty.body)
			}
		}
	}
	// The zero values a document does hold are kept: age 0 and [] tags.
	if got := string(f.do(t, "GET", "/typed/"+ids[1].Hex()).body); !strings.Contains(got, `"age":0`) || !strings.Contains(got, `"tags":[]`) {
		t.Fatalf("stored zero values dropped: %s", got)
	}
	body := string(f.do(t, "GET", "/shout").body)
	if strings.Count(body, `"group":"none"`) != 2 || !strings.Contains(body, `"group":"a"`) {
		t.Fatalf("Transform's values: %s", body)
	}
}
