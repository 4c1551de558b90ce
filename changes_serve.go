package mongohttp

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// feedHandler serves a collection's change feed under one policy.
type feedHandler[T any] struct {
	*handlerBase[T]
	res    *Resource[T]
	state  *feedState
	limit  *limiter
	policy string
}

// subscription is one request's view of the feed: its filter and
// projection, the token binding, and how it turns documents into events.
type subscription[T any] struct {
	h          *feedHandler[T]
	r          *http.Request
	filter     bson.D // base filter and client filter
	projection bson.D
	binding    feedBinding
	group      string // requests with the same group see the same documents the same way
}

// feedParams are the parameters of a feed request.
type feedParams struct {
	filter, projection bson.D
	since              string
	hasSince           bool
}

// parseFeed reads a feed's query string: Find's filters and fields=, and
// since=; the parameters of paging have no meaning on a feed and are
// refused.
func (qp *QueryParser) parseFeed(rawQuery string) (feedParams, error) {
	var out feedParams
	p := parseState{qp: qp, limit: 1}
	err := qp.scan(rawQuery, func(key, val string) error {
		switch key {
		case "since":
			out.since, out.hasSince = val, true
			return checkText(key, val)
		case "sort", "limit", "skip", "after", "count", "embed":
			return ErrInvalidParameter.Detailf("%s has no meaning on a change feed", key)
		}
		return p.param(key, val)
	})
	if err != nil {
		return out, err
	}
	q, err := p.finish()
	if err != nil {
		return out, err
	}
	out.filter = q.CountFilter
	out.projection, err = qp.projection(p.fields, p.hasFields, nil)
	return out, err
}

func (h *feedHandler[T]) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setRequestID(w, r)
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		WriteError(w, r, ErrMethodNotAllowed.Detailf("method %s is not allowed; use GET", clip(r.Method)))
		return
	}
	if err := h.serve(w, r); err != nil {
		h.errorFunc(w, r, err)
	}
}

func (h *feedHandler[T]) serve(w http.ResponseWriter, r *http.Request) error {
	cfg := h.res.decl.Changes
	params, err := h.parser.parseFeed(r.URL.RawQuery)
	if err != nil {
		return err
	}
	since, hasSince := params.since, params.hasSince
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		// EventSource reconnects to the same URL with the last id it saw:
		// that is where the stream stopped, whatever since= said.
		since, hasSince = id, true
	}
	if hasSince && since != "0" && !tokenShaped(since) {
		return errTokenInvalid()
	}
	// The setup (the base filter, a snapshot or a catch-up) is database
	// work and takes a place in the limiters; the stream that follows
	// only waits, and does not.
	client := h.clientLimit
	if err := admit(r.Context(), h.limit, client); err != nil {
		return err
	}
	admitted := true
	defer func() {
		if admitted {
			leave(h.limit, client)
		}
	}()
	base, err := h.base(r)
	if err != nil {
		return err
	}
	sub, err := h.subscription(r, base, params)
	if err != nil {
		return err
	}
	now := time.Now()
	var from changeToken
	snapshot := false
	switch {
	case !hasSince:
	case since == "0":
		snapshot = true
	default:
		if from, err = sub.binding.read(since, now, cfg.Retention); err != nil {
			return err
		}
		snapshot = from.hasAnchor()
	}
	if !acceptsEventStream(r.Header) {
		return sub.pull(w, hasSince, snapshot, from, now)
	}
	stop, err := h.state.enter(r, cfg.MaxSubscribers)
	if err != nil {
		return err
	}
	defer h.state.leave()
	t, err := h.res.decl.Client.feeds.acquire(r.Context(), h.tailerConfig())
	if err != nil {
		return err
	}
	s := t.subscribe(sub, cfg.MaxQueue)
	defer t.unsubscribe(s)
	// Everything that becomes visible from here on reaches s through the
	// tailer; what came before is the snapshot's or the catch-up's.
	stream := newEventStream(w, r, cfg.WriteTimeout)
	if err := stream.start(); err != nil {
		return nil
	}
	mark := time.Now() // from now: everything visible later reaches s
	if hasSince {
		if mark, err = sub.history(stream, snapshot, from, now); err != nil {
			stream.abort(h.logger, err)
			return nil
		}
	}
	leave(h.limit, client)
	admitted = false
	sub.live(stream, s, t, mark, stop, h.state.closed)
	return nil
}

