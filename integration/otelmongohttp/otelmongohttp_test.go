package otelmongohttp_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mongohttp/mongohttp"
	"github.com/mongohttp/mongohttp/integration/testserver"
	"github.com/mongohttp/mongohttp/otelmongohttp"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// serverURI is the real server every test uses: a FerretDB child process,
// or the server of MONGODB_URI.
var serverURI string

func TestMain(m *testing.M) { testserver.Main(m, &serverURI) }

// secret is a filter value of the tests' queries: it must reach no span,
// log or metric.
const secret = "Zed-Secret-Value"

const incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

var policy = mongohttp.Policy{
	Filter: map[string]mongohttp.Type{"name": mongohttp.String, "age": mongohttp.Int},
	Sort:   []string{"age"},
	Write:  map[string]mongohttp.Type{"name": mongohttp.String, "age": mongohttp.Int},
}

// service is an observed mongohttp service on a real server.
type service struct {
	client *mongohttp.Client
	coll   *mongo.Collection
	ids    []bson.ObjectID
	srv    *httptest.Server
	spans  *tracetest.InMemoryExporter
	reader *sdkmetric.ManualReader
	obs    *otelmongohttp.Observer

	mu       sync.Mutex
	comments map[string]string // command name → its last comment
}

// newService serves people from a client observed by an Observer on the
// SDK's in-memory span exporter and manual metric reader. wrap, when not
// nil, wraps the service's mux (otelhttp).
func newService(t *testing.T, wrap func(http.Handler, trace.TracerProvider, *sdkmetric.MeterProvider) http.Handler) *service {
	t.Helper()
	s := &service{spans: tracetest.NewInMemoryExporter(), reader: sdkmetric.NewManualReader(), comments: map[string]string{}}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(s.spans))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(s.reader))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()); _ = mp.Shutdown(context.Background()) })
	obs, err := otelmongohttp.New(otelmongohttp.Config{TracerProvider: tp, MeterProvider: mp})
	if err != nil {
		t.Fatal(err)
	}
	s.obs = obs
	s.client = connect(t, obs, options.Client().SetMonitor(&event.CommandMonitor{
		Started: func(_ context.Context, e *event.CommandStartedEvent) {
			c, _ := e.Command.Lookup("comment").StringValueOK()
			s.mu.Lock()
			s.comments[e.CommandName] = c
			s.mu.Unlock()
		},
	}))
	s.coll = testserver.Database(t, s.client.Mongo()).Collection("people")
	for i := range 5 {
		id := bson.NewObjectID()
		s.ids = append(s.ids, id)
		if _, err := s.coll.InsertOne(context.Background(), bson.D{{Key: "_id", Value: id}, {Key: "name", Value: fmt.Sprint("p", i)}, {Key: "age", Value: 30 + i}}); err != nil {
			t.Fatal(err)
		}
	}
	// No feed is declared: deletes leave no tombstone, so each write is
	// one command under its request.
	res := mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{Client: s.client, Coll: s.coll, Policy: policy}))
	mux := http.NewServeMux()
	mux.Handle("GET /people", res.Find())
	mux.Handle("GET /people/{id}", res.FindOne())
	mux.Handle("POST /people", res.Insert())
	mux.Handle("DELETE /people/{id}", res.Delete())
	var h http.Handler = mux
	if wrap != nil {
		h = wrap(mux, tp, mp)
	}
	s.srv = httptest.NewServer(h)
	t.Cleanup(s.srv.Close)
	s.spans.Reset() // the seed's commands were not traced, but make sure
	return s
}

func connect(t *testing.T, obs mongohttp.Observer, opts *options.ClientOptions) *mongohttp.Client {
	t.Helper()
	c, err := mongohttp.ConnectConfig(context.Background(), mongohttp.Config{URI: serverURI, Observer: obs, Options: opts})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = c.Close(ctx)
	})
	return c
}

