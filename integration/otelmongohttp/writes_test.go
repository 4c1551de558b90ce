package otelmongohttp_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// send makes a request with a JSON body and returns its status.
func (s *service) send(t *testing.T, method, target, body string) int {
	t.Helper()
	req, err := http.NewRequest(method, s.srv.URL+target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestWriteSpansAndMetrics checks the write handlers' spans and metrics:
// a server span per request with the documents written, an insert or
// delete span under it, the request histogram by method, route and
// status, and the written values nowhere in the spans.
func TestWriteSpansAndMetrics(t *testing.T) {
	s := newService(t, nil)
	before := s.collect(t) // the seed's inserts
	if code := s.send(t, http.MethodPost, "/people", `{"name":"`+secret+`","age":`+secretNumber+`}`); code != http.StatusCreated {
		t.Fatalf("insert: status %d", code)
	}
	if code := s.send(t, http.MethodDelete, "/people/"+s.ids[0].Hex(), ""); code != http.StatusNoContent {
		t.Fatalf("delete: status %d", code)
	}
	spans := s.waitSpans(t, 4)
	if len(spans) != 4 {
		t.Fatalf("%d spans, want two requests' and their commands': %v", len(spans), names(spans))
	}
	checkSpansHaveNoSecret(t, spans)
	for i, want := range []struct {
		name, child string
		status      int64
	}{
		{"POST /people", "insert people", 201},
		{"DELETE /people/{id}", "delete people", 204},
	} {
		child, server := spans[2*i], spans[2*i+1]
		sa := attrs(server.Attributes)
		if server.Name != want.name || server.SpanKind != trace.SpanKindServer ||
			sa["http.response.status_code"].AsInt64() != want.status || sa["mongohttp.documents"].AsInt64() != 1 {
			t.Errorf("span %q (%v): %v", server.Name, server.SpanKind, server.Attributes)
		}
		if child.Name != want.child || child.SpanKind != trace.SpanKindClient || child.Parent.SpanID() != server.SpanContext.SpanID() {
			t.Errorf("span %q (%v) under %s, want %q under the request's %s", child.Name, child.SpanKind, child.Parent.SpanID(), want.child, server.SpanContext.SpanID())
		}
	}

	rm := s.waitRequests(t, 2)
	for _, c := range []struct {
		method, route string
		status        int
	}{{"POST", "/people", 201}, {"DELETE", "/people/{id}", 204}} {
		match := []attribute.KeyValue{attribute.String("http.request.method", c.method),
			attribute.String("http.route", c.route), attribute.Int("http.response.status_code", c.status)}
		if got := histogramCount(t, rm, "http.server.request.duration", match...); got != 1 {
			t.Errorf("http.server.request.duration%v: count %d, want 1", match, got)
		}
	}
	for _, op := range []string{"insert", "delete"} {
		name := attribute.String("db.operation.name", op)
		if got := histogramCount(t, rm, "db.client.operation.duration", name) - histogramCount(t, before, "db.client.operation.duration", name); got != 1 {
			t.Errorf("db.client.operation.duration of %s: moved by %d, want 1", op, got)
		}
	}
}
