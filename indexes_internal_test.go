package mongohttp

import (
	"errors"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// TestIndexPresent checks when an index listIndexes reports serves a
// needed one: the same key pattern or its exact reverse, whatever numeric
// type holds the directions, and options that do not narrow it; an index
// under the needed name with another pattern, or with the pattern and
// narrowing options, is a conflict.
func TestIndexPresent(t *testing.T) {
	sortIx := Index{Keys: bson.D{{Key: "age", Value: int32(-1)}, {Key: "_id", Value: int32(1)}}, Name: "age_-1__id_1"}
	ttlIx := Index{Keys: bson.D{{Key: "expires", Value: int32(1)}}, Expires: true, Name: "expires_1"}
	spec := func(name string, key bson.D, extra ...bson.E) bson.Raw {
		b, err := bson.Marshal(append(bson.D{{Key: "v", Value: int32(2)}, {Key: "key", Value: key}, {Key: "name", Value: name}}, extra...))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ageDesc := bson.D{{Key: "age", Value: int32(-1)}, {Key: "_id", Value: int32(1)}}
	tests := []struct {
		name     string
		need     Index
		existing bson.Raw
		want     bool
		conflict bool
	}{
		{"same", sortIx, spec("age_-1__id_1", ageDesc), true, false},
		{"other name", sortIx, spec("by_age", ageDesc), true, false},
		{"int64 and double", sortIx, spec("x", bson.D{{Key: "age", Value: int64(-1)}, {Key: "_id", Value: 1.0}}), true, false},
		{"reverse", sortIx, spec("x", bson.D{{Key: "age", Value: int32(1)}, {Key: "_id", Value: int32(-1)}}), true, false},
		{"unique serves", sortIx, spec("x", ageDesc, bson.E{Key: "unique", Value: true}), true, false},
		{"other directions", sortIx, spec("x", bson.D{{Key: "age", Value: int32(1)}, {Key: "_id", Value: int32(1)}}), false, false},
		{"prefix only", sortIx, spec("x", bson.D{{Key: "age", Value: int32(-1)}}), false, false},
		{"longer", sortIx, spec("x", append(ageDesc, bson.E{Key: "name", Value: int32(1)})), false, false},
		{"name taken", sortIx, spec("age_-1__id_1", bson.D{{Key: "age", Value: int32(1)}}), false, true},
		{"partial", sortIx, spec("x", ageDesc, bson.E{Key: "partialFilterExpression", Value: bson.D{{Key: "age", Value: bson.D{{Key: "$gt", Value: 5}}}}}), false, true},
		{"sparse", sortIx, spec("x", ageDesc, bson.E{Key: "sparse", Value: true}), false, true},
		{"collation", sortIx, spec("x", ageDesc, bson.E{Key: "collation", Value: bson.D{{Key: "locale", Value: "fr"}}}), false, true},
		{"simple collation", sortIx, spec("x", ageDesc, bson.E{Key: "collation", Value: bson.D{{Key: "locale", Value: "simple"}}}), true, false},
		{"ttl", ttlIx, spec("expires_1", bson.D{{Key: "expires", Value: int32(1)}}, bson.E{Key: "expireAfterSeconds", Value: int32(0)}), true, false},
		{"ttl as a double", ttlIx, spec("e", bson.D{{Key: "expires", Value: int32(1)}}, bson.E{Key: "expireAfterSeconds", Value: 0.0}), true, false},
		{"not ttl", ttlIx, spec("expires_1", bson.D{{Key: "expires", Value: int32(1)}}), false, true},
		{"other ttl", ttlIx, spec("expires_1", bson.D{{Key: "expires", Value: int32(1)}}, bson.E{Key: "expireAfterSeconds", Value: int32(60)}), false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var keys bson.D
			if err := bson.Unmarshal(tt.existing.Lookup("key").Document(), &keys); err != nil {
				t.Fatal(err)
			}
			name, _ := tt.existing.Lookup("name").StringValueOK()
			e := existingIndex{name: name, pattern: keyPattern(keys, false), reverse: keyPattern(keys, true), raw: tt.existing}
			got, err := present(tt.need, []existingIndex{e})
			if got != tt.want || errors.Is(err, ErrIndexConflict) != tt.conflict || (err != nil) != tt.conflict {
				t.Errorf("present = %v, %v; want %v, conflict %v", got, err, tt.want, tt.conflict)
			}
		})
	}
}
