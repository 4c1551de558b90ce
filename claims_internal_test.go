package mongohttp

import (
	"testing"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Claim names must be valid UTF-8 and distinct for distinct ids: a server
// that stores invalid bytes as replacement characters would otherwise merge
// the claims of different documents.
func TestClaimKeysAreDistinctText(t *testing.T) {
	ids := []any{
		bson.ObjectID{0x80, 1}, bson.ObjectID{0x81, 1}, bson.ObjectID{0xff, 0xfe},
		"a", "b", int64(1), int32(1), 1.5, bson.D{{Key: "x", Value: 1}},
	}
	seen := map[string]any{}
	for _, id := range ids {
		k := claimKey(id, "v")
		if !utf8.ValidString(k) {
			t.Fatalf("claim key of %v is not UTF-8: %q", id, k)
		}
		if prev, ok := seen[k]; ok {
			t.Fatalf("ids %v and %v share the claim key %q", prev, id, k)
		}
		seen[k] = id
	}
}
