package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/mongohttp/mongohttp"
	"github.com/mongohttp/mongohttp/otelmongohttp"
	"go.mongodb.org/mongo-driver/v2/bson"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// variantOtel is variantRaw observed by otelmongohttp, on a client of its
// own with the Observer in its Config (so the client's command monitor
// runs for it alone): the share -otel-sample of requests traced (default
// every one, the SDK's default), the spans ended in batches (BatchEnds)
// and batched by the SDK to an exporter that drops them, the metrics of
// every request recorded into a Prometheus registry. Its CPU per request,
// next to variantRaw's, is the cost of the observing.
const variantOtel = "mongohttp-otel"

// otelBatchEnds is the variant's otelmongohttp.Config.BatchEnds.
const otelBatchEnds = 100 * time.Millisecond

// discardSpans is a span exporter that drops what it is given: the
// serialising and sending an exporter does is the collector's cost, not
// the adapter's.
type discardSpans struct{}

func (discardSpans) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardSpans) Shutdown(context.Context) error                             { return nil }

// otelRoutes mounts the observed variant's handlers on mux: pages of each
// of pageColls and documents of findOneColl, as for variantRaw.
func otelRoutes(ctx context.Context, mux *http.ServeMux, sc serveConfig, policy mongohttp.Policy, maxTime time.Duration, admission mongohttp.Admission) (func(context.Context) error, error) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discardSpans{}),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(sc.OtelSample))))
	mp, _, err := otelmongohttp.Prometheus()
	if err != nil {
		return nil, err
	}
	obs, err := otelmongohttp.New(otelmongohttp.Config{TracerProvider: tp, MeterProvider: mp, BatchEnds: otelBatchEnds})
	if err != nil {
		return nil, err
	}
	client, err := mongohttp.ConnectConfig(ctx, mongohttp.Config{URI: sc.URI, Observer: obs})
	if err != nil {
		return nil, err
	}
	reg, err := obs.ObservePool(client, "bench")
	if err != nil {
		return nil, err
	}
	closeAll := func(ctx context.Context) error {
		return errors.Join(reg.Unregister(), client.Close(ctx), obs.ForceFlush(ctx), tp.Shutdown(ctx), mp.Shutdown(ctx))
	}
	if err := client.Ping(ctx); err != nil {
		_ = closeAll(ctx)
		return nil, fmt.Errorf("observed client: %w", err)
	}
	db := client.Database(sc.Database)
	decl := func(coll string) mongohttp.Collection[bson.Raw] {
		return mongohttp.Collection[bson.Raw]{Coll: db.Collection(coll), Policy: policy, MaxTime: maxTime, Admission: admission}
	}
	for _, name := range sc.PageColls {
		mux.Handle("GET /"+variantOtel+"/page/"+name, mongohttp.Must(mongohttp.New(decl(name))).Find())
	}
	mux.Handle("GET /"+variantOtel+"/users/{id}", mongohttp.Must(mongohttp.New(decl(sc.FindOneColl))).FindOne())
	return closeAll, nil
}
