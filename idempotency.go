package mongohttp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Idempotency configures the Idempotency-Key header of Insert.
//
// A client that sends a POST with an Idempotency-Key and retries it (after
// a timeout, a dropped connection) gets the first answer again, and the
// document is inserted once. Keys are kept, with the answer, in a MongoDB
// collection, so every instance of a service shares them. A key names one
// request: the same key with another body is refused with 422
// "idempotency_key_reused". Keys are kept per collection, policy and scope
// (the BaseFilter's result): the same key sent to another tenant, or
// another collection, is another key; the path's spelling does not
// matter. While the first request runs, a retry waits for it a little,
// then gets 409 "idempotency_in_progress".
type Idempotency struct {
	// Store is the collection that keeps the keys. Default (nil) is the
	// collection "<name>_idempotency" in the served collection's database.
	// On MongoDB, create a TTL index on its "expires" field
	// (expireAfterSeconds: 0) so old keys are removed; mongohttp also
	// ignores expired keys itself, since not every server expires
	// documents.
	Store *mongo.Collection

	// TTL is how long a key is kept. Default is DefaultIdempotencyTTL (24 h).
	TTL time.Duration

	// Disabled refuses requests with an Idempotency-Key (400) instead of
	// honouring them. Default is false.
	Disabled bool
}

// DefaultIdempotencyTTL is how long Idempotency-Key answers are kept.
const DefaultIdempotencyTTL = 24 * time.Hour

// maxIdempotencyKey bounds the header's length.
const maxIdempotencyKey = 255

func (i Idempotency) check() error {
	if i.TTL < 0 {
		return errors.New("TTL is negative")
	}
	return nil
}

func (i Idempotency) store(coll *mongo.Collection, maxTime time.Duration) *idempotency {
	if i.Disabled {
		return nil
	}
	s := &idempotency{coll: i.Store, ttl: i.TTL, lease: maxTime + 5*time.Second}
	if s.coll == nil {
		s.coll = coll.Database().Collection(coll.Name() + "_idempotency")
	}
	if s.ttl == 0 {
		s.ttl = DefaultIdempotencyTTL
	}
	return s
}

// idempotency is a key store.
type idempotency struct {
	coll  *mongo.Collection
	ttl   time.Duration
	lease time.Duration // a pending key older than this was abandoned
}

// idemRecord is a stored key.
type idemRecord struct {
	ID      string        `bson:"_id"`
	Request string        `bson:"request"` // hash of the body
	DocID   bson.ObjectID `bson:"doc_id"`  // the id the insert uses, chosen before it runs
	Done    bool          `bson:"done"`
	Status  int           `bson:"status,omitempty"`
	Header  bson.D        `bson:"header,omitempty"`
	Body    []byte        `bson:"body,omitempty"`
	Started time.Time     `bson:"started"`
	Expires time.Time     `bson:"expires"`
}