func (s *service) get(t *testing.T, target string, header ...string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.srv.URL+target, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// waitSpans returns the spans ended so far once there are n. A client can
// have a whole answer (one with a Content-Length) a moment before the
// handler returns and its spans end.
func (s *service) waitSpans(t *testing.T, n int) tracetest.SpanStubs {
	t.Helper()
	var spans tracetest.SpanStubs
	pollUntil(func() bool { spans = s.spans.GetSpans(); return len(spans) >= n })
	return spans
}

// waitRequests collects the metrics once the request histogram counts n
// requests (see waitSpans).
func (s *service) waitRequests(t *testing.T, n uint64) metricdata.ResourceMetrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	pollUntil(func() bool { rm = s.collect(t); return histogramCount(t, rm, "http.server.request.duration") >= n })
	return rm
}

// pollUntil calls done every 5 ms until it reports true or 10 s have
// passed; the caller checks what it last saw.
func pollUntil(done func() bool) {
	for deadline := time.Now().Add(10 * time.Second); !done() && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
}

func attrs(kvs []attribute.KeyValue) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range kvs {
		m[kv.Key] = kv.Value
	}
	return m
}

// secretNumber is the tests' numeric filter value. Durations and counts
// may hold its digits by chance, so only text is checked for it.
const secretNumber = "914242"

// checkNoSecret fails when s, text, holds one of the tests' filter values.
func checkNoSecret(t *testing.T, where, s string) {
	t.Helper()
	if strings.Contains(s, secret) || strings.Contains(s, secretNumber) {
		t.Errorf("%s holds a filter value: %s", where, s)
	}
}

func checkSpansHaveNoSecret(t *testing.T, spans tracetest.SpanStubs) {
	t.Helper()
	for _, sp := range spans {
		checkNoSecret(t, "span name", sp.Name)
		checkNoSecret(t, "span status", sp.Status.Description)
		for _, kv := range sp.Attributes {
			if kv.Value.Type() == attribute.STRING || kv.Value.Type() == attribute.STRINGSLICE {
				checkNoSecret(t, "span attribute "+string(kv.Key), kv.Value.String())
			}
		}
		for _, ev := range sp.Events {
			checkNoSecret(t, "span event", fmt.Sprint(ev))
		}
	}
}

