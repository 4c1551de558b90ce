// Package otelmongohttp reports mongohttp's requests to OpenTelemetry:
// a span per request, a child span per database command, and metrics
// under the OpenTelemetry semantic conventions, which Prometheus can
// scrape.
//
//	obs, err := otelmongohttp.New(otelmongohttp.Config{TracerProvider: tp, MeterProvider: mp})
//	client, err := mongohttp.ConnectConfig(ctx, mongohttp.Config{URI: uri, Observer: obs})
//	_, err = obs.ObservePool(client, "main")
//
// Spans: each request a mongohttp handler answers gets a server span named
// after its method and route ("GET /users/{id}"), which continues the
// trace of an incoming W3C traceparent header; under a server span of the
// same process (otelhttp's), it is an internal span nested under that one
// instead. Each database command the request sends gets a client span
// below it ("find users"). Spans never hold the query's values: not the
// query string, not the command, not the path (which holds ids); the
// query's shape is there instead.
//
// Under a batching span processor (sdktrace.WithBatcher), set
// Config.BatchEnds: the Observer then hands finished spans over in batches,
// which saves the processor a wake-up per span; call ForceFlush before the
// TracerProvider's Shutdown.
//
// Metrics: http.server.request.duration (with http.route,
// http.request.method, http.response.status_code, url.scheme, error.type
// for 5xx, and mongohttp.problem.code for error answers),
// db.client.operation.duration (db.system.name mongodb,
// db.operation.name, db.collection.name, db.namespace), and, for pools
// registered with ObservePool, db.client.connection.count by state (idle,
// used) and db.client.connection.pending_requests.
package otelmongohttp

import (
	"context"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/mongohttp/mongohttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/semconv/v1.43.0/dbconv"
	"go.opentelemetry.io/otel/semconv/v1.43.0/httpconv"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of the spans and metrics.
const ScopeName = "github.com/mongohttp/mongohttp/otelmongohttp"

// Attributes of mongohttp's own, next to the semantic conventions'.
const (
	// ProblemCodeKey is the problem code of an error answer ("not_found").
	ProblemCodeKey = attribute.Key("mongohttp.problem.code")
	// RequestIDKey is the request's id (see mongohttp.RequestIDHeader).
	RequestIDKey = attribute.Key("mongohttp.request_id")
	// QueryShapeKey is the query's shape, without values
	// (mongohttp.QueryShape.String).
	QueryShapeKey = attribute.Key("mongohttp.query.shape")
	// DocumentsKey is the number of documents in the answer.
	DocumentsKey = attribute.Key("mongohttp.documents")
	// The waits of the request, in seconds, when it waited (see
	// mongohttp.RequestReport). The database's own time, the first
	// batch's included, is in the commands' spans.
	AdmissionWaitKey = attribute.Key("mongohttp.admission.wait")
	PoolWaitKey      = attribute.Key("mongohttp.pool.wait")
	// AbortedKey is true for an answer cut short after its headers.
	AbortedKey = attribute.Key("mongohttp.aborted")
)

// Config configures New. Every field is optional.
type Config struct {
	// TracerProvider makes the spans. Default is otel.GetTracerProvider().
	TracerProvider trace.TracerProvider

	// MeterProvider makes the instruments. Default is
	// otel.GetMeterProvider().
	MeterProvider metric.MeterProvider

	// Propagator reads the trace context of incoming requests that no
	// instrumentation of the process has read yet. Default is
	// propagation.TraceContext{}: the W3C traceparent and tracestate
	// headers.
	Propagator propagation.TextMapPropagator

	// BatchEnds, when above zero, makes the Observer end the spans of
	// finished requests in batches, each at its true end time: a span is
	// held until BatchEnds has passed since the first of its batch, or
	// until 256 are waiting. A batching span processor (sdktrace.WithBatcher)
	// wakes its goroutine for each span it is handed while idle, which
	// can cost a service waiting on its database more than the spans;
	// handed a batch, it wakes once. Processors see the spans up to
	// BatchEnds late, so call ForceFlush before the TracerProvider's
	// Shutdown. Default is 0: a request's spans end as it ends.
	BatchEnds time.Duration
}

// Observer is a mongohttp.CommandObserver that makes spans and records
// metrics. Set it as mongohttp.Config.Observer, so that the client also
// installs its command monitor, or as Collection.Observer (then install
// CommandMonitor in the client's options yourself for the command spans).
// It is safe for concurrent use.
type Observer struct {
	tracer trace.Tracer
	meter  metric.Meter
	prop   propagation.TextMapPropagator

	requestDuration httpconv.ServerRequestDuration
	opDuration      dbconv.ClientOperationDuration
	connCount       dbconv.ClientConnectionCountObservable
	connPending     dbconv.ClientConnectionPendingRequestsObservable

	commands sync.Map  // the driver's request id → *command
	ends     *endQueue // nil without Config.BatchEnds

	// The attributes of the spans and metrics, made once per distinct
	// set: a service has few routes, codes and commands, and a set costs
	// allocations and a sort to make.
	requestSets cache[requestKey, []metric.RecordOption]
	commandSets cache[commandKey, *commandAttrs]
	spanStarts  cache[spanKey, *spanStart]
	collections interner // collection names read from commands
}

var _ mongohttp.CommandObserver = (*Observer)(nil)

// Bucket boundaries, in seconds, that the semantic conventions advise.
var (
	httpBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}
	dbBuckets   = []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10}
)

