package mongohttp

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// This file holds the tailer: one goroutine per collection and instance
// that reads what changed, with one query per poll for all the feeds'
// subscribers, and hands each subscriber the changed documents as its own
// filter, scope and projection see them, one query per group of
// subscribers that see alike, per poll that found changes.

// tailerConfig says what a tailer reads and how often.
type tailerConfig struct {
	coll, tombs   *mongo.Collection // tombs is nil without tombstones
	version       string
	poll, overlap time.Duration
	maxTime       time.Duration
	logger        *slog.Logger
}

func (c tailerConfig) key() string {
	k := fmt.Sprintf("%s.%s|%s|%s|%s", c.coll.Database().Name(), c.coll.Name(), c.version, c.poll, c.overlap)
	if c.tombs != nil {
		k += "|" + c.tombs.Database().Name() + "." + c.tombs.Name()
	}
	return k
}

// A hint says that a document may have changed: a version of it (or a
// tombstone naming it) made at or after the time read.
type hint struct {
	id   bson.RawValue
	key  string // tells the hint apart from every other: id and version, or the tombstone's id
	tomb bool
}

// readHints reads every version made since from, and every tombstone.
func (c tailerConfig) readHints(ctx context.Context, from time.Time) ([]hint, error) {
	since := bson.NewObjectIDFromTimestamp(from)
	var hints []hint
	proj := options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}, {Key: c.version, Value: 1}})
	cur, err := c.coll.Find(ctx, bson.D{{Key: c.version, Value: bson.D{{Key: "$gte", Value: since}}}}, proj)
	if err != nil {
		return nil, err
	}
	for cur.Next(ctx) {
		id := cur.Current.Lookup("_id")
		v := cur.Current.Lookup(c.version)
		hints = append(hints, hint{id: cloneValue(id), key: "d" + idKey(id) + string(v.Value)})
	}
	err = cur.Err()
	_ = cur.Close(context.WithoutCancel(ctx))
	if err != nil || c.tombs == nil {
		return hints, err
	}
	cur, err = c.tombs.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$gte", Value: since}}}})
	if err != nil {
		return nil, err
	}
	for cur.Next(ctx) {
		id := cur.Current.Lookup("doc")
		hints = append(hints, hint{id: cloneValue(id), key: "t" + string(cur.Current.Lookup("_id").Value), tomb: true})
	}
	err = cur.Err()
	_ = cur.Close(context.WithoutCancel(ctx))
	return hints, err
}

func cloneValue(v bson.RawValue) bson.RawValue {
	return bson.RawValue{Type: v.Type, Value: append([]byte(nil), v.Value...)}
}

// settle turns hints into the ids to report, once each, skipping the hints
// seen reports as reported, and returns the keys of the hints that are
// settled. A tombstone whose document still exists is not settled: the
// delete may still be on its way, and the tombstone is looked at again
// next time (a document that exists is reported by its own version).
func (c tailerConfig) settle(ctx context.Context, hints []hint, seen map[string]bool) (ids []bson.RawValue, settled []string, err error) {
	in := map[string]bool{}
	var tombs []hint
	for _, h := range hints {
		if seen[h.key] {
			continue
		}
		if h.tomb {
			tombs = append(tombs, h)
			continue
		}
		settled = append(settled, h.key)
		if k := idKey(h.id); !in[k] {
			in[k] = true
			ids = append(ids, h.id)
		}
	}
	if len(tombs) == 0 {
		return ids, settled, nil
	}
	exists := map[string]bool{}
	for rest := tombs; len(rest) > 0; {
		chunk := rest[:min(len(rest), maxStatesPerQuery)]
		rest = rest[len(chunk):]
		list := make(bson.A, len(chunk))
		for i, h := range chunk {
			list[i] = h.id
		}
		qctx, cancel := context.WithTimeout(ctx, c.maxTime)
		cur, err := c.coll.Find(qctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: list}}}},
			options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
		if err != nil {
			cancel()
			return nil, nil, err
		}
		for cur.Next(qctx) {
			exists[idKey(cur.Current.Lookup("_id"))] = true
		}
		err = cur.Err()
		_ = cur.Close(context.WithoutCancel(qctx))
		cancel()
		if err != nil {
			return nil, nil, err
		}
	}
	for _, h := range tombs {
		k := idKey(h.id)
		if exists[k] {
			continue
		}
		settled = append(settled, h.key)
		if !in[k] {
			in[k] = true
			ids = append(ids, h.id)
		}
	}
	return ids, settled, nil
}

