package mongohttp

import (
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

type zeroItem struct {
	Qty  int    `bson:"qty,omitempty"`
	Note string `bson:"note,omitempty"`
}

type zeroProfile struct {
	Score float64    `bson:"score,omitempty"`
	Seen  time.Time  `bson:"seen,omitempty"`
	Items []zeroItem `bson:"items,omitempty"`
	Next  *zeroProfile
}

type zeroDoc struct {
	ID      bson.ObjectID `bson:"_id"`
	Age     int           `bson:"age,omitempty"`
	Profile zeroProfile   `bson:"profile"`
	Extra   *zeroProfile  `bson:"extra,omitempty"`
	Tags    []string      `bson:"tags,omitempty"`
}

// TestZeroValuesRoundTrip: a document decoded into a struct whose fields
// are tagged omitempty and marshalled back keeps the empty values it held,
// at every depth (nested structs, pointers, the elements of slices), and
// gains none it did not hold.
func TestZeroValuesRoundTrip(t *testing.T) {
	tree := omitEmptyKeys[zeroDoc]()
	id := bson.NewObjectID()
	for _, tt := range []struct {
		name string
		src  bson.D
		want [][]string // the paths of empty values that must come back
	}{
		{"top level", bson.D{{Key: "_id", Value: id}, {Key: "age", Value: int64(0)}, {Key: "tags", Value: bson.A{}}},
			[][]string{{"age"}, {"tags"}}},
		{"nested", bson.D{{Key: "_id", Value: id}, {Key: "profile", Value: bson.D{{Key: "score", Value: 0.0}}}},
			[][]string{{"profile", "score"}}},
		{"in a slice", bson.D{{Key: "_id", Value: id}, {Key: "profile", Value: bson.D{
			{Key: "items", Value: bson.A{bson.D{{Key: "qty", Value: int64(0)}}, bson.D{{Key: "qty", Value: int64(2)}, {Key: "note", Value: ""}}}}}}},
			[][]string{{"profile", "items", "0", "qty"}, {"profile", "items", "1", "note"}}},
		{"through pointers", bson.D{{Key: "_id", Value: id},
			{Key: "extra", Value: bson.D{{Key: "score", Value: 0.0}, {Key: "next", Value: bson.D{{Key: "seen", Value: time.Time{}}}}}}},
			[][]string{{"extra", "score"}, {"extra", "next", "seen"}}},
		{"nothing to restore", bson.D{{Key: "_id", Value: id}, {Key: "age", Value: int64(7)}}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			src, err := bson.Marshal(tt.src)
			if err != nil {
				t.Fatal(err)
			}
			var v zeroDoc
			if err := bson.Unmarshal(src, &v); err != nil {
				t.Fatal(err)
			}
			out, err := bson.Marshal(&v)
			if err != nil {
				t.Fatal(err)
			}
			got := bson.Raw(keepEmpty(out, src, tree))
			for _, path := range tt.want {
				if _, err := bson.Raw(out).LookupErr(path...); err == nil {
					t.Fatalf("%v survived marshalling: the test does not test keepEmpty", path)
				}
				v, err := got.LookupErr(path...)
				if want := bson.Raw(src).Lookup(path...); err != nil || !v.Equal(want) {
					t.Errorf("%v: %v (%v), want %v, in %s", path, v, err, want, got)
				}
			}
			if tt.want == nil && got.String() != bson.Raw(out).String() {
				t.Errorf("keepEmpty changed a document with nothing to restore: %s", got)
			}
		})
	}
	// A value a hook emptied, where the source held one, stays out.
	src, _ := bson.Marshal(bson.D{{Key: "_id", Value: id}, {Key: "profile", Value: bson.D{{Key: "score", Value: 3.5}}}})
	out, _ := bson.Marshal(&zeroDoc{ID: id})
	if got := keepEmpty(out, src, tree); bson.Raw(got).Lookup("profile", "score").Type != 0 {
		t.Errorf("a score the hook emptied came back: %s", bson.Raw(got))
	}
}

type zeroNone struct {
	A   int
	Sub *zeroNone
	Ps  []zeroNone
}

type zeroBranches struct {
	L, R *zeroBranches
	N    int `bson:"n,omitempty"`
}

// TestOmitTreeShape: a struct with no omitempty field reachable has no
// tree (keepEmpty then costs nothing); a recursive one has one tree per
// type, shared, whatever the number of recursive fields.
func TestOmitTreeShape(t *testing.T) {
	if tree := omitEmptyKeys[zeroNone](); tree != nil {
		t.Errorf("a struct without omitempty fields has the tree %v", tree)
	}
	if tree := omitEmptyKeys[bson.Raw](); tree != nil {
		t.Errorf("bson.Raw has the tree %v", tree)
	}
	tree := omitEmptyKeys[zeroBranches]()
	if len(tree) != 3 || !tree["n"].empty || tree["l"].sub["r"].sub["n"] == nil {
		t.Fatalf("tree of a recursive struct: %v", tree)
	}
	tree["l"].sub["x"] = &omitNode{}
	if tree["r"].sub["x"] == nil || tree["x"] == nil {
		t.Errorf("the recursive type's tree is not shared")
	}
}