// serve runs insert once per key: the first request claims the key with a
// pending record naming the document id it will use, inserts, and records
// its answer; retries replay that answer. A claim abandoned by a crashed
// instance is taken over after the lease, and the insert is redone with the
// same document id, so it still cannot create a second document.
func (s *idempotency) serve(w http.ResponseWriter, r *http.Request, key, handler string, scope, body []byte,
	insert func(id bson.ObjectID, w http.ResponseWriter) error,
) error {
	if s == nil {
		return ErrInvalidParameter.Detailf("this resource does not accept Idempotency-Key")
	}
	if len(key) > maxIdempotencyKey {
		return ErrInvalidParameter.Detailf("Idempotency-Key is longer than %d characters", maxIdempotencyKey)
	}
	// A key is per handler (the collection and the policy) and scope (the
	// BaseFilter's result): another tenant's identical key is another key.
	// It does not depend on the spelling of the path: /posts and /pos%74s
	// are one resource. Within it, the request is the body.
	h := sha256.New()
	for _, part := range [][]byte{[]byte(handler), scope, []byte(key)} {
		h.Write([]byte(strconv.Itoa(len(part)) + ":"))
		h.Write(part)
	}
	id := h.Sum(nil)
	req := sha256.Sum256(body)
	rec := idemRecord{ID: hex.EncodeToString(id[:]), Request: hex.EncodeToString(req[:]), DocID: bson.NewObjectID()}

	ctx, cancel := context.WithTimeout(r.Context(), s.lease)
	defer cancel()
	for attempt := 0; ; attempt++ {
		now := time.Now()
		rec.Started, rec.Expires = now, now.Add(s.ttl)
		_, err := s.coll.InsertOne(ctx, rec)
		if err == nil {
			return s.run(ctx, w, rec, insert)
		}
		if !mongo.IsDuplicateKeyError(err) {
			return err
		}
		var prev idemRecord
		if err := s.coll.FindOne(ctx, bson.D{{Key: "_id", Value: rec.ID}}).Decode(&prev); err != nil {
			if errors.Is(err, mongo.ErrNoDocuments) {
				continue // removed meanwhile: claim again
			}
			return err
		}
		switch {
		case now.After(prev.Expires):
			// Expired (a server without TTL expiry keeps it): replace it.
			if _, err := s.coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: prev.ID}, {Key: "expires", Value: prev.Expires}}); err != nil {
				return err
			}
			continue
		case prev.Request != rec.Request:
			return ErrIdempotencyKeyReused.Detailf("this Idempotency-Key was used for another request; use a new key for a new request")
		case prev.Done:
			replay(w, prev)
			return nil
		case now.Sub(prev.Started) > s.lease:
			// Abandoned: take the claim over, keeping its document id.
			res, err := s.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: prev.ID}, {Key: "started", Value: prev.Started}, {Key: "done", Value: false}},
				bson.D{{Key: "$set", Value: bson.D{{Key: "started", Value: now}}}})
			if err != nil {
				return err
			}
			if res.ModifiedCount == 1 {
				prev.Started = now
				return s.run(ctx, w, prev, insert)
			}
			continue
		}
		// The first request is still running: wait for it a little.
		if attempt >= 20 {
			return ErrIdempotencyPending.Detailf("a request with this Idempotency-Key is in progress; retry later")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt+1) * 25 * time.Millisecond):
		}
	}
}

// run performs the claimed insert, records its answer and sends it.
func (s *idempotency) run(ctx context.Context, w http.ResponseWriter, rec idemRecord,
	insert func(id bson.ObjectID, w http.ResponseWriter) error,
) error {
	cw := &capture{header: http.Header{}}
	err := insert(rec.DocID, cw)
	if err != nil {
		// Release the claim so that a retry runs again.
		_, _ = s.coll.DeleteOne(context.WithoutCancel(ctx), bson.D{{Key: "_id", Value: rec.ID}, {Key: "done", Value: false}})
		return err
	}
	var hdr bson.D
	for _, k := range []string{"Content-Type", "Location", "ETag", "Preference-Applied", "Cache-Control", "X-Content-Type-Options"} {
		if v := cw.header.Get(k); v != "" {
			hdr = append(hdr, bson.E{Key: k, Value: v})
		}
	}
	_, err = s.coll.UpdateOne(context.WithoutCancel(ctx), bson.D{{Key: "_id", Value: rec.ID}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "done", Value: true}, {Key: "status", Value: cw.status},
			{Key: "header", Value: hdr}, {Key: "body", Value: cw.body.Bytes()}}}},
		options.UpdateOne())
	if err != nil {
		return err
	}
	rec.Done, rec.Status, rec.Header, rec.Body = true, cw.status, hdr, cw.body.Bytes()
	replay(w, rec)
	return nil
}

// replay writes a recorded answer.
func replay(w http.ResponseWriter, rec idemRecord) {
	h := w.Header()
	for _, e := range rec.Header {
		if v, ok := e.Value.(string); ok {
			h.Set(e.Key, v)
		}
	}
	if len(rec.Body) > 0 {
		h.Set("Content-Length", strconv.Itoa(len(rec.Body)))
	}
	w.WriteHeader(rec.Status)
	_, _ = w.Write(rec.Body)
}

// capture records an answer instead of sending it.
type capture struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (c *capture) Header() http.Header { return c.header }
func (c *capture) WriteHeader(status int) {
	if c.status == 0 {
		c.status = status
	}
}

func (c *capture) Write(p []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	return c.body.Write(p)
}