// feedQuery is what the tailer needs of a subscription.
type feedQuery interface {
	// groupKey is the same for subscriptions that see the same documents
	// the same way, and "" for one that shares with none.
	groupKey() string
	states(ctx context.Context, ids []bson.RawValue) (map[string]bson.Raw, error)
}

// subscriber is one open stream, as the tailer holds it.
type subscriber struct {
	q       feedQuery
	queue   chan feedBatch
	cut     chan struct{}
	cutOnce sync.Once
}

// feedBatch is what one poll found for one subscriber: the ids that
// changed, in order, and their states in the subscriber's view.
type feedBatch struct {
	at     time.Time
	ids    []bson.RawValue
	states map[string]bson.Raw
	cache  *renderCache // shared by the group; nil for none
}

// tailer polls one collection for the feeds of one instance.
type tailer struct {
	cfg   tailerConfig
	reg   *tailers
	refs  int // under reg.mu
	stop  chan struct{}
	ready chan struct{}

	mu   sync.Mutex
	subs map[*subscriber]struct{}

	last atomic.Int64 // Unix ms of the last poll whose batches are all queued
	seen map[string]time.Time
	prev time.Time // the start of the last poll
}

// tailers are the running tailers of one Client's feeds, by what they
// read: the feeds of one collection share one, whichever handlers,
// declarations or policies serve them.
type tailers struct {
	mu sync.Mutex
	m  map[string]*tailer
}

// acquire returns the running tailer of cfg in reg, starting it if
// needed, once it has read the changes a first time. Release it with
// release.
func (reg *tailers) acquire(ctx context.Context, cfg tailerConfig) (*tailer, error) {
	key := cfg.key()
	reg.mu.Lock()
	t := reg.m[key]
	if t == nil {
		t = &tailer{cfg: cfg, reg: reg, stop: make(chan struct{}), ready: make(chan struct{}),
			subs: map[*subscriber]struct{}{}, seen: map[string]time.Time{}}
		if reg.m == nil {
			reg.m = map[string]*tailer{}
		}
		reg.m[key] = t
		go t.run()
	}
	t.refs++
	reg.mu.Unlock()
	wait, cancel := context.WithTimeout(ctx, cfg.maxTime)
	defer cancel()
	select {
	case <-t.ready:
		return t, nil
	case <-wait.Done():
		t.release()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, ErrUnavailable.Detailf("the change feed could not read the database")
	}
}

// release gives back what acquire took; the last one stops it.
func (t *tailer) release() {
	key := t.cfg.key()
	reg := t.reg
	reg.mu.Lock()
	defer reg.mu.Unlock()
	t.refs--
	if t.refs == 0 {
		if reg.m[key] == t {
			delete(reg.m, key)
		}
		close(t.stop)
	}
}

// subscribe adds q; unsubscribe removes it and releases the tailer.
func (t *tailer) subscribe(q feedQuery, queue int) *subscriber {
	s := &subscriber{q: q, queue: make(chan feedBatch, queue), cut: make(chan struct{})}
	t.mu.Lock()
	t.subs[s] = struct{}{}
	t.mu.Unlock()
	return s
}

func (t *tailer) unsubscribe(s *subscriber) {
	t.mu.Lock()
	delete(t.subs, s)
	t.mu.Unlock()
	t.release()
}

// cutOff drops s: it fell behind or its view could not be read, and its
// client resumes from its last token.
func (t *tailer) cutOff(s *subscriber) {
	t.mu.Lock()
	delete(t.subs, s)
	t.mu.Unlock()
	s.cutOnce.Do(func() { close(s.cut) })
}

// polled is the start of the last poll whose batches are all queued.
func (t *tailer) polled() time.Time { return time.UnixMilli(t.last.Load()) }