// New makes an Observer and its instruments.
func New(cfg Config) (*Observer, error) {
	tp, mp, prop := cfg.TracerProvider, cfg.MeterProvider, cfg.Propagator
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	if prop == nil {
		prop = propagation.TraceContext{}
	}
	o := &Observer{
		tracer: tp.Tracer(ScopeName, trace.WithSchemaURL(semconv.SchemaURL)),
		meter:  mp.Meter(ScopeName, metric.WithSchemaURL(semconv.SchemaURL)),
		prop:   prop,
	}
	if cfg.BatchEnds > 0 {
		o.ends = newEndQueue(cfg.BatchEnds)
	}
	var errs [4]error
	o.requestDuration, errs[0] = httpconv.NewServerRequestDuration(o.meter, metric.WithExplicitBucketBoundaries(httpBuckets...))
	o.opDuration, errs[1] = dbconv.NewClientOperationDuration(o.meter, metric.WithExplicitBucketBoundaries(dbBuckets...))
	o.connCount, errs[2] = dbconv.NewClientConnectionCountObservable(o.meter)
	o.connPending, errs[3] = dbconv.NewClientConnectionPendingRequestsObservable(o.meter)
	if err := errors.Join(errs[:]...); err != nil {
		return nil, err
	}
	return o, nil
}

// requestContext is the context a request is served under: the span's,
// with what EndRequest needs beyond the report, a place for the request's
// command in flight (its commands run one after the other) and for the
// spans of its finished commands, in one allocation.
type requestContext struct {
	context.Context
	span   trace.Span
	scheme string

	mu          sync.Mutex
	inFlight    command
	inFlightID  int64
	busy        bool
	ended       bool          // EndRequest has run: commands end their spans themselves
	finished    []finishedCmd // command spans to end with the request's; backed by finishedBuf
	finishedBuf [2]finishedCmd
}

// maxDeferred bounds the command spans a request keeps until its end: a
// long export's getMores end their own past it, rather than hold their
// spans for the whole answer.
const maxDeferred = 8

// finishedCmd is the span of a command that has finished, and the option
// that ends it at its time (kept here, so that passing it allocates
// nothing more).
type finishedCmd struct {
	span trace.Span
	end  [1]trace.SpanEndOption
}

// deferEnd keeps the span of a finished command, to be ended (at its
// time) together with the request's span, and reports whether it did:
// ending spans one after the other lets a batching span processor take
// them in one wake-up of its goroutine instead of one each, which is most
// of a span's cost to a service that is not saturated.
func (c *requestContext) deferEnd(span trace.Span, at time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended || len(c.finished) >= maxDeferred {
		return false
	}
	if c.finished == nil {
		c.finished = c.finishedBuf[:0]
	}
	c.finished = append(c.finished, finishedCmd{span: span, end: [1]trace.SpanEndOption{trace.WithTimestamp(at)}})
	return true
}

// endCommands ends the spans deferEnd kept; later commands (a cursor
// closed in the background) end their own.
func (c *requestContext) endCommands() {
	finished := c.takeFinished()
	for i := range finished {
		finished[i].span.End(finished[i].end[:]...)
		finished[i] = finishedCmd{}
	}
}

// takeFinished returns the spans deferEnd kept and marks the request
// ended.
func (c *requestContext) takeFinished() []finishedCmd {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ended = true
	finished := c.finished
	c.finished = nil
	return finished
}

type requestContextKey struct{}

func (c *requestContext) Value(key any) any {
	if key == (requestContextKey{}) {
		return c
	}
	return c.Context.Value(key)
}

