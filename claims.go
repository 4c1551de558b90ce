package mongohttp

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// claims serialize the writes of one document on servers whose
// single-document updates are not atomic under concurrent writers.
// MongoDB checks an update's filter and applies it as one operation, so a
// replacement filtered on the version read is enough there. FerretDB 1.x
// reads and then writes: two updates with the same version filter can both
// succeed, and one change is lost. There, a writer first inserts a claim
// named after the document and the version it read; _id uniqueness lets
// exactly one writer of each version go on, the others find the claim and
// answer 412 (or read again). A write that moved the document to a new
// version leaves its claim: nobody can take it again but a writer that read
// the old version, which must fail anyway, and removing it would cost a
// round trip per write. Claims older than their lease are swept away at
// most once per lease; a write that failed releases its claim at once.
type claims struct {
	coll      *mongo.Collection
	lease     time.Duration // a claim older than this is done with or was abandoned by a crash
	state     atomic.Int32  // 0 unknown, 1 needed, 2 not needed
	lastSweep atomic.Int64  // when claims were last swept, in Unix nanoseconds
}

// ClaimMode is Collection.WriteClaims: whether writers take claims.
type ClaimMode int

const (
	// ClaimsDetect takes claims on FerretDB, whose updates read the
	// document and then write it (it names itself in buildInfo), and not
	// on other servers.
	ClaimsDetect ClaimMode = iota
	// ClaimsAlways takes claims on any server, for one that does not
	// apply an update's filter and change as one operation but does not
	// say so.
	ClaimsAlways
	// ClaimsNever takes none. Use it only with a server whose updates
	// check their filter and write as one operation (MongoDB does): on
	// FerretDB 1.x two writers of one version could then both succeed, and
	// one update would be lost.
	ClaimsNever
)

func newClaims(coll *mongo.Collection, maxTime time.Duration, mode ClaimMode) *claims {
	c := &claims{coll: coll.Database().Collection(coll.Name() + "_claims"), lease: maxTime + 5*time.Second}
	switch mode {
	case ClaimsAlways:
		c.state.Store(1)
	case ClaimsNever:
		c.state.Store(2)
	}
	return c
}

// needed reports whether the server needs claims, asking it once: FerretDB
// names itself in buildInfo. A failed probe is not remembered.
func (c *claims) needed(ctx context.Context) (bool, error) {
	switch c.state.Load() {
	case 1:
		return true, nil
	case 2:
		return false, nil
	}
	raw, err := c.coll.Database().Client().Database("admin").RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Raw()
	if err != nil {
		return false, err
	}
	if _, err := raw.LookupErr("ferretdbVersion"); err == nil {
		c.state.Store(1)
		return true, nil
	}
	c.state.Store(2)
	return false, nil
}

// inUse reports whether writers take claims, once needed has said so.
func (c *claims) inUse() bool { return c.state.Load() == 1 }

type claimDoc struct {
	ID    string    `bson:"_id"`
	Taken time.Time `bson:"taken"`
}

// take claims the move of the document id away from version (the stored
// version, "" for none). It reports false when another writer holds the
// claim. release must be called after a successful take.
func (c *claims) take(ctx context.Context, id any, version string) (bool, error) {
	key := claimKey(id, version)
	c.sweep(ctx)
	for range 2 {
		now := time.Now()
		_, err := c.coll.InsertOne(ctx, claimDoc{ID: key, Taken: now})
		if err == nil {
			return true, nil
		}
		if !mongo.IsDuplicateKeyError(err) {
			return false, err
		}
		var held claimDoc
		if err := c.coll.FindOne(ctx, bson.D{{Key: "_id", Value: key}}).Decode(&held); err != nil {
			if errors.Is(err, mongo.ErrNoDocuments) {
				continue // released meanwhile
			}
			return false, err
		}
		if now.Sub(held.Taken) < c.lease {
			return false, nil
		}
		// Abandoned: remove exactly that claim, then try once more.
		if _, err := c.coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: key}, {Key: "taken", Value: held.Taken}}); err != nil {
			return false, err
		}
	}
	return false, nil
}