// subscription builds the request's view of the feed.
func (h *feedHandler[T]) subscription(r *http.Request, base bson.D, p feedParams) (*subscription[T], error) {
	sub := &subscription[T]{h: h, r: r, filter: and(base, p.filter), projection: p.projection}
	b := &sub.binding
	b.key, b.scope, b.policy = h.parser.key, h.parser.scope, h.policy
	var err error
	if b.base, err = digestOf(base); err != nil {
		return nil, err
	}
	if b.filter, err = digestOf(p.filter); err != nil {
		return nil, err
	}
	if b.fields, err = digestOf(p.projection); err != nil {
		return nil, err
	}
	// A Transform may read the request, so only requests without one share
	// their rendering.
	if h.transform == nil {
		sub.group = fmt.Sprintf("%p\x00", h.handlerBase) + string(b.base) + string(b.filter) + string(b.fields)
	}
	return sub, nil
}

// tailerConfig names the tailer this handler's feed shares.
func (h *feedHandler[T]) tailerConfig() tailerConfig {
	cfg := h.res.decl.Changes
	return tailerConfig{
		coll: h.coll, tombs: h.res.writes.tombs.collection(), version: h.version,
		poll: cfg.Poll, overlap: cfg.Overlap, maxTime: h.maxTime, logger: h.logger,
	}
}

// acceptsEventStream reports whether the client asks for Server-Sent
// Events.
func acceptsEventStream(h http.Header) bool {
	for _, v := range h.Values("Accept") {
		for part := range strings.SplitSeq(v, ",") {
			mediaRange, params, _ := strings.Cut(part, ";")
			if strings.EqualFold(strings.TrimSpace(mediaRange), EventStream) {
				if q, ok := acceptQuality(params); ok && q > 0 {
					return true
				}
			}
		}
	}
	return false
}

// states reads the current state, under the subscription's filter and
// projection, of the documents ids name; an id without a state has left
// the view (or never was in it).
func (s *subscription[T]) states(ctx context.Context, ids []bson.RawValue) (map[string]bson.Raw, error) {
	out := make(map[string]bson.Raw, len(ids))
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), maxStatesPerQuery)]
		ids = ids[len(chunk):]
		in := make(bson.A, len(chunk))
		for i, id := range chunk {
			in[i] = id
		}
		filter := and(s.filter, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: in}}}})
		if err := s.h.findEach(ctx, filter, s.projection, nil, func(doc bson.Raw) error {
			out[idKey(doc.Lookup("_id"))] = doc
			return nil
		}); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// maxStatesPerQuery bounds the ids of one $in.
const maxStatesPerQuery = 500

// findEach runs a find under the handler's time limit and hands each
// document to fn.
func (h *feedHandler[T]) findEach(ctx context.Context, filter, projection, sort bson.D, fn func(bson.Raw) error) error {
	ctx, cancel := context.WithTimeout(ctx, h.maxTime)
	defer cancel()
	opts := options.Find()
	if len(projection) > 0 {
		opts.SetProjection(projection)
	}
	if len(sort) > 0 {
		opts.SetSort(sort)
	}
	cur, err := h.coll.Find(ctx, filter, opts)
	if err != nil {
		return err
	}
	defer closeInBackground(ctx, cur)
	for cur.Next(ctx) {
		if err := fn(cur.Current); err != nil {
			return err
		}
	}
	return cur.Err()
}

// event renders one change of the document id: its state, or its removal
// when it has none.
func (s *subscription[T]) event(id bson.RawValue, doc bson.Raw) (feedEvent, error) {
	if doc == nil {
		data, err := bson.Marshal(bson.D{{Key: "_id", Value: id}})
		if err != nil {
			return feedEvent{}, err
		}
		body, err := s.h.enc.AppendDocument(nil, data)
		return feedEvent{kind: "remove", data: body}, err
	}
	body, _, err := s.h.render(s.r, doc)
	if err != nil {
		return feedEvent{}, err
	}
	return feedEvent{kind: "change", data: body[:len(body)-1]}, nil
}

// feedEvent is an event ready to write.
type feedEvent struct {
	kind string // "change" or "remove"
	data []byte // JSON, one line
}

// history sends what a resumed or since=0 stream missed: the rest of a
// snapshot, then the changes since the token. It returns the watermark
// the stream has reached.
func (s *subscription[T]) history(out eventSink, snapshot bool, from changeToken, now time.Time) (time.Time, error) {
	mark := now
	if snapshot {
		w := now
		if from.hasAnchor() {
			w = from.at()
		}
		if err := s.snapshot(out, w, from.Anchor); err != nil {
			return mark, err
		}
		if !from.hasAnchor() {
			return now, nil // a whole snapshot taken after now has every change before it
		}
	}
	if err := s.catchUp(out, from.at(), now); err != nil {
		return mark, err
	}
	return now, nil
}

