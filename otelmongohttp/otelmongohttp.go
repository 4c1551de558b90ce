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
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/mongohttp/mongohttp"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
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
	// The waits of the request and its time to the first batch, in
	// seconds (see mongohttp.RequestReport). The database's own time is
	// in the commands' spans.
	AdmissionWaitKey = attribute.Key("mongohttp.admission.wait")
	PoolWaitKey      = attribute.Key("mongohttp.pool.wait")
	FirstBatchKey    = attribute.Key("mongohttp.first_batch")
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

	commands sync.Map // the driver's request id → *command

	// The attributes of the spans and metrics, made once per distinct
	// set: a service has few routes, codes and commands, and a set costs
	// allocations and a sort to make.
	requestSets cache // requestKey → metric.MeasurementOption
	commandSets cache // commandKey → *commandAttrs
	spanStarts  cache // spanKey → *spanStart
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
// with what EndRequest needs beyond the report and a place for the
// request's command in flight (its commands run one after the other), in
// one allocation.
type requestContext struct {
	context.Context
	span   trace.Span
	scheme string

	mu         sync.Mutex
	inFlight   command
	inFlightID int64
	busy       bool
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
		return st.(*spanStart)
	}
	return o.spanStarts.LoadOrStore(key, makeSpanStart(key)).(*spanStart)
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
		attrs := make([]attribute.KeyValue, 0, 10)
		if rep.Status != 0 {
			attrs = append(attrs, semconv.HTTPResponseStatusCode(rep.Status))
		}
		attrs = append(attrs, DocumentsKey.Int(rep.Documents), RequestIDKey.String(rep.RequestID),
			AdmissionWaitKey.Float64(rep.AdmissionWait.Seconds()), PoolWaitKey.Float64(rep.PoolWait.Seconds()),
			FirstBatchKey.Float64(rep.FirstBatch.Seconds()))
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
		span.SetAttributes(attrs...)
	}
	span.End()

	method := rep.Method
	if !knownMethods[method] {
		method = "_OTHER"
	}
	key := requestKey{method: method, scheme: rc.scheme, route: rep.Route, code: rep.Code, errorType: errorType, status: rep.Status}
	opt, ok := o.requestSets.Load(key)
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
		opt = o.requestSets.LoadOrStore(key, metric.WithAttributeSet(attribute.NewSet(attrs...)))
	}
	o.requestDuration.Inst().Record(ctx, rep.Duration.Seconds(), opt.(metric.MeasurementOption))
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

// command is a database command between its start and end events.
type command struct {
	span  trace.Span // nil outside a traced request
	key   commandKey
	attrs *commandAttrs
}

// commandKey identifies the attributes of a command.
type commandKey struct {
	operation, collection, namespace, connection string
	errorType, status                            string
}

// commandAttrs are a command's attributes, for its span and its metric,
// with the options that carry them, made once.
type commandAttrs struct {
	list  []attribute.KeyValue
	start []trace.SpanStartOption
	opt   metric.MeasurementOption
}

func (o *Observer) commandAttrs(key commandKey) *commandAttrs {
	if ca, ok := o.commandSets.Load(key); ok {
		return ca.(*commandAttrs)
	}
	attrs := make([]attribute.KeyValue, 0, 9)
	attrs = append(attrs, semconv.DBSystemNameMongoDB, semconv.DBOperationName(key.operation), semconv.DBNamespace(key.namespace))
	if key.collection != "" {
		attrs = append(attrs, semconv.DBCollectionName(key.collection))
	}
	if host, port, ok := serverOf(key.connection); ok {
		attrs = append(attrs, semconv.ServerAddress(host), semconv.ServerPort(port))
	}
	if key.errorType != "" {
		attrs = append(attrs, semconv.ErrorTypeKey.String(key.errorType))
	}
	if key.status != "" {
		attrs = append(attrs, semconv.DBResponseStatusCode(key.status))
	}
	return o.commandSets.LoadOrStore(key, &commandAttrs{
		list:  attrs,
		start: []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...)},
		opt:   metric.WithAttributeSet(attribute.NewSet(slices.Clone(attrs)...)), // NewSet sorts its argument
	}).(*commandAttrs)
}

// CommandMonitor returns the monitor that makes a client span of each
// command sent under a traced context and times every command for
// db.client.operation.duration. mongohttp.ConnectConfig installs it when
// the Observer is Config.Observer.
func (o *Observer) CommandMonitor() *event.CommandMonitor {
	return &event.CommandMonitor{
		Started: o.commandStarted,
		Succeeded: func(ctx context.Context, e *event.CommandSucceededEvent) {
			o.commandFinished(ctx, &e.CommandFinishedEvent, nil)
		},
		Failed: func(ctx context.Context, e *event.CommandFailedEvent) {
			o.commandFinished(ctx, &e.CommandFinishedEvent, e.Failure)
		},
	}
}

