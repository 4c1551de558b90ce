package mongohttp

import (
	"context"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
)

// Observer receives a report of every request a handler answers: for
// metrics, traces and access logs. Set one on Config (for every handler on
// the client's collections) or on Collection (for one declaration). With
// none set the handlers do no observing work at all.
//
// Both methods run on the request's goroutine and must be safe for
// concurrent use, since requests are served concurrently.
type Observer interface {
	// StartRequest is called when a handler begins, before admission and
	// before anything is written, with the fields of rep known by then
	// (Handler, Collection, Database, Route, Method, RequestID,
	// TraceParent). It returns the context the request is served under,
	// which the driver's command monitors see: a tracer puts its span
	// there. Return r.Context() to keep it. It may replace rep.TraceParent
	// with the traceparent of its own span, which the database commands
	// then carry in their comment.
	StartRequest(r *http.Request, rep *RequestReport) context.Context

	// EndRequest is called once the answer is complete, or aborted, with
	// the context StartRequest returned and rep filled in. The report is
	// the observer's to keep.
	EndRequest(ctx context.Context, rep *RequestReport)
}

// CommandObserver is an Observer that also watches the database commands,
// such as a tracer that makes a span of each. When Config.Observer is one,
// ConnectConfig installs its CommandMonitor on the client, after the one
// mongohttp uses to time connection waits and before the one in
// Config.Options, if any; the monitor's events carry the context
// StartRequest returned.
type CommandObserver interface {
	Observer
	CommandMonitor() *event.CommandMonitor
}

// RequestIDHeader is the request header whose value becomes a request's
// id when it is a plausible id (1 to 128 visible ASCII characters, no
// quotes or backslashes); otherwise mongohttp makes one. The id is in the
// log line of a failed request, in the RequestReport, in the comment of the
// database commands of an observed request, and in this header of every
// answer the package writes: successes, errors, and the 405 of Methods. An
// answer that already has the header (set by the application's middleware)
// keeps it.
const RequestIDHeader = "X-Request-Id"

// RequestReport describes one request a handler answered. Durations are
// measured from the moment the handler began; a phase the request did not
// reach is 0.
type RequestReport struct {
	// Handler is the kind of handler: "find", "findOne", "aggregate",
	// "insert", "bulkInsert", "replace", "patch" or "delete".
	Handler string
	// Collection and Database name the collection served.
	Collection, Database string
	// Route is the route the request matched: by default r.Pattern without
	// its method and host ("/users/{id}"), as http.ServeMux sets it; see
	// Collection.Route for other routers. "" when unknown.
	Route string
	// Method is the request's method.
	Method string
	// RequestID is the RequestIDHeader of the request, or one made for it.
	RequestID string
	// TraceParent is the W3C traceparent of the request's trace context
	// ("00-<trace id>-<span id>-<flags>"): the request's own header when
	// valid, or what StartRequest set. "" when there is none.
	TraceParent string

	// Status is the HTTP status of the answer; 0 when the answer was
	// aborted before its headers were sent (the connection is dropped).
	Status int
	// Code is the problem code of an error answer ("not_found",
	// "overloaded"…); "" for a success.
	Code string
	// Err is the cause of an error answer or of an abort, for logs. Its
	// message may quote the client's input; do not export it to metrics.
	Err error
	// Aborted is true when the answer was cut short once it had begun (a
	// document failed to encode, the cursor failed mid-stream): the client
	// saw a truncated body or a dropped connection.
	Aborted bool
	// Documents is, for the read handlers, the number of documents
	// written in the body; for the write handlers, the number of
	// documents the request stored or deleted (a bulk insert's count also
	// when it stopped at a failing line; 0 for an Idempotency-Key replay).
	Documents int
	// Bytes is the number of body bytes written.
	Bytes int64

	// AdmissionWait is the time spent waiting for a place under the
	// handler's and the client's Admission bounds.
	AdmissionWait time.Duration
	// PoolWait is the time the request's commands waited between being
	// issued and being sent: server selection and connection checkout. It
	// is measured only on a client made by ConnectConfig with
	// Config.Observer set (its command monitor does the timing).
	PoolWait time.Duration
	// FirstBatch is the time until the first batch of documents was in
	// hand (Find's cursor opened, FindOne's reply).
	FirstBatch time.Duration
	// DatabaseTime is the time from the first command issued to the
	// answer's documents in hand: counts, the query, the look-ahead.
	DatabaseTime time.Duration
	// EncodingTime is the time from the documents in hand to the end of
	// the answer: encoding, and for Find writing the body (and the
	// getMores of a page larger than the look-ahead).
	EncodingTime time.Duration
	// Duration is the time from the handler's start to the end of the
	// answer.
	Duration time.Duration

	// query and projection are the parsed request, for Shape; filter is
	// an Aggregation's filter, when query is nil.
	hasQuery   bool
	query      *Query
	projection bson.D
	filter     bson.D
}