// StartRequest starts the request's span: a server span continuing the
// request's trace context, or an internal span under the server span of
// an instrumentation that already handles the request (otelhttp), whose
// span then gets the route. The attributes a sampler may look at are set
// here; the rest when the request ends.
func (o *Observer) StartRequest(r *http.Request, rep *mongohttp.RequestReport) context.Context {
	ctx := r.Context()
	key := spanKey{kind: trace.SpanKindServer, method: rep.Method, route: rep.Route, scheme: "http"}
	if r.TLS != nil {
		key.scheme = "https"
	}
	if outer := trace.SpanFromContext(ctx); outer.SpanContext().IsValid() && !outer.SpanContext().IsRemote() {
		key.kind, key.handler, key.collection = trace.SpanKindInternal, rep.Handler, rep.Collection
		if rep.Route != "" {
			outer.SetAttributes(semconv.HTTPRoute(rep.Route))
		}
	} else if _, w3c := o.prop.(propagation.TraceContext); !w3c || r.Header.Get("Traceparent") != "" {
		ctx = o.prop.Extract(ctx, propagation.HeaderCarrier(r.Header))
	}
	start := o.spanStart(key)
	ctx, span := o.tracer.Start(ctx, start.name, start.opts...)
	if sc := span.SpanContext(); sc.IsValid() {
		rep.TraceParent = traceParent(sc)
	}
	return &requestContext{Context: ctx, span: span, scheme: key.scheme}
}

// spanKey identifies the name and start options of a request's span.
type spanKey struct {
	kind                                       trace.SpanKind
	method, route, scheme, handler, collection string
}

type spanStart struct {
	name string
	opts []trace.SpanStartOption
}

// spanStart returns the name and start options of a request's span, made
// once per route: the attributes a sampler may look at.
func (o *Observer) spanStart(key spanKey) *spanStart {
	if !knownMethods[key.method] {
		return makeSpanStart(key) // a client's made-up method is not kept
	}
	if st, ok := o.spanStarts.Load(key); ok {
		return st
	}
	return o.spanStarts.LoadOrStore(key, makeSpanStart(key))
}

func makeSpanStart(key spanKey) *spanStart {
	name := key.method
	if key.route != "" {
		name += " " + key.route
	}
	if key.kind == trace.SpanKindInternal {
		name = "mongohttp " + key.handler + " " + key.collection
	}
	attrs := appendMethod(make([]attribute.KeyValue, 0, 4), key.method, true)
	attrs = append(attrs, semconv.URLScheme(key.scheme))
	if key.route != "" {
		attrs = append(attrs, semconv.HTTPRoute(key.route))
	}
	return &spanStart{name: name, opts: []trace.SpanStartOption{trace.WithSpanKind(key.kind), trace.WithAttributes(attrs...)}}
}

// endAttrs holds buffers for the attributes a request's span gets at its
// end, which the span copies.
var endAttrs = sync.Pool{New: func() any { return new([10]attribute.KeyValue) }}

// requestKey identifies the attribute set of a request's metrics.
type requestKey struct {
	method, scheme, route, code, errorType string
	status                                 int
}

