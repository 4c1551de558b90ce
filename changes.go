package mongohttp

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// ChangeFeed configures the change feed of a collection (Resource.Changes)
// and the tombstones its deletes leave (see docs/changes.md for the design
// and its guarantees).
type ChangeFeed struct {
	// Poll is how often each instance reads what changed, one query for
	// all the subscribers of a collection's feeds (two when deletes left
	// tombstones). Default is DefaultChangePoll (500 ms).
	Poll time.Duration

	// Overlap is how far back every read of the changes reaches before the
	// last one, and how far before its token a resumed feed starts again:
	// the versions of writes made by different instances (or still in
	// flight) are not ordered within it. It must exceed the longest write
	// (the writers' MaxTime) plus the skew between the instances' clocks.
	// Events in it may be delivered twice. Default is DefaultChangeOverlap
	// (30 s).
	Overlap time.Duration

	// Retention is how long tombstones are kept, and so how old a resume
	// token may be: an older one is answered 410 "resume_expired" and the
	// client starts again with since=0. Tombstones older than this are
	// deleted by the deletes themselves, at most once a minute per
	// instance. Default is DefaultChangeRetention (24 h).
	Retention time.Duration

	// Heartbeat is how often an idle stream gets a comment and a fresh
	// resume token, so that proxies keep it open and a client resumes
	// from a recent point. Default is DefaultChangeHeartbeat (15 s).
	Heartbeat time.Duration

	// WriteTimeout bounds each write to a stream: a client that stops
	// reading for this long is cut, and resumes from its last token.
	// Default is DefaultChangeWriteTimeout (10 s).
	WriteTimeout time.Duration

	// MaxQueue is how many batches of changes may wait for a slow
	// subscriber; past it the subscriber is cut. Default is 64.
	MaxQueue int

	// MaxSubscribers bounds the open streams of one handler made by
	// Changes; past it a new stream is answered 503 "overloaded". Default
	// is DefaultMaxSubscribers (1000).
	MaxSubscribers int

	// Tombstones is the collection in which Delete records what it
	// deleted, for the feeds. Default (nil) is "<name>_changes" in the
	// served collection's database.
	Tombstones *mongo.Collection
}

// The defaults of ChangeFeed.
const (
	DefaultChangePoll         = 500 * time.Millisecond
	DefaultChangeOverlap      = 30 * time.Second
	DefaultChangeRetention    = 24 * time.Hour
	DefaultChangeHeartbeat    = 15 * time.Second
	DefaultChangeWriteTimeout = 10 * time.Second
	DefaultMaxSubscribers     = 1000
	defaultChangeQueue        = 64
)

// EventStream is the media type of Server-Sent Events.
const EventStream = "text/event-stream"

func (c *ChangeFeed) withDefaults() error {
	if c.Poll < 0 || c.Overlap < 0 || c.Retention < 0 || c.Heartbeat < 0 || c.WriteTimeout < 0 || c.MaxQueue < 0 || c.MaxSubscribers < 0 {
		return errors.New("no field may be negative")
	}
	setDefault(&c.Poll, DefaultChangePoll)
	setDefault(&c.Overlap, DefaultChangeOverlap)
	setDefault(&c.Retention, DefaultChangeRetention)
	setDefault(&c.Heartbeat, DefaultChangeHeartbeat)
	setDefault(&c.WriteTimeout, DefaultChangeWriteTimeout)
	setDefault(&c.MaxQueue, defaultChangeQueue)
	setDefault(&c.MaxSubscribers, DefaultMaxSubscribers)
	if c.Retention <= c.Overlap {
		return fmt.Errorf("the retention (%s) must be longer than the overlap (%s)", c.Retention, c.Overlap)
	}
	return nil
}

// setDefault sets a zero *v to d.
func setDefault[V comparable](v *V, d V) {
	var zero V
	if *v == zero {
		*v = d
	}
}

// Feed is the handler Resource.Changes makes: an http.Handler that serves
// the collection's change feed, and ends its open streams on Close or when
// the http.Server serving them shuts down.
type Feed struct {
	h      http.Handler
	state  *feedState
	closed chan struct{}
	once   sync.Once
}