// observation is the state of one observed request. It is also the
// context the request is served under, and holds the answer's writer, so
// that observing costs one allocation for all three. The command monitor
// may reach it from another goroutine (a cursor killed in the background
// after the answer), so the fields it touches are atomic.
type observation struct {
	context.Context // what StartRequest returned
	w               observedWriter

	rep      RequestReport
	observer Observer // nil when only Server-Timing is on
	timing   bool     // Server-Timing
	start    time.Time

	issued   atomic.Int64 // 1 + offset of the command issued and not yet sent; 0 for none
	poolWait atomic.Int64

	firstCommand time.Duration // offset of the first command; -1 before
	inHand       time.Duration // offset when the answer's documents were in hand; -1 before
	documents    int           // -1 until the handler reports them
	trailer      bool          // the body follows the headers: Server-Timing's enc goes in a trailer
	comment      string        // the commands' comment, built on first use
}

type observationKey struct{}

// Value finds the observation itself under observationKey, and everything
// else in the context StartRequest returned.
func (o *observation) Value(key any) any {
	if key == (observationKey{}) {
		return o
	}
	return o.Context.Value(key)
}

// observationFrom returns the request's observation, nil when it has none.
func observationFrom(ctx context.Context) *observation {
	o, _ := ctx.Value(observationKey{}).(*observation)
	return o
}

// obs returns the request's observation, nil when the handler is not
// observed: then no hook looks at the context or allocates.
func (h *handlerBase[T]) obs(r *http.Request) *observation {
	if !h.observed {
		return nil
	}
	return observationFrom(r.Context())
}

func (o *observation) since() time.Duration { return time.Since(o.start) }

// admitted marks the end of the admission wait.
func (o *observation) admitted() {
	if o != nil {
		o.rep.AdmissionWait = o.since()
	}
}

// issue marks a command about to be issued; the command monitor measures
// from here to the command's start.
func (o *observation) issue() {
	if o == nil {
		return
	}
	now := o.since()
	if o.firstCommand < 0 {
		o.firstCommand = now
	}
	o.issued.Store(int64(now) + 1)
}

// commandStarted is called by the command monitor when a command is sent.
func (o *observation) commandStarted() {
	if t := o.issued.Swap(0); t != 0 {
		o.poolWait.Add(int64(o.since()) - (t - 1))
	}
}

// firstBatch marks the first documents in hand.
func (o *observation) firstBatch() {
	if o != nil && o.rep.FirstBatch == 0 {
		o.rep.FirstBatch = o.since()
	}
}

// documentsInHand marks the answer's documents in hand: the database work
// is done and encoding starts.
func (o *observation) documentsInHand() {
	if o == nil || o.inHand >= 0 {
		return
	}
	o.inHand = o.since()
	if o.rep.FirstBatch == 0 {
		o.rep.FirstBatch = o.inHand
	}
}

// parsed records the query, for its shape: Find's query, or FindOne's
// projection (q nil).
func (o *observation) parsed(q *Query, projection bson.D) {
	if o != nil {
		o.rep.query, o.rep.projection, o.rep.hasQuery = q, projection, true
	}
}

// parsedFilter records an Aggregation's filter, for its shape.
func (o *observation) parsedFilter(filter bson.D) {
	if o != nil {
		o.rep.filter, o.rep.hasQuery = filter, true
	}
}

// answering is called just before a successful answer's headers are
// sent. It marks the documents in hand if they were not yet and, with
// Server-Timing on, sets the header: the database time and, when the body
// is already encoded (FindOne), the encoding time. Find's encoding time is
// known only after its body, so it goes in a trailer.
func (o *observation) answering(hdr http.Header, encoded bool) {
	if o == nil {
		return
	}
	o.documentsInHand()
	o.trailer = !encoded
	if !o.timing {
		return
	}
	now := o.since()
	v := appendTiming(nil, "db", o.dbTime())
	if encoded {
		v = append(v, ", "...)
		v = appendTiming(v, "enc", now-o.inHand)
	}
	hdr.Set("Server-Timing", string(v))
}

// wrote records the documents written in the body.
func (o *observation) wrote(n int) {
	if o != nil {
		o.documents = n
	}
}

// aborted records a response cut short after its headers.
func (o *observation) aborted(err error) {
	if o != nil {
		o.rep.Aborted, o.rep.Err = true, err
	}
}

// failed records the error an error answer is made from.
func (o *observation) failed(err error) {
	if o != nil && o.rep.Err == nil {
		e := AsError(err)
		o.rep.Code, o.rep.Err = e.Code, err
	}
}

func (o *observation) dbTime() time.Duration {
	if o.firstCommand < 0 || o.inHand < 0 {
		return 0
	}
	return o.inHand - o.firstCommand
}

func appendTiming(b []byte, name string, d time.Duration) []byte {
	b = append(b, name...)
	b = append(b, ";dur="...)
	return strconv.AppendFloat(b, float64(d)/float64(time.Millisecond), 'f', 2, 64)
}