// EndRequest ends the request's span and records its metrics.
func (o *Observer) EndRequest(ctx context.Context, rep *mongohttp.RequestReport) {
	rc, _ := ctx.Value(requestContextKey{}).(*requestContext)
	if rc == nil {
		return
	}
	failed := rep.Status >= 500 || rep.Aborted
	errorType := ""
	if failed {
		errorType = rep.Code
		if rep.Aborted {
			errorType = "aborted"
		}
		if errorType == "" {
			errorType = strconv.Itoa(rep.Status)
		}
	}

	span := rc.span
	if span.IsRecording() {
		// Few attributes: each one costs the span a copy and a
		// de-duplication. The commands' spans carry the database's.
		buf := endAttrs.Get().(*[10]attribute.KeyValue)
		attrs := buf[:0]
		if rep.Status != 0 {
			attrs = append(attrs, semconv.HTTPResponseStatusCode(rep.Status))
		}
		attrs = append(attrs, DocumentsKey.Int(rep.Documents), RequestIDKey.String(rep.RequestID))
		// Waits only when there were some: past eight attributes a span
		// allocates to de-duplicate them. The first batch's time is the
		// first command's span.
		if rep.AdmissionWait > 0 {
			attrs = append(attrs, AdmissionWaitKey.Float64(rep.AdmissionWait.Seconds()))
		}
		if rep.PoolWait > 0 {
			attrs = append(attrs, PoolWaitKey.Float64(rep.PoolWait.Seconds()))
		}
		if shape := rep.Shape().String(); shape != "" {
			attrs = append(attrs, QueryShapeKey.String(shape))
		}
		if rep.Code != "" {
			attrs = append(attrs, ProblemCodeKey.String(rep.Code))
		}
		if rep.Aborted {
			attrs = append(attrs, AbortedKey.Bool(true))
		}
		if failed {
			attrs = append(attrs, semconv.ErrorTypeKey.String(errorType))
			// The description is the code, never the error's message,
			// which may quote the client's input.
			span.SetStatus(codes.Error, errorType)
		}
		span.SetAttributes(attrs...) // copies them
		clear(attrs)
		endAttrs.Put(buf)
	}
	if o.ends != nil && span.IsRecording() {
		o.ends.hold(rc, time.Now())
	} else {
		rc.endCommands()
		span.End()
	}

	method := rep.Method
	if !knownMethods[method] {
		method = "_OTHER"
	}
	key := requestKey{method: method, scheme: rc.scheme, route: rep.Route, code: rep.Code, errorType: errorType, status: rep.Status}
	opts, ok := o.requestSets.Load(key)
	if !ok {
		attrs := make([]attribute.KeyValue, 0, 7)
		attrs = appendMethod(attrs, method, false)
		attrs = append(attrs, semconv.URLScheme(rc.scheme))
		if rep.Status != 0 {
			attrs = append(attrs, semconv.HTTPResponseStatusCode(rep.Status))
		}
		if rep.Route != "" {
			attrs = append(attrs, semconv.HTTPRoute(rep.Route))
		}
		if rep.Code != "" {
			attrs = append(attrs, ProblemCodeKey.String(rep.Code))
		}
		if failed {
			attrs = append(attrs, semconv.ErrorTypeKey.String(errorType))
		}
		opts = o.requestSets.LoadOrStore(key, []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(attrs...))})
	}
	o.requestDuration.Inst().Record(ctx, rep.Duration.Seconds(), opts...) // a kept slice: no allocation
}

// knownMethods are the methods the conventions name; others are "_OTHER",
// so that a client cannot make up new series.
var knownMethods = map[string]bool{
	"GET": true, "HEAD": true, "POST": true, "PUT": true, "DELETE": true,
	"CONNECT": true, "OPTIONS": true, "TRACE": true, "PATCH": true,
}

// appendMethod appends http.request.method and, for spans, the original
// of a method the conventions do not name.
func appendMethod(attrs []attribute.KeyValue, method string, original bool) []attribute.KeyValue {
	if knownMethods[method] {
		return append(attrs, semconv.HTTPRequestMethodKey.String(method))
	}
	attrs = append(attrs, semconv.HTTPRequestMethodKey.String("_OTHER"))
	if original {
		attrs = append(attrs, semconv.HTTPRequestMethodOriginal(method))
	}
	return attrs
}

// traceParent formats a span context as a W3C traceparent.
func traceParent(sc trace.SpanContext) string {
	var b [55]byte
	tid, sid := sc.TraceID(), sc.SpanID()
	b[0], b[1], b[2], b[35], b[52] = '0', '0', '-', '-', '-'
	hex.Encode(b[3:35], tid[:])
	hex.Encode(b[36:52], sid[:])
	hex.Encode(b[53:55], []byte{byte(sc.TraceFlags())})
	return string(b[:])
}

// operations waiting for a connection), with db.client.connection.pool.name
// poolName, read at each collection. Unregister the returned registration
// when c is closed.
func (o *Observer) ObservePool(c *mongohttp.Client, poolName string) (metric.Registration, error) {
	pool := semconv.DBClientConnectionPoolName(poolName)
	idle := metric.WithAttributeSet(attribute.NewSet(pool, semconv.DBClientConnectionStateIdle))
	used := metric.WithAttributeSet(attribute.NewSet(pool, semconv.DBClientConnectionStateUsed))
	pending := metric.WithAttributeSet(attribute.NewSet(pool))
	return o.meter.RegisterCallback(func(_ context.Context, obs metric.Observer) error {
		s := c.Stats()
		obs.ObserveInt64(o.connCount.Inst(), s.Idle, idle)
		obs.ObserveInt64(o.connCount.Inst(), s.InUse, used)
		obs.ObserveInt64(o.connPending.Inst(), s.Waiting, pending)
		return nil
	}, o.connCount.Inst(), o.connPending.Inst())
}
