package mongohttp_test

import (
	"strings"
	"testing"
	"time"

	"github.com/mongohttp/mongohttp"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// TestChangesNeedsADeclaredFeed: a feed on a declaration without Changes
// would miss the deletes (they leave no tombstone), so Changes refuses it;
// a negative setting is refused by New, and New leaves the caller's
// ChangeFeed as it was.
func TestChangesNeedsADeclaredFeed(t *testing.T) {
	client, coll := offline(t, "things")
	plain := mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{Client: client, Coll: coll}))
	func() {
		defer func() {
			msg, _ := recover().(string)
			if !strings.Contains(msg, "Collection.Changes") {
				t.Errorf("Changes without a declared feed: recovered %q, want a panic naming Collection.Changes", msg)
			}
		}()
		plain.Changes()
	}()

	if _, err := mongohttp.New(mongohttp.Collection[bson.Raw]{Client: client, Coll: coll,
		Changes: &mongohttp.ChangeFeed{Poll: -time.Second}}); err == nil || !strings.Contains(err.Error(), "Changes") {
		t.Errorf("a negative Poll: New returned %v, want an error naming Changes", err)
	}
	cfg := &mongohttp.ChangeFeed{}
	res := mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{Client: client, Coll: coll, Changes: cfg}))
	feed := res.Changes()
	feed.Close()
	feed.Close() // idempotent
	if *cfg != (mongohttp.ChangeFeed{}) {
		t.Errorf("New changed the caller's ChangeFeed to %+v", *cfg)
	}
}
