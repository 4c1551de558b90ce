package main

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// TestCommandSpans checks the comparison variant's command monitor: a
// client span per command under the request's span, ended by its
// command's end, a failed one with an error status, and a duration
// recorded for each.
func TestCommandSpans(t *testing.T) {
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	cs, err := newCommandSpans(tp, mp)
	if err != nil {
		t.Fatal(err)
	}
	m := cs.monitor()
	ctx, request := tp.Tracer("test").Start(context.Background(), "GET /users/{id}")
	find, _ := bson.Marshal(bson.D{{Key: "find", Value: "users"}, {Key: "filter", Value: bson.D{}}})
	getMore, _ := bson.Marshal(bson.D{{Key: "getMore", Value: int64(7)}, {Key: "collection", Value: "users"}})
	for i, cmd := range []struct {
		name string
		doc  bson.Raw
		err  error
	}{{"find", find, nil}, {"getMore", getMore, errors.New("cursor not found")}} {
		id := int64(i + 1)
		m.Started(ctx, &event.CommandStartedEvent{Command: cmd.doc, DatabaseName: "db", CommandName: cmd.name, RequestID: id, ConnectionID: "127.0.0.1:27017[-1]"})
		fin := event.CommandFinishedEvent{CommandName: cmd.name, DatabaseName: "db", RequestID: id, Duration: time.Millisecond}
		if cmd.err != nil {
			m.Failed(ctx, &event.CommandFailedEvent{CommandFinishedEvent: fin, Failure: cmd.err})
		} else {
			m.Succeeded(ctx, &event.CommandSucceededEvent{CommandFinishedEvent: fin})
		}
	}
	request.End()

	got := spans.GetSpans()
	if len(got) != 3 {
		t.Fatalf("%d spans, want 3", len(got))
	}
	for i, want := range []struct {
		name   string
		status codes.Code
	}{{"find users", codes.Unset}, {"getMore users", codes.Error}} {
		s := got[i]
		if s.Name != want.name || s.Status.Code != want.status || s.SpanKind != trace.SpanKindClient ||
			s.Parent.SpanID() != request.SpanContext().SpanID() || len(s.Attributes) != 6 {
			t.Errorf("span %d: %q, %v, kind %v, under %s, %d attributes; want %q, %v, a client span under the request with 6",
				i, s.Name, s.Status.Code, s.SpanKind, s.Parent.SpanID(), len(s.Attributes), want.name, want.status)
		}
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var count uint64
	for _, sm := range rm.ScopeMetrics {
		for _, metric := range sm.Metrics {
			if h, ok := metric.Data.(metricdata.Histogram[float64]); ok && metric.Name == "db.client.operation.duration" {
				for _, p := range h.DataPoints {
					count += p.Count
				}
			}
		}
	}
	if count != 2 {
		t.Errorf("%d durations recorded, want 2", count)
	}
}
