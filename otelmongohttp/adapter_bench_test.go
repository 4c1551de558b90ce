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

// discard is a span exporter that drops the spans: exporting is the
// collector's cost, not the adapter's.
type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }

// BenchmarkAdapterHooks measures what the adapter adds to one request
// with one command, without the server or the HTTP around it: the
// request's span and the command's (when the request is traced), their
// metrics (always). go test -bench AdapterHooks -cpuprofile cpu.out shows
// where it goes.
func BenchmarkAdapterHooks(b *testing.B) {
	for _, c := range []struct {
		name    string
		sampler sdktrace.Sampler
	}{
		{"traced", sdktrace.AlwaysSample()},
		{"untraced", sdktrace.NeverSample()},
	} {
		b.Run(c.name, func(b *testing.B) {
			tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discard{}), sdktrace.WithSampler(c.sampler))
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
			defer tp.Shutdown(context.Background())
			obs, err := otelmongohttp.New(otelmongohttp.Config{TracerProvider: tp, MeterProvider: mp})
			if err != nil {
				b.Fatal(err)
			}
			cm := obs.CommandMonitor()
			cmd, _ := bson.Marshal(bson.D{{Key: "find", Value: "users"}, {Key: "filter", Value: bson.D{}}})
			r := httptest.NewRequest("GET", "/users/5feee5b37448184aad5332d6", nil)
			started := &event.CommandStartedEvent{Command: cmd, DatabaseName: "db", CommandName: "find", ConnectionID: "127.0.0.1:27017[-3]"}
			succeeded := &event.CommandSucceededEvent{CommandFinishedEvent: event.CommandFinishedEvent{
				Duration: time.Millisecond, CommandName: "find", DatabaseName: "db", ConnectionID: "127.0.0.1:27017[-3]",
			}}
			rep := &mongohttp.RequestReport{}
			b.ReportAllocs()
			for b.Loop() {
				*rep = mongohttp.RequestReport{Handler: "findOne", Collection: "users", Database: "db", Route: "/users/{id}", Method: "GET", RequestID: "0123456789abcdef"}
				ctx := obs.StartRequest(r, rep)
				started.RequestID++
				succeeded.RequestID = started.RequestID
				cm.Started(ctx, started)
				cm.Succeeded(ctx, succeeded)
				rep.Status, rep.Documents, rep.Bytes, rep.Duration = 200, 1, 213, 2*time.Millisecond
				obs.EndRequest(ctx, rep)
			}
		})
	}
}