// sweep removes the claims older than the lease, when it last did so a
// lease ago or more (or never, in this process). It is best effort: a claim
// it leaves is removed by the next sweep, or taken over once its lease ran
// out.
func (c *claims) sweep(ctx context.Context) {
	now := time.Now()
	last := c.lastSweep.Load()
	if now.UnixNano()-last < int64(c.lease) || !c.lastSweep.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	_, _ = c.coll.DeleteMany(ctx, bson.D{{Key: "taken", Value: bson.D{{Key: "$lt", Value: now.Add(-c.lease)}}}})
}

func (c *claims) release(ctx context.Context, id any, version string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_, _ = c.coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: claimKey(id, version)}})
}

// claimKey names the claim of id at version. It is text that stays valid
// UTF-8 whatever the id's type (a server may store a string's invalid bytes
// as replacement characters, and two claims would then share a name): the
// hex of an ObjectID, else the id's canonical Extended JSON.
func claimKey(id any, version string) string {
	if oid, ok := id.(bson.ObjectID); ok {
		return oid.Hex() + "/" + version
	}
	ext, err := bson.MarshalExtJSON(bson.D{{Key: "i", Value: id}}, true, false)
	if err != nil {
		return "?/" + version
	}
	return string(ext) + "/" + version
}

// replaceClaimed replaces the document matching filter whose version is
// still that of stored, and reports whether it did: false when another
// write came first. The stored document is then exactly doc.
func (h *writer[T]) replaceClaimed(ctx context.Context, filter bson.D, id any, stored, doc bson.Raw) (bool, error) {
	ok, release, err := h.claim(ctx, id, stored)
	if !ok || err != nil {
		return false, err
	}
	var opts []options.Lister[options.ReplaceOptions]
	if c := contextComment(ctx); c != nil {
		opts = append(opts, options.Replace().SetComment(c))
	}
	res, err := h.w.wcoll.ReplaceOne(ctx, h.claimedFilter(id, filter, stored), doc, opts...)
	if err != nil || res.MatchedCount != 1 {
		release() // the version did not move: the claim must not hold it
	}
	if err != nil {
		if isDuplicateKey(err) {
			return false, h.w.unique.conflictError(ctx, err, doc)
		}
		return false, err
	}
	return res.MatchedCount == 1, nil
}

// pause waits before another read-merge-write round: a random time in
// the second half of a window that doubles each attempt, from 5 ms up to
// maxPause. The randomness spreads writers that lost the same race, which
// would otherwise come back together and collide again; the doubling lets
// a busy document's writers thin out.
func pause(ctx context.Context, attempt int) error {
	window := min(5*time.Millisecond<<min(attempt-1, 10), maxPause)
	t := time.NewTimer(window/2 + rand.N(window/2))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// maxPause bounds one pause of pause. Longer pauses left the writers that
// lost behind the ones that had just won and started their next write: a
// with a 100 ms bound 2-3 % of the example's concurrent patches still
// gave up after 50 rounds, with 20 ms none did.
const maxPause = 20 * time.Millisecond

// claim takes the document's write claim where the server needs one (see
// claims); it reports false when another writer holds it. The returned
// function releases it, for writes that did not happen.
func (h *writer[T]) claim(ctx context.Context, id any, stored bson.Raw) (bool, func(), error) {
	need, err := h.w.claims.needed(ctx)
	if err != nil || !need {
		return err == nil, func() {}, err
	}
	version := h.versionOf(stored)
	ok, err := h.w.claims.take(ctx, id, version)
	if !ok || err != nil {
		return false, func() {}, err
	}
	return true, func() { h.w.claims.release(ctx, id, version) }, nil
}

// claimedFilter selects the document to write once its claim is taken:
// filter (the request's scope and the id) and the version read. Where
// claims are taken it is the id alone. The claim already lets exactly one
// writer move the document away from the version read, and the scope was
// checked by that read; the server could not check the version atomically
// anyway, and FerretDB 1.x finds a document through its _id index only for
// a filter holding nothing else: with the version too, every write scanned
// the whole collection (10 times slower at 1,000 documents).
func (h *writer[T]) claimedFilter(id any, filter bson.D, stored bson.Raw) bson.D {
	if h.w.claims.inUse() {
		return bson.D{{Key: "_id", Value: id}}
	}
	return and(filter, h.versionCondition(stored))
}