func (o *Observer) commandStarted(ctx context.Context, e *event.CommandStartedEvent) {
	c := command{key: commandKey{
		operation: e.CommandName, collection: collectionOf(e), namespace: e.DatabaseName,
		connection: connectionServer(e.ConnectionID),
	}}
	c.attrs = o.commandAttrs(c.key)
	if trace.SpanFromContext(ctx).IsRecording() {
		// The command document is not recorded: it holds the query's values.
		name := e.CommandName
		if c.key.collection != "" {
			name += " " + c.key.collection
		}
		_, c.span = o.tracer.Start(ctx, name, c.attrs.start...)
	}
	if rc, _ := ctx.Value(requestContextKey{}).(*requestContext); rc != nil {
		rc.mu.Lock()
		free := !rc.busy
		if free {
			rc.inFlight, rc.inFlightID, rc.busy = c, e.RequestID, true
		}
		rc.mu.Unlock()
		if free {
			return
		}
	}
	o.commands.Store(e.RequestID, &c)
}

// finished returns the command of a finished event and forgets it.
func (o *Observer) finished(ctx context.Context, requestID int64) (command, bool) {
	if rc, _ := ctx.Value(requestContextKey{}).(*requestContext); rc != nil {
		rc.mu.Lock()
		mine := rc.busy && rc.inFlightID == requestID
		c := rc.inFlight
		if mine {
			rc.inFlight, rc.busy = command{}, false
		}
		rc.mu.Unlock()
		if mine {
			return c, true
		}
	}
	v, ok := o.commands.LoadAndDelete(requestID)
	if !ok {
		return command{}, false
	}
	return *v.(*command), true
}

func (o *Observer) commandFinished(ctx context.Context, e *event.CommandFinishedEvent, failure error) {
	c, ok := o.finished(ctx, e.RequestID)
	if !ok {
		return
	}
	attrs := c.attrs
	if failure != nil {
		key := c.key
		key.errorType, key.status = classify(failure)
		attrs = o.commandAttrs(key)
		if c.span != nil {
			c.span.SetAttributes(attrs.list[len(c.attrs.list):]...)
			c.span.SetStatus(codes.Error, key.errorType)
		}
	}
	if c.span != nil {
		c.span.End()
	}
	o.opDuration.Inst().Record(ctx, e.Duration.Seconds(), attrs.opt)
}

// connectionServer returns the server part of a driver connection id
// ("host:port[-7]"), which names the connection too.
func connectionServer(connID string) string {
	if i := strings.LastIndexByte(connID, '['); i > 0 {
		return connID[:i]
	}
	return connID
}

// collectionOf returns the collection a command names: the value of its
// first element for most commands, the "collection" field for getMore.
func collectionOf(e *event.CommandStartedEvent) string {
	if e.CommandName == "getMore" {
		coll, _ := e.Command.Lookup("collection").StringValueOK()
		return coll
	}
	elem, err := e.Command.IndexErr(0)
	if err != nil {
		return ""
	}
	coll, _ := elem.Value().StringValueOK()
	return coll
}

// serverOf parses a server's address ("host:port").
func serverOf(server string) (string, int, bool) {
	host, port, err := net.SplitHostPort(server)
	if err != nil {
		return "", 0, false
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return "", 0, false
	}
	return host, p, true
}

// classify names a command's failure for error.type, and the server's
// error code for db.response.status_code when there is one.
func classify(err error) (errorType, status string) {
	var ce mongo.CommandError
	switch {
	case errors.As(err, &ce):
		errorType = ce.Name
		if errorType == "" {
			errorType = "CommandError"
		}
		return errorType, strconv.Itoa(int(ce.Code))
	case mongo.IsTimeout(err):
		return "timeout", ""
	case mongo.IsNetworkError(err):
		return "network", ""
	case errors.Is(err, context.Canceled):
		return "canceled", ""
	}
	return "_OTHER", ""
}

// ObservePool reports the pool statistics of c (see mongohttp.PoolStats)
// as db.client.connection.count, by state ("idle", "used"; their sum is
// the connections open), and db.client.connection.pending_requests (the
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

// cacheLimit bounds each cache: past it, values are made at each use and
// not kept, so a Route function that returns paths instead of templates
// costs time, not memory.
const cacheLimit = 1024

// cache is a sync.Map that stops growing at cacheLimit entries.
type cache struct {
	m    sync.Map
	size atomic.Int64
}

func (c *cache) Load(key any) (any, bool) { return c.m.Load(key) }

// LoadOrStore returns the value of key, storing v first if there is room.
func (c *cache) LoadOrStore(key, v any) any {
	if c.size.Load() >= cacheLimit {
		if kept, ok := c.m.Load(key); ok {
			return kept
		}
		return v
	}
	actual, loaded := c.m.LoadOrStore(key, v)
	if !loaded {
		c.size.Add(1)
	}
	return actual
}