func (t *tailer) run() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-t.stop
		cancel()
	}()
	// The first read only learns what is there: subscribers come after it.
	for {
		if err := t.poll(ctx, false); err == nil {
			break
		} else if ctx.Err() != nil {
			return
		} else {
			t.cfg.logger.LogAttrs(ctx, slog.LevelWarn, "mongohttp: change feed: reading the changes failed", slog.Any("error", err))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(t.cfg.poll):
		}
	}
	close(t.ready)
	tick := time.NewTicker(t.cfg.poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if err := t.poll(ctx, true); err != nil && ctx.Err() == nil {
			t.cfg.logger.LogAttrs(ctx, slog.LevelWarn, "mongohttp: change feed: reading the changes failed", slog.Any("error", err))
		}
	}
}

// poll reads the changes since the previous poll, less the overlap, and
// hands the new ones to the subscribers when deliver is set.
func (t *tailer) poll(ctx context.Context, deliver bool) error {
	start := time.Now()
	from := start.Add(-t.cfg.overlap)
	if !t.prev.IsZero() {
		from = t.prev.Add(-t.cfg.overlap)
	}
	qctx, cancel := context.WithTimeout(ctx, t.cfg.maxTime)
	hints, err := t.cfg.readHints(qctx, from)
	cancel()
	if err != nil {
		return err
	}
	seen := make(map[string]bool, len(t.seen))
	for k := range t.seen {
		seen[k] = true
	}
	ids, settled, err := t.cfg.settle(ctx, hints, seen)
	if err != nil {
		return err
	}
	if deliver && len(ids) > 0 {
		t.fanOut(ctx, start, ids)
	}
	for _, k := range settled {
		t.seen[k] = start
	}
	// A hint is read again while its version is inside the window; one
	// settled before the window's start (a second early, for ObjectIDs'
	// whole seconds) cannot come back.
	for k, at := range t.seen {
		if at.Before(from.Add(-t.cfg.overlap - time.Second)) {
			delete(t.seen, k)
		}
	}
	t.prev = start
	t.last.Store(start.UnixMilli())
	return nil
}

// fanOut queues the states of ids for every subscriber, reading them once
// per group. A subscriber whose queue is full, or whose view could not be
// read, is cut: it resumes from its token and loses nothing.
func (t *tailer) fanOut(ctx context.Context, at time.Time, ids []bson.RawValue) {
	t.mu.Lock()
	subs := make([]*subscriber, 0, len(t.subs))
	for s := range t.subs {
		subs = append(subs, s)
	}
	t.mu.Unlock()
	type result struct {
		states map[string]bson.Raw
		cache  *renderCache
		err    error
	}
	groups := map[string]*result{}
	for _, s := range subs {
		key := s.q.groupKey()
		res := groups[key]
		if res == nil || key == "" {
			states, err := s.q.states(ctx, ids)
			res = &result{states: states, err: err}
			if key != "" {
				res.cache = &renderCache{events: map[string]feedEvent{}}
				groups[key] = res
			}
		}
		if res.err != nil {
			if ctx.Err() == nil {
				t.cfg.logger.LogAttrs(ctx, slog.LevelWarn, "mongohttp: change feed: reading a subscriber's view failed", slog.Any("error", res.err))
			}
			t.cutOff(s)
			continue
		}
		select {
		case s.queue <- feedBatch{at: at, ids: ids, states: res.states, cache: res.cache}:
		default:
			t.cutOff(s)
		}
	}
}

// batchEvent is the event of id in b for s, rendered once per group.
func batchEvent[T any](b feedBatch, s *subscription[T], id bson.RawValue) (feedEvent, error) {
	k := idKey(id)
	if b.cache == nil {
		return s.event(id, b.states[k])
	}
	b.cache.mu.Lock()
	defer b.cache.mu.Unlock()
	if ev, ok := b.cache.events[k]; ok {
		return ev, nil
	}
	ev, err := s.event(id, b.states[k])
	if err == nil {
		b.cache.events[k] = ev
	}
	return ev, err
}

func (s *subscription[T]) groupKey() string { return s.group }
