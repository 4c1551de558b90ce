package otelmongohttp_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/mongohttp/mongohttp"
	"github.com/mongohttp/mongohttp/otelmongohttp"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }

func BenchmarkAdapterHooks(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discard{}))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	obs, err := otelmongohttp.New(otelmongohttp.Config{TracerProvider: tp, MeterProvider: mp})
	if err != nil {
		b.Fatal(err)
	}
	cm := obs.CommandMonitor()
	cmd, _ := bson.Marshal(bson.D{{Key: "find", Value: "users"}, {Key: "filter", Value: bson.D{}}})
	r := httptest.NewRequest("GET", "/users/5feee5b37448184aad5332d6", nil)
	b.ReportAllocs()
	var id int64
	for b.Loop() {
		rep := &mongohttp.RequestReport{Handler: "findOne", Collection: "users", Database: "db", Route: "/users/{id}", Method: "GET", RequestID: "0123456789abcdef"}
		ctx := obs.StartRequest(r, rep)
		id++
		cm.Started(ctx, &event.CommandStartedEvent{Command: cmd, DatabaseName: "db", CommandName: "find", RequestID: id, ConnectionID: "127.0.0.1:27017[-3]"})
		cm.Succeeded(ctx, &event.CommandSucceededEvent{CommandFinishedEvent: event.CommandFinishedEvent{Duration: time.Millisecond, CommandName: "find", DatabaseName: "db", RequestID: id, ConnectionID: "127.0.0.1:27017[-3]"}})
		rep.Status, rep.Documents, rep.Bytes, rep.Duration = 200, 1, 213, 2*time.Millisecond
		obs.EndRequest(ctx, rep)
	}
}
