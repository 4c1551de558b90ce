package otelmongohttp_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/mongohttp/mongohttp"
	"github.com/mongohttp/mongohttp/integration/testserver"
	"github.com/mongohttp/mongohttp/otelmongohttp"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

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
	mux.Handle("GET /people", mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{Client: client, Coll: coll, Policy: policy})).Find())
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
