package rawbson

import (
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func TestSetFields(t *testing.T) {
	oid := bson.NewObjectID()
	ver := bson.NewObjectID()
	tests := []struct {
		name string
		doc  bson.D
		set  bson.D
		want bson.D
	}{
		{"id goes first", bson.D{{Key: "a", Value: 1}}, bson.D{{Key: "_id", Value: oid}, {Key: "v", Value: ver}},
			bson.D{{Key: "_id", Value: oid}, {Key: "a", Value: int32(1)}, {Key: "v", Value: ver}}},
		{"replaced in place", bson.D{{Key: "_id", Value: "old"}, {Key: "v", Value: "x"}, {Key: "b", Value: true}},
			bson.D{{Key: "v", Value: ver}, {Key: "_id", Value: oid}},
			bson.D{{Key: "_id", Value: oid}, {Key: "v", Value: ver}, {Key: "b", Value: true}}},
		{"other types", bson.D{}, bson.D{{Key: "s", Value: "x"}, {Key: "n", Value: int64(7)}, {Key: "f", Value: 1.5},
			{Key: "d", Value: bson.D{{Key: "x", Value: int32(1)}}}, {Key: "t", Value: bson.DateTime(5)}},
			bson.D{{Key: "s", Value: "x"}, {Key: "n", Value: int64(7)}, {Key: "f", Value: 1.5},
				{Key: "d", Value: bson.D{{Key: "x", Value: int32(1)}}}, {Key: "t", Value: bson.DateTime(5)}}},
		{"nothing to set", bson.D{{Key: "a", Value: "b"}}, nil, bson.D{{Key: "a", Value: "b"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, _ := bson.Marshal(tt.doc)
			got, err := SetFields(doc, tt.set)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := bson.Marshal(tt.want)
			if string(got) != string(want) {
				t.Errorf("got %s, want %s", got, bson.Raw(want))
			}
		})
	}
	if _, err := SetFields(bson.Raw{5, 0, 0, 0}, bson.D{{Key: "a", Value: 1}}); err == nil {
		t.Error("a malformed document was accepted")
	}
}

// TestMarshalD checks MarshalD against bson.Marshal for every kind of value
// a decoded body or a stored document gives it.
func TestMarshalD(t *testing.T) {
	stored, _ := bson.Marshal(bson.D{{Key: "x", Value: bson.D{{Key: "y", Value: int64(2)}}}, {Key: "r", Value: bson.Regex{Pattern: "a", Options: "i"}}})
	elems, _ := bson.Raw(stored).Elements()
	d := bson.D{
		{Key: "s", Value: "é"}, {Key: "i", Value: int32(-1)}, {Key: "l", Value: int64(1 << 40)}, {Key: "f", Value: 1.5},
		{Key: "b", Value: true}, {Key: "o", Value: bson.NewObjectID()}, {Key: "dt", Value: bson.DateTime(-5)},
		{Key: "t", Value: time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)}, {Key: "n", Value: nil},
		{Key: "d", Value: bson.D{{Key: "a", Value: bson.A{"x", int32(1), bson.D{{Key: "z", Value: false}}, bson.A{}}}}},
		{Key: "rv", Value: elems[0].Value()}, {Key: "re", Value: elems[1].Value()}, {Key: "raw", Value: bson.Raw(stored)},
		{Key: "a12", Value: bson.A{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}},
	}
	want, err := bson.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	got, err := MarshalD(d)
	if err != nil || string(got) != string(want) {
		t.Fatalf("MarshalD:\n%v (%v)\nbson.Marshal:\n%v", bson.Raw(got), err, bson.Raw(want))
	}
	if _, err := MarshalD(bson.D{{Key: "c", Value: make(chan int)}}); err == nil {
		t.Error("a value BSON cannot hold was encoded")
	}
}

func TestOmitPaths(t *testing.T) {
	doc, _ := bson.Marshal(bson.D{
		{Key: "_id", Value: 1}, {Key: "secret", Value: "x"},
		{Key: "p", Value: bson.D{{Key: "hash", Value: "h"}, {Key: "city", Value: "c"}, {Key: "q", Value: bson.D{{Key: "k", Value: 1}}}}},
		{Key: "secretive", Value: "kept"}, {Key: "arr", Value: bson.A{bson.D{{Key: "secret", Value: 1}}}},
	})
	tests := []struct {
		paths []string
		want  string
	}{
		{[]string{"secret"}, `{"_id": {"$numberInt":"1"},"p": {"hash": "h","city": "c","q": {"k": {"$numberInt":"1"}}},"secretive": "kept","arr": [{"secret": {"$numberInt":"1"}}]}`},
		{[]string{"p.hash", "p.q.k"}, `{"_id": {"$numberInt":"1"},"secret": "x","p": {"city": "c","q": {}},"secretive": "kept","arr": [{"secret": {"$numberInt":"1"}}]}`},
		{[]string{"p"}, `{"_id": {"$numberInt":"1"},"secret": "x","secretive": "kept","arr": [{"secret": {"$numberInt":"1"}}]}`},
		{[]string{"nope", "p.nope", "secre", "p.city.x"}, ""}, // unchanged: the same slice
	}
	for _, tt := range tests {
		got := OmitPaths(doc, tt.paths)
		if tt.want == "" {
			if &got[0] != &doc[0] {
				t.Errorf("%v: a copy was made of a document holding none of the paths", tt.paths)
			}
			continue
		}
		if got.String() != tt.want {
			t.Errorf("%v: got %s\nwant %s", tt.paths, got, tt.want)
		}
	}
}
