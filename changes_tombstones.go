package mongohttp

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// tombstones record the deletes of a collection for its change feeds: a
// document {_id: ObjectID made at the delete, doc: the deleted id} in
// "<name>_changes", written before the document is deleted so that no
// delete goes without one (a tombstone whose document still exists says
// nothing: the feeds look again until the document is gone or the
// tombstone leaves their window).
type tombstones struct {
	coll      *mongo.Collection
	retention time.Duration
	logger    *slog.Logger
	lastSweep atomic.Int64 // Unix ms
}

// sweepEvery is how often, at most, an instance deletes the tombstones
// older than the retention.
const sweepEvery = time.Minute

// tombstonesFor returns the tombstones of the collection coll under cfg,
// or nil when the collection has no feed (cfg is nil).
func tombstonesFor(coll *mongo.Collection, cfg *ChangeFeed, logger *slog.Logger) *tombstones {
	if cfg == nil {
		return nil
	}
	t := &tombstones{coll: cfg.Tombstones, retention: cfg.Retention, logger: logger}
	if t.coll == nil {
		t.coll = coll.Database().Collection(coll.Name() + "_changes")
	}
	return t
}

// collection is the tombstones' collection, nil for none.
func (t *tombstones) collection() *mongo.Collection {
	if t == nil {
		return nil
	}
	return t.coll
}

// record writes the tombstone of id, and now and then sweeps the old ones.
func (t *tombstones) record(ctx context.Context, id any) error {
	if t == nil {
		return nil
	}
	if _, err := t.coll.InsertOne(ctx, bson.D{{Key: "_id", Value: bson.NewObjectID()}, {Key: "doc", Value: id}}); err != nil {
		return err
	}
	now := time.Now()
	last := t.lastSweep.Load()
	if now.Sub(time.UnixMilli(last)) < sweepEvery || !t.lastSweep.CompareAndSwap(last, now.UnixMilli()) {
		return nil
	}
	cutoff := bson.NewObjectIDFromTimestamp(now.Add(-t.retention))
	if _, err := t.coll.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$lt", Value: cutoff}}}}); err != nil {
		// The sweep is tried again later; the delete goes on.
		t.logger.LogAttrs(ctx, slog.LevelWarn, "mongohttp: sweeping old tombstones failed", slog.Any("error", err))
		t.lastSweep.Store(last)
	}
	return nil
}
