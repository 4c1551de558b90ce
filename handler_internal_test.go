package mongohttp

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
)

// TestReadPreferenceReachesTheDriver checks that a handler's read
// preference is in the options of the command Find sends. The test server
// is a standalone, to which drivers never send a read preference, so this
// is checked here, on the options themselves.
func TestReadPreferenceReachesTheDriver(t *testing.T) {
	c, err := Connect(context.Background(), "mongodb://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	coll := c.Database("db").Collection("c")
	tests := []struct {
		name string
		rp   *readpref.ReadPref
		want readpref.Mode
	}{
		{"default is primary", nil, readpref.PrimaryMode},
		{"secondaryPreferred", readpref.SecondaryPreferred(), readpref.SecondaryPreferredMode},
		{"nearest", readpref.Nearest(), readpref.NearestMode},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := Must(New(Collection[bson.Raw]{Client: c, Coll: coll, ReadPreference: tt.rp})).Find().(*describedHandler).Handler.(*findHandler[bson.Raw])
			var got options.RunCmdOptions
			for _, set := range h.runOpts.Opts {
				if err := set(&got); err != nil {
					t.Fatal(err)
				}
			}
			if got.ReadPreference == nil || got.ReadPreference.Mode() != tt.want {
				t.Fatalf("read preference %v, want %v", got.ReadPreference, tt.want)
			}
		})
	}
}

// TestETagOf checks the ETag's form against its definition: the version's
// hex and a dot when the document has one, then the body's SHA-256 cut to
// 18 bytes in unpadded base64url, in quotes.
func TestETagOf(t *testing.T) {
	body := []byte(`{"_id":"5feee5b37448184aad5332d6","name":"Ada"}` + "\n")
	sum := sha256.Sum256(body)
	hash := base64.RawURLEncoding.EncodeToString(sum[:18])
	version := bson.NewObjectID()
	for _, c := range []struct {
		name string
		doc  bson.D
		want string
	}{
		{"no version", bson.D{{Key: "name", Value: "Ada"}}, `"` + hash + `"`},
		{"version", bson.D{{Key: "_v", Value: version}}, `"` + version.Hex() + "." + hash + `"`},
		{"version of another type", bson.D{{Key: "_v", Value: 3}}, `"` + hash + `"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			raw, err := bson.Marshal(c.doc)
			if err != nil {
				t.Fatal(err)
			}
			if got := etagOf(body, raw, "_v"); got != c.want {
				t.Errorf("etagOf = %s, want %s", got, c.want)
			}
		})
	}
}