func (f *Feed) ServeHTTP(w http.ResponseWriter, r *http.Request) { f.h.ServeHTTP(w, r) }

// Close ends every open stream of the feed at once (each client resumes
// elsewhere with its last token) and answers new requests 503. It is safe
// to call more than once. http.Server.Shutdown ends the streams it serves
// without it.
func (f *Feed) Close() { f.once.Do(func() { close(f.closed) }) }

// feedState is what the per-policy handlers of one Feed share: the count of
// open streams and the shutdown signals of the servers they run on.
type feedState struct {
	closed  chan struct{}
	mu      sync.Mutex
	open    int
	servers map[*http.Server]chan struct{}
}

// enter counts a stream in, and returns the channel closed when the server
// serving r shuts down (nil when r carries no server).
func (s *feedState) enter(r *http.Request, max int) (<-chan struct{}, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.closed:
		return nil, ErrUnavailable.Detailf("this feed is closed")
	default:
	}
	if s.open >= max {
		return nil, ErrOverloaded.Detailf("this feed has %d open streams, its maximum", max)
	}
	s.open++
	srv, _ := r.Context().Value(http.ServerContextKey).(*http.Server)
	if srv == nil {
		return nil, nil
	}
	ch, ok := s.servers[srv]
	if !ok {
		ch = make(chan struct{})
		s.servers[srv] = ch
		srv.RegisterOnShutdown(func() { close(ch) })
	}
	return ch, nil
}

func (s *feedState) leave() {
	s.mu.Lock()
	s.open--
	s.mu.Unlock()
}

// Changes returns the collection's change feed: a handler that answers GET
// with the changes of the documents a request may see, under the same
// policy, BaseFilter and query language as Find (filters and fields=; no
// sort, limit, skip, after, count or embed).
//
// With Accept: text/event-stream it streams Server-Sent Events: "change",
// whose data is the document as FindOne serves it under the request's
// policy, and "remove", whose data is {"_id": …}, for a document deleted
// or no longer matching the request's scope or filter. Every event has an
// id, a signed resume token; Last-Event-ID (as EventSource sends it on
// reconnection) or ?since=TOKEN resumes after it, ?since=0 starts with
// every current document, and neither starts from now. Idle streams get a
// heartbeat, with a fresh token, every ChangeFeed.Heartbeat.
//
// Any other Accept header gets the pull form: the changes since ?since=
// (every document for since=0, none without since) as JSON,
// {"changes":[{"event":…,"data":…},…],"next":TOKEN}, or as NDJSON when
// preferred, one event a line and {"next":TOKEN} last.
//
// Delivery is at least once, in an order in which a client applying the
// events converges on the database; a token that is damaged or made for
// another feed is 400 "invalid_resume_token", one older than
// ChangeFeed.Retention 410 "resume_expired". docs/changes.md says what is
// and is not seen.
//
// Changes panics when the declaration has no Collection.Changes: deletes
// made through a declaration without one leave no tombstone, so its feed
// could not see them.
func (r *Resource[T]) Changes() *Feed {
	if r.decl.Changes == nil {
		panic(fmt.Sprintf("mongohttp: Changes on collection %q, whose declaration has no Changes: set Collection.Changes (&mongohttp.ChangeFeed{} for the defaults) so that its deletes leave the tombstones a feed reads", r.decl.Coll.Name()))
	}
	f := &Feed{closed: make(chan struct{})}
	f.state = &feedState{closed: f.closed, servers: map[*http.Server]chan struct{}{}}
	f.h = describedBy(r.perPolicy(func(b *handlerBase[T]) http.Handler {
		return &feedHandler[T]{handlerBase: b, res: r, state: f.state, limit: r.decl.Admission.limiter(),
			policy: r.policyName(b)}
	}), r.describeChanges)
	return f
}

// policyName is the name under which b serves.
func (r *Resource[T]) policyName(b *handlerBase[T]) string {
	for name, x := range r.bases {
		if x == b {
			return name
		}
	}
	return ""
}

// idKey is a map key for a document id.
func idKey(v bson.RawValue) string {
	return string(rune(v.Type)) + string(v.Value)
}
