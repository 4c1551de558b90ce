package mongohttp

import (
	"context"
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
			h := Must(New(Collection[bson.Raw]{Coll: coll, ReadPreference: tt.rp})).Find().(*describedHandler).Handler.(*findHandler[bson.Raw])
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