func (res *Resource[T]) observe(kind string, h http.Handler) http.Handler {
	observer, timing := res.decl.Observer, res.decl.ServerTiming
	if observer == nil && !timing {
		return h
	}
	coll, db, route := res.coll.Name(), res.coll.Database().Name(), res.decl.Route
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o := &observation{
			observer: observer, timing: timing, start: time.Now(),
			firstCommand: -1, inHand: -1, documents: -1,
			rep: RequestReport{
				Handler: kind, Collection: coll, Database: db, Route: route(r), Method: r.Method,
				RequestID: requestID(r),
			},
		}
		if tp, ok := parseTraceParent(r.Header.Get("Traceparent")); ok {
			o.rep.TraceParent = tp
		}
		o.Context = r.Context()
		if observer != nil {
			o.Context = observer.StartRequest(r, &o.rep)
		}
		o.w.ResponseWriter = w
		completed := false
		defer func() {
			o.end(&o.w, !completed)
			if observer != nil {
				observer.EndRequest(o.Context, &o.rep)
			}
		}()
		h.ServeHTTP(&o.w, r.WithContext(o))
		completed = true
	})
}

// end fills in the report once the handler has returned (or panicked).
func (o *observation) end(w *observedWriter, panicked bool) {
	rep := &o.rep
	end := o.since()
	rep.Duration = end
	if panicked {
		rep.Aborted = true
	}
	rep.Status = w.status
	if rep.Status == 0 && !rep.Aborted {
		rep.Status = http.StatusOK // what net/http sends for a handler that wrote nothing
	}
	if rep.Code == "" && rep.Status >= 400 {
		rep.Code = codeForStatus(rep.Status)
	}
	rep.Bytes = w.bytes
	rep.PoolWait = time.Duration(o.poolWait.Load())
	rep.DatabaseTime = o.dbTime()
	if o.inHand >= 0 {
		rep.EncodingTime = end - o.inHand
	}
	switch {
	case o.documents >= 0:
		rep.Documents = o.documents
	case rep.Handler == "findOne" && rep.Status == http.StatusOK && rep.Method == http.MethodGet && !rep.Aborted:
		rep.Documents = 1
	}
	if o.timing && o.trailer && !rep.Aborted && w.status == http.StatusOK && rep.Method != http.MethodHead {
		// The body followed the headers: its encoding time goes in a trailer.
		w.Header().Set(http.TrailerPrefix+"Server-Timing", string(appendTiming(nil, "enc", rep.EncodingTime)))
	}
}

// codeForStatus names the problem of an error answer that did not pass
// through ErrorFunc (a 405 for a method the handler does not serve).
func codeForStatus(status int) string {
	for _, e := range []*Error{ErrMethodNotAllowed, ErrNotFound, ErrUnsupportedMediaType, ErrBodyTooLarge, ErrUnavailable, ErrTimeout, ErrInternal} {
		if e.Status == status {
			return e.Code
		}
	}
	return ""
}

// observedWriter records the status and the body bytes of an answer. It
// unwraps, so http.ResponseController still finds the flusher beneath.
type observedWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *observedWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *observedWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

func (w *observedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// observeErrors records the cause of each error answer in the request's
// observation before errorFunc answers it.
func (res *Resource[T]) observeErrors(errorFunc func(http.ResponseWriter, *http.Request, error)) func(http.ResponseWriter, *http.Request, error) {
	if res.decl.Observer == nil && !res.decl.ServerTiming {
		return errorFunc
	}
	return func(w http.ResponseWriter, r *http.Request, err error) {
		observationFrom(r.Context()).failed(err)
		errorFunc(w, r, err)
	}
}

// commandMonitor times each observed request's wait for a connection, then
// passes every event to the observer's monitor and to the user's.
func commandMonitor(observer Observer, user *event.CommandMonitor) *event.CommandMonitor {
	monitors := []*event.CommandMonitor{}
	if co, ok := observer.(CommandObserver); ok {
		if m := co.CommandMonitor(); m != nil {
			monitors = append(monitors, m)
		}
	}
	if user != nil {
		monitors = append(monitors, user)
	}
	return &event.CommandMonitor{
		Started: func(ctx context.Context, e *event.CommandStartedEvent) {
			if o := observationFrom(ctx); o != nil {
				o.commandStarted()
			}
			for _, m := range monitors {
				if m.Started != nil {
					m.Started(ctx, e)
				}
			}
		},
		Succeeded: func(ctx context.Context, e *event.CommandSucceededEvent) {
			for _, m := range monitors {
				if m.Succeeded != nil {
					m.Succeeded(ctx, e)
				}
			}
		},
		Failed: func(ctx context.Context, e *event.CommandFailedEvent) {
			for _, m := range monitors {
				if m.Failed != nil {
					m.Failed(ctx, e)
				}
			}
		},
	}
}