// TestSpansFormATree checks a request's spans: a server span continuing
// the incoming traceparent, then one client span per database command
// under it, attributes by the conventions, the trace context in the
// commands' comment, and no filter value anywhere.
func TestSpansFormATree(t *testing.T) {
	s := newService(t, nil)
	if code := s.get(t, "/people?name="+secret+"&age[gte]="+secretNumber+"&count=exact&limit=2", "Traceparent", incoming); code != 200 {
		t.Fatalf("status %d", code)
	}
	spans := s.waitSpans(t, 3)
	if len(spans) != 3 {
		t.Fatalf("%d spans, want the request's and its two commands': %v", len(spans), names(spans))
	}
	server := spans[len(spans)-1] // ended last
	if server.Name != "GET /people" || server.SpanKind != trace.SpanKindServer {
		t.Fatalf("last span %q of kind %v, want the server span GET /people", server.Name, server.SpanKind)
	}
	if server.SpanContext.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" ||
		server.Parent.SpanID().String() != "00f067aa0ba902b7" || !server.Parent.IsRemote() {
		t.Errorf("the server span does not continue the incoming trace: trace %s, parent %s", server.SpanContext.TraceID(), server.Parent.SpanID())
	}
	sa := attrs(server.Attributes)
	for key, want := range map[attribute.Key]any{
		"http.request.method": "GET", "http.route": "/people", "http.response.status_code": int64(200),
		"url.scheme": "http", "mongohttp.documents": int64(0), // no one is that old
		"mongohttp.query.shape": "filter=name $eq,age $gte sort=_id count=exact",
	} {
		if got := sa[key].AsInterface(); got != want {
			t.Errorf("server span %s = %v, want %v", key, got, want)
		}
	}
	if _, ok := sa["url.query"]; ok {
		t.Error("the server span records the query string")
	}
	if server.Status.Code == codes.Error {
		t.Errorf("a 200 is an error span: %v", server.Status)
	}

	wantCommands := []string{"aggregate people", "find people"}
	for i, sp := range spans[:2] {
		if sp.Name != wantCommands[i] || sp.SpanKind != trace.SpanKindClient {
			t.Errorf("span %d: %q of kind %v, want %q of kind client", i, sp.Name, sp.SpanKind, wantCommands[i])
		}
		if sp.Parent.SpanID() != server.SpanContext.SpanID() || sp.SpanContext.TraceID() != server.SpanContext.TraceID() {
			t.Errorf("span %q is not a child of the server span", sp.Name)
		}
		ca := attrs(sp.Attributes)
		op, _, _ := strings.Cut(wantCommands[i], " ")
		for key, want := range map[attribute.Key]any{
			"db.system.name": "mongodb", "db.operation.name": op, "db.collection.name": "people",
			"db.namespace": s.coll.Database().Name(),
		} {
			if got := ca[key].AsInterface(); got != want {
				t.Errorf("span %q: %s = %v, want %v", sp.Name, key, got, want)
			}
		}
		if _, ok := ca["server.address"]; !ok {
			t.Errorf("span %q has no server.address", sp.Name)
		}
	}
	checkSpansHaveNoSecret(t, spans)

	// The commands carry the server span's traceparent, so the database's
	// logs lead to the span.
	want := "traceparent='00-4bf92f3577b34da6a3ce929d0e0e4736-" + server.SpanContext.SpanID().String() + "-01'"
	s.mu.Lock()
	for _, cmd := range []string{"find", "aggregate"} {
		if !strings.HasSuffix(s.comments[cmd], ","+want) {
			t.Errorf("the %s command's comment is %q, want it to end with %s", cmd, s.comments[cmd], want)
		}
	}
	s.mu.Unlock()

	// A request without traceparent starts a trace; a 5xx-free error is
	// not an error span but carries its problem code.
	s.spans.Reset()
	if code := s.get(t, "/people/"+bson.NewObjectID().Hex()); code != 404 {
		t.Fatalf("status %d, want 404", code)
	}
	spans = s.waitSpans(t, 2)
	if len(spans) != 2 {
		t.Fatalf("%d spans, want 2: %v", len(spans), names(spans))
	}
	server = spans[1]
	sa = attrs(server.Attributes)
	if server.Name != "GET /people/{id}" || server.Parent.IsValid() || sa["mongohttp.problem.code"].AsString() != "not_found" ||
		sa["http.response.status_code"].AsInt64() != 404 || server.Status.Code == codes.Error {
		t.Errorf("404: span %q, parent %v, attributes %v, status %v", server.Name, server.Parent, sa, server.Status)
	}
	if spans[0].Name != "find people" || spans[0].Parent.SpanID() != server.SpanContext.SpanID() {
		t.Errorf("404: command span %q under %s", spans[0].Name, spans[0].Parent.SpanID())
	}
}

// TestServerErrorSpan checks a 5xx: an error span with error.type the
// problem code, and the command's failure on its own span.
func TestServerErrorSpan(t *testing.T) {
	s := newService(t, nil)
	res := mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{
		Client: s.client,
		Coll:   s.coll, Policy: policy, MaxTime: time.Nanosecond, // every query runs out of time
		Logger: discardLogger(),
	}))
	mux := http.NewServeMux()
	mux.Handle("GET /slow", res.Find())
	srv := httptest.NewServer(mux)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/slow")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("status %d, want 504", resp.StatusCode)
	}
	spans := s.waitSpans(t, 1) // the query ran out of time before it was sent
	server := spans[len(spans)-1]
	sa := attrs(server.Attributes)
	if server.Status.Code != codes.Error || server.Status.Description != "timeout" || sa["error.type"].AsString() != "timeout" {
		t.Errorf("504 span: status %v, attributes %v", server.Status, sa)
	}
}

func names(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name+" ("+s.SpanKind.String()+")")
	}
	return out
}

