package otelmongohttp_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mongohttp/mongohttp"
	"github.com/mongohttp/mongohttp/integration/testserver"
	"github.com/mongohttp/mongohttp/otelmongohttp"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
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

// serverURI is the real server every test uses: an in-process FerretDB,
// or the server of MONGODB_URI.
var serverURI string

func TestMain(m *testing.M) {
	uri, stop, err := testserver.URI()
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting test server:", err)
		os.Exit(1)
	}
	serverURI = uri
	code := m.Run()
	stop()
	os.Exit(code)
}

// secret is a filter value of the tests' queries: it must reach no span,
// log or metric.
const secret = "Zed-Secret-Value"

const incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

var policy = mongohttp.Policy{
	Filter: map[string]mongohttp.Type{"name": mongohttp.String, "age": mongohttp.Int},
	Sort:   []string{"age"},
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
	res := mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{Coll: s.coll, Policy: policy}))
	mux := http.NewServeMux()
	mux.Handle("GET /people", res.Find())
	mux.Handle("GET /people/{id}", res.FindOne())
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
	deadline := time.Now().Add(10 * time.Second)
	for {
		spans := s.spans.GetSpans()
		if len(spans) >= n || time.Now().After(deadline) {
			return spans
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitRequests collects the metrics once the request histogram counts n
// requests (see waitSpans).
func (s *service) waitRequests(t *testing.T, n uint64) metricdata.ResourceMetrics {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		rm := s.collect(t)
		if histogramCount(t, rm, "http.server.request.duration") >= n || time.Now().After(deadline) {
			return rm
		}
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
		Coll: s.coll, Policy: policy, MaxTime: time.Nanosecond, // every query runs out of time
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

// collect reads the manual reader's metrics.
func (s *service) collect(t *testing.T) metricdata.ResourceMetrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := s.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	return rm
}

func findMetric(rm metricdata.ResourceMetrics, name string) (metricdata.Metrics, bool) {
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != otelmongohttp.ScopeName {
			continue
		}
		for _, m := range sm.Metrics {
			if m.Name == name {
				return m, true
			}
		}
	}
	return metricdata.Metrics{}, false
}

// histogramCount sums the counts of the data points whose attributes
// include every attribute of match.
func histogramCount(t *testing.T, rm metricdata.ResourceMetrics, name string, match ...attribute.KeyValue) uint64 {
	t.Helper()
	m, ok := findMetric(rm, name)
	if !ok {
		return 0
	}
	var n uint64
	switch data := m.Data.(type) {
	case metricdata.Histogram[float64]:
		for _, dp := range data.DataPoints {
			if hasAll(dp.Attributes, match) {
				n += dp.Count
			}
		}
	case metricdata.Histogram[int64]:
		for _, dp := range data.DataPoints {
			if hasAll(dp.Attributes, match) {
				n += dp.Count
			}
		}
	default:
		t.Fatalf("%s is a %T, want a histogram", name, m.Data)
	}
	return n
}

func hasAll(set attribute.Set, match []attribute.KeyValue) bool {
	for _, kv := range match {
		if v, ok := set.Value(kv.Key); !ok || v != kv.Value {
			return false
		}
	}
	return true
}

// TestMetricsMoveByTheRequestsMade checks that the request and operation
// histograms count exactly the requests and commands made, under the
// conventions' names and attributes, that the pool gauges match
// PoolStats, and that no filter value reaches an attribute.
func TestMetricsMoveByTheRequestsMade(t *testing.T) {
	s := newService(t, nil)
	reg, err := s.obs.ObservePool(s.client, "main")
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Unregister()

	for range 3 {
		s.get(t, "/people?name="+secret+"&age[lt]="+secretNumber+"&limit=2")
	}
	s.get(t, "/people/not-an-id")
	s.get(t, "/people/not-an-id")
	s.get(t, "/people/"+bson.NewObjectID().Hex())
	rm := s.waitRequests(t, 6)

	const dur = "http.server.request.duration"
	route := func(r string) attribute.KeyValue { return attribute.String("http.route", r) }
	status := func(c int) attribute.KeyValue { return attribute.Int("http.response.status_code", c) }
	get := attribute.String("http.request.method", "GET")
	scheme := attribute.String("url.scheme", "http")
	for _, c := range []struct {
		match []attribute.KeyValue
		want  uint64
	}{
		{[]attribute.KeyValue{get, scheme, route("/people"), status(200)}, 3},
		{[]attribute.KeyValue{get, route("/people/{id}"), status(400), attribute.String("mongohttp.problem.code", "invalid_object_id")}, 2},
		{[]attribute.KeyValue{get, route("/people/{id}"), status(404), attribute.String("mongohttp.problem.code", "not_found")}, 1},
		{nil, 6},
	} {
		if got := histogramCount(t, rm, dur, c.match...); got != c.want {
			t.Errorf("%s%v: count %d, want %d", dur, c.match, got, c.want)
		}
	}
	m, _ := findMetric(rm, dur)
	if m.Unit != "s" {
		t.Errorf("%s has unit %q, want s", dur, m.Unit)
	}

	const op = "db.client.operation.duration"
	find := []attribute.KeyValue{
		attribute.String("db.system.name", "mongodb"), attribute.String("db.operation.name", "find"),
		attribute.String("db.collection.name", "people"), attribute.String("db.namespace", s.coll.Database().Name()),
	}
	finds := histogramCount(t, rm, op, find...)
	if finds != 4 { // three pages and the missing document; bad ids send nothing
		t.Errorf("%s for finds: count %d, want 4", op, finds)
	}

	// Two more requests move the counts by exactly two.
	s.get(t, "/people/"+s.ids[1].Hex())
	s.get(t, "/people?limit=1")
	rm = s.waitRequests(t, 8)
	if got := histogramCount(t, rm, dur); got != 8 {
		t.Errorf("after two more requests, %s count %d, want 8", dur, got)
	}
	if got := histogramCount(t, rm, op, find...); got != finds+2 {
		t.Errorf("after two more requests, finds %d, want %d", got, finds+2)
	}

	// The pool, at rest: the gauges are PoolStats.
	stats := s.client.Stats()
	gauges := map[string]int64{}
	for _, name := range []string{"db.client.connection.count", "db.client.connection.pending_requests"} {
		m, ok := findMetric(rm, name)
		if !ok {
			t.Fatalf("no %s", name)
		}
		sum, ok := m.Data.(metricdata.Sum[int64])
		if !ok || sum.IsMonotonic {
			t.Fatalf("%s is a %T, want a non-monotonic sum", name, m.Data)
		}
		for _, dp := range sum.DataPoints {
			if v, _ := dp.Attributes.Value("db.client.connection.pool.name"); v.AsString() != "main" {
				t.Errorf("%s without the pool's name: %v", name, dp.Attributes)
			}
			state, _ := dp.Attributes.Value("db.client.connection.state")
			gauges[name+"/"+state.AsString()] = dp.Value
		}
	}
	if gauges["db.client.connection.count/idle"] != stats.Idle || gauges["db.client.connection.count/used"] != stats.InUse ||
		gauges["db.client.connection.pending_requests/"] != stats.Waiting || stats.Open < 1 {
		t.Errorf("pool gauges %v, PoolStats %+v", gauges, stats)
	}

	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			for _, set := range attributeSets(m.Data) {
				for _, kv := range set.ToSlice() {
					checkNoSecret(t, "metric "+m.Name+" attribute "+string(kv.Key), kv.Value.String())
				}
			}
		}
	}
	checkSpansHaveNoSecret(t, s.spans.GetSpans())
}

