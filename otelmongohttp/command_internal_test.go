package otelmongohttp

import (
	"context"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// TestFailedCommand feeds the command monitor the events of a command the
// server refused, under a sampled span, and checks the command's span and
// metric: the attributes of every command, in their order, then the
// failure's.
func TestFailedCommand(t *testing.T) {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	o, err := New(Config{TracerProvider: tp, MeterProvider: mp})
	if err != nil {
		t.Fatal(err)
	}
	ctx, parent := tp.Tracer("test").Start(context.Background(), "request")
	cmd, _ := bson.Marshal(bson.D{{Key: "find", Value: "people"}, {Key: "filter", Value: bson.D{}}})
	cm := o.CommandMonitor()
	for i := range 2 { // the second finds its attributes made
		id := int64(100 + i)
		cm.Started(ctx, &event.CommandStartedEvent{Command: cmd, DatabaseName: "app", CommandName: "find", RequestID: id, ConnectionID: "db.example:27017[-4]"})
		cm.Failed(ctx, &event.CommandFailedEvent{
			CommandFinishedEvent: event.CommandFinishedEvent{Duration: time.Millisecond, CommandName: "find", DatabaseName: "app", RequestID: id, ConnectionID: "db.example:27017[-4]"},
			Failure:              mongo.CommandError{Code: 50, Name: "MaxTimeMSExpired", Message: "operation exceeded time limit"},
		})
	}
	parent.End()

	ended := spans.Ended()
	if len(ended) != 3 {
		t.Fatalf("%d spans, want 3", len(ended))
	}
	for _, sp := range ended[:2] {
		var got []string
		for _, kv := range sp.Attributes() {
			got = append(got, string(kv.Key)+"="+kv.Value.String())
		}
		want := []string{
			"db.system.name=mongodb", "db.operation.name=find", "db.namespace=app", "db.collection.name=people",
			"server.address=db.example", "server.port=27017", "error.type=MaxTimeMSExpired", "db.response.status_code=50",
		}
		if len(got) != len(want) {
			t.Fatalf("span %q attributes %v, want %v", sp.Name(), got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("span %q attribute %d: %s, want %s", sp.Name(), i, got[i], want[i])
			}
		}
		if sp.Name() != "find people" || sp.Status().Code != codes.Error || sp.Status().Description != "MaxTimeMSExpired" {
			t.Errorf("span %q, status %v", sp.Name(), sp.Status())
		}
		if sp.Parent().SpanID() != parent.SpanContext().SpanID() {
			t.Errorf("span %q is not the request's child", sp.Name())
		}
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var count uint64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "db.client.operation.duration" {
				continue
			}
			for _, dp := range m.Data.(metricdata.Histogram[float64]).DataPoints {
				if v, _ := dp.Attributes.Value(attribute.Key("error.type")); v.AsString() == "MaxTimeMSExpired" {
					count += dp.Count
				}
			}
		}
	}
	if count != 2 {
		t.Errorf("db.client.operation.duration counts %d failed finds, want 2", count)
	}
}