// snapshot sends every document in view as a change, in _id order, from
// after anchor (the start for none); each event's token continues the
// snapshot after it.
func (s *subscription[T]) snapshot(out eventSink, w time.Time, anchor bson.RawValue) error {
	filter := s.filter
	if anchor.Type != 0 {
		filter = and(filter, keyset(bson.D{{Key: "_id", Value: int32(1)}}, []bson.RawValue{anchor}))
	}
	// Like a Find, the whole snapshot is bounded by MaxTime.
	return s.h.findEach(s.r.Context(), filter, s.projection, bson.D{{Key: "_id", Value: int32(1)}}, func(doc bson.Raw) error {
		id := doc.Lookup("_id")
		ev, err := s.event(id, doc)
		if err != nil {
			return err
		}
		tok, err := s.binding.sign(changeToken{W: w.UnixMilli(), Anchor: id})
		if err != nil {
			return err
		}
		return out.send(ev, tok)
	})
}

// catchUp sends the current state of every document changed or deleted
// since the watermark w (minus the overlap), up to now.
func (s *subscription[T]) catchUp(out eventSink, w, now time.Time) error {
	cfg := s.h.res.decl.Changes
	tc := s.h.tailerConfig()
	ctx, cancel := context.WithTimeout(s.r.Context(), s.h.maxTime)
	hints, err := tc.readHints(ctx, w.Add(-cfg.Overlap))
	cancel()
	if err != nil {
		return err
	}
	ids, _, err := tc.settle(s.r.Context(), hints, nil)
	if err != nil {
		return err
	}
	tok, err := s.binding.sign(changeToken{W: w.UnixMilli()})
	if err != nil {
		return err
	}
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), maxStatesPerQuery)]
		ids = ids[len(chunk):]
		states, err := s.states(s.r.Context(), chunk)
		if err != nil {
			return err
		}
		for _, id := range chunk {
			ev, err := s.event(id, states[idKey(id)])
			if err != nil {
				return err
			}
			if err := out.send(ev, tok); err != nil {
				return err
			}
		}
	}
	return nil
}

// live follows the tailer until the client leaves, the stream fails, the
// tailer cuts the subscriber, or the feed or server closes.
func (s *subscription[T]) live(stream *eventStream, sub *subscriber, t *tailer, mark time.Time, stop, closed <-chan struct{}) {
	cfg := s.h.res.decl.Changes
	tokenAt := func(at time.Time) (string, error) { return s.binding.sign(changeToken{W: at.UnixMilli()}) }
	tok, err := tokenAt(mark)
	if err != nil {
		stream.abort(s.h.logger, err)
		return
	}
	if err := stream.mark(tok); err != nil {
		return
	}
	// advance moves the stream's token to at, when that is later.
	advance := func(at time.Time) bool {
		if !at.After(mark) {
			return true
		}
		mark = at
		if tok, err = tokenAt(mark); err != nil {
			stream.abort(s.h.logger, err)
			return false
		}
		return true
	}
	heartbeat := time.NewTicker(cfg.Heartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case b := <-sub.queue:
			for _, id := range b.ids {
				ev, err := batchEvent(b, s, id)
				if err != nil {
					stream.abort(s.h.logger, err)
					return
				}
				if err := stream.send(ev, tok); err != nil {
					return
				}
			}
			if !advance(b.at) {
				return
			}
			if err := stream.mark(tok); err != nil {
				return
			}
		case <-heartbeat.C:
			// A subscriber the tailer cut missed a batch: its token must
			// not move past it (select picks among ready cases at random).
			select {
			case <-sub.cut:
				return
			default:
			}
			// Every batch of a poll is queued before the poll's time is
			// published: with an empty queue, the stream has all of them.
			if len(sub.queue) == 0 && !advance(t.polled()) {
				return
			}
			if err := stream.heartbeat(tok); err != nil {
				return
			}
		case <-sub.cut:
			return
		case <-s.r.Context().Done():
			return
		case <-stop:
			return
		case <-closed:
			return
		}
	}
}

// pull answers the pull form: the changes since the token, and the token
// to continue from.
func (s *subscription[T]) pull(w http.ResponseWriter, hasSince, snapshot bool, from changeToken, now time.Time) error {
	next, err := s.binding.sign(changeToken{W: now.UnixMilli()})
	if err != nil {
		return err
	}
	out := newPullWriter(w, s.r, s.h.res.decl.Changes.WriteTimeout)
	if hasSince {
		if _, err := s.history(out, snapshot, from, now); err != nil {
			if !out.started {
				return err
			}
			s.h.abort(s.r, err)
		}
	}
	return out.finish(next)
}

// renderCache shares the events of one batch among the subscriptions of a
// group.
type renderCache struct {
	mu     sync.Mutex
	events map[string]feedEvent
}