// TestPrometheusScrape checks that the metrics are scrapeable: the text
// format parses, and the request histogram is there by its Prometheus name
// with the route as a label, counting the requests made.
func TestPrometheusScrape(t *testing.T) {
	mp, metricsHandler, err := otelmongohttp.Prometheus()
	if err != nil {
		t.Fatal(err)
	}
	defer mp.Shutdown(context.Background())
	obs, err := otelmongohttp.New(otelmongohttp.Config{MeterProvider: mp, TracerProvider: sdktrace.NewTracerProvider()})
	if err != nil {
		t.Fatal(err)
	}
	client := connect(t, obs, nil)
	reg, err := obs.ObservePool(client, "main")
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Unregister()
	coll := testserver.Database(t, client.Mongo()).Collection("people")
	if _, err := coll.InsertOne(context.Background(), bson.D{{Key: "name", Value: "p"}}); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /people", mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{Coll: coll, Policy: policy})).Find())
	mux.Handle("GET /metrics", metricsHandler)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for range 4 {
		resp, err := http.Get(srv.URL + "/people?name=" + secret)
		if err != nil {
			t.Fatal(err)
		}
		// Read to the end: the request's metrics are recorded before the
		// handler returns, and the body's end comes after.
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}

	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(body), secret) {
		t.Errorf("the scrape holds a filter value:\n%s", body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("the scrape does not parse: %v\n%s", err, body)
	}
	fam, ok := families["http_server_request_duration_seconds"]
	if !ok {
		t.Fatalf("no http_server_request_duration_seconds in:\n%s", body)
	}
	var count uint64
	for _, m := range fam.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["http_route"] == "/people" && labels["http_request_method"] == "GET" && labels["http_response_status_code"] == "200" {
			count += m.GetHistogram().GetSampleCount()
		}
	}
	if count != 4 {
		t.Errorf("http_server_request_duration_seconds{http_route=\"/people\"} counts %d requests, want 4:\n%s", count, body)
	}
	for _, name := range []string{"db_client_operation_duration_seconds", "db_client_connection_count", "db_client_connection_pending_requests"} {
		if _, ok := families[name]; !ok {
			t.Errorf("no %s in the scrape; families: %v", name, slices.Sorted(mapsKeys(families)))
		}
	}
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// attributeSets returns the attribute sets of a metric's data points.
func attributeSets(data metricdata.Aggregation) []attribute.Set {
	var out []attribute.Set
	switch d := data.(type) {
	case metricdata.Histogram[float64]:
		for _, dp := range d.DataPoints {
			out = append(out, dp.Attributes)
		}
	case metricdata.Histogram[int64]:
		for _, dp := range d.DataPoints {
			out = append(out, dp.Attributes)
		}
	case metricdata.Sum[int64]:
		for _, dp := range d.DataPoints {
			out = append(out, dp.Attributes)
		}
	}
	return out
}