// TestNestsUnderOtelhttp checks that under otelhttp's server span the
// request's span is an internal child, the commands are its children, and
// otelhttp's span gets the route.
func TestNestsUnderOtelhttp(t *testing.T) {
	s := newService(t, func(h http.Handler, tp trace.TracerProvider, mp *sdkmetric.MeterProvider) http.Handler {
		return otelhttp.NewHandler(h, "server", otelhttp.WithTracerProvider(tp), otelhttp.WithMeterProvider(mp),
			otelhttp.WithPropagators(propagation.TraceContext{}))
	})
	if code := s.get(t, "/people/"+s.ids[0].Hex(), "Traceparent", incoming); code != 200 {
		t.Fatalf("status %d", code)
	}
	spans := s.waitSpans(t, 3)
	if len(spans) != 3 {
		t.Fatalf("%d spans, want otelhttp's, ours and the command's: %v", len(spans), names(spans))
	}
	command, ours, outer := spans[0], spans[1], spans[2]
	if outer.SpanKind != trace.SpanKindServer || outer.Parent.SpanID().String() != "00f067aa0ba902b7" {
		t.Errorf("otelhttp's span: kind %v, parent %s", outer.SpanKind, outer.Parent.SpanID())
	}
	if ours.SpanKind != trace.SpanKindInternal || ours.Parent.SpanID() != outer.SpanContext.SpanID() || ours.Name != "mongohttp findOne people" {
		t.Errorf("our span %q: kind %v, parent %s, want an internal child of %s", ours.Name, ours.SpanKind, ours.Parent.SpanID(), outer.SpanContext.SpanID())
	}
	if command.Name != "find people" || command.Parent.SpanID() != ours.SpanContext.SpanID() {
		t.Errorf("command span %q under %s, want under ours %s", command.Name, command.Parent.SpanID(), ours.SpanContext.SpanID())
	}
	if got := attrs(ours.Attributes)["mongohttp.documents"].AsInt64(); got != 1 {
		t.Errorf("our span counts %d documents, want 1", got)
	}
	if got := attrs(outer.Attributes)["http.route"].AsString(); got != "/people/{id}" {
		t.Errorf("otelhttp's span has http.route %q", got)
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestBatchEnds checks that with Config.BatchEnds the spans of finished
// requests wait for ForceFlush (or the delay), then arrive whole: each
// request's span with its command's below it, at their own end times.
func TestBatchEnds(t *testing.T) {
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	obs, err := otelmongohttp.New(otelmongohttp.Config{TracerProvider: tp, BatchEnds: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	client := connect(t, obs, nil)
	coll := testserver.Database(t, client.Mongo()).Collection("people")
	id := bson.NewObjectID()
	if _, err := coll.InsertOne(context.Background(), bson.D{{Key: "_id", Value: id}, {Key: "name", Value: "p"}}); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /people/{id}", mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{Client: client, Coll: coll, Policy: policy})).FindOne())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	const requests = 8
	var wg sync.WaitGroup
	for range requests {
		wg.Go(func() {
			resp, err := http.Get(srv.URL + "/people/" + id.Hex())
			if err != nil {
				t.Error(err)
				return
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("status %d", resp.StatusCode)
			}
		})
	}
	wg.Wait()
	if n := len(spans.GetSpans()); n != 0 {
		t.Fatalf("%d spans ended before the flush, want them held", n)
	}
	flushed := time.Now()
	if err := obs.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := spans.GetSpans()
	servers := map[trace.SpanID]tracetest.SpanStub{}
	for _, s := range got {
		if s.SpanKind == trace.SpanKindServer {
			servers[s.SpanContext.SpanID()] = s
		}
	}
	if len(got) != 2*requests || len(servers) != requests {
		t.Fatalf("%d spans, %d of them requests', want %d and %d: %v", len(got), len(servers), 2*requests, requests, names(got))
	}
	for _, s := range got {
		if s.SpanKind == trace.SpanKindServer {
			if s.EndTime.After(flushed) {
				t.Errorf("a request's span ended at the flush (%v), not when the request did", s.EndTime)
			}
			continue
		}
		parent, ok := servers[s.Parent.SpanID()]
		if s.Name != "find people" || !ok {
			t.Errorf("span %q is not a find under a request's span", s.Name)
			continue
		}
		if s.EndTime.After(parent.EndTime) || !s.StartTime.After(parent.StartTime) {
			t.Errorf("command %v–%v is not within its request %v–%v", s.StartTime, s.EndTime, parent.StartTime, parent.EndTime)
		}
	}
}
