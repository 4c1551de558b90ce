package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mongohttp/mongohttp"
	"github.com/mongohttp/mongohttp/otelmongohttp"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
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

// providers makes the tracer and meter providers of an instrumented
// variant: spans sampled as -otel-sample says, batched by the SDK to an
// exporter that drops them; metrics into a Prometheus registry.
func providers(sc serveConfig) (*sdktrace.TracerProvider, *sdkmetric.MeterProvider, error) {
	mp, _, err := otelmongohttp.Prometheus()
	if err != nil {
		return nil, nil, err
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discardSpans{}),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(sc.OtelSample))))
	return tp, mp, nil
}

// otelRoutes mounts the observed variant's handlers on mux (rawReads).
func otelRoutes(ctx context.Context, mux *http.ServeMux, sc serveConfig, policy mongohttp.Policy, maxTime time.Duration, admission mongohttp.Admission) (func(context.Context) error, error) {
	tp, mp, err := providers(sc)
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
	rawReads(client, sc, policy, maxTime, admission, func(pattern string, h http.Handler) {
		mux.Handle("GET /"+variantOtel+pattern, h)
	})
	return closeAll, nil
}

// variantOtelHTTP is variantRaw instrumented the usual way instead, for
// comparison: each handler wrapped in otelhttp.NewHandler (a server span
// and the HTTP server metrics), on a client whose command monitor starts
// and ends a client span per command and records its duration, as the
// OpenTelemetry contrib instrumentation of the driver does. Same tracer
// provider setup and sampling as variantOtel; no batched ends.
const variantOtelHTTP = "mongohttp-otelhttp"

// otelHTTPRoutes mounts variantOtelHTTP's handlers on mux.
func otelHTTPRoutes(ctx context.Context, mux *http.ServeMux, sc serveConfig, policy mongohttp.Policy, maxTime time.Duration, admission mongohttp.Admission) (func(context.Context) error, error) {
	tp, mp, err := providers(sc)
	if err != nil {
		return nil, err
	}
	cs, err := newCommandSpans(tp, mp)
	if err != nil {
		return nil, err
	}
	client, err := mongohttp.ConnectConfig(ctx, mongohttp.Config{URI: sc.URI, Options: options.Client().SetMonitor(cs.monitor())})
	if err != nil {
		return nil, err
	}
	closeAll := func(ctx context.Context) error {
		return errors.Join(client.Close(ctx), tp.Shutdown(ctx), mp.Shutdown(ctx))
	}
	if err := client.Ping(ctx); err != nil {
		_ = closeAll(ctx)
		return nil, fmt.Errorf("instrumented client: %w", err)
	}
	rawReads(client, sc, policy, maxTime, admission, func(pattern string, h http.Handler) {
		mux.Handle("GET /"+variantOtelHTTP+pattern, otelhttp.NewHandler(h, "GET "+pattern,
			otelhttp.WithTracerProvider(tp), otelhttp.WithMeterProvider(mp)))
	})
	return closeAll, nil
}

// commandSpans makes a client span of each command, started and ended
// with the driver's events, and records each command's duration, with
// the conventions' attributes made for each event.
type commandSpans struct {
	tracer   trace.Tracer
	duration metric.Float64Histogram
	spans    sync.Map // the driver's request id → trace.Span
}

func newCommandSpans(tp trace.TracerProvider, mp metric.MeterProvider) (*commandSpans, error) {
	d, err := mp.Meter("bench").Float64Histogram("db.client.operation.duration", metric.WithUnit("s"))
	return &commandSpans{tracer: tp.Tracer("bench"), duration: d}, err
}

func (cs *commandSpans) monitor() *event.CommandMonitor {
	return &event.CommandMonitor{
		Started: func(ctx context.Context, e *event.CommandStartedEvent) {
			coll, _ := e.Command.Index(0).Value().StringValueOK()
			if e.CommandName == "getMore" {
				coll, _ = e.Command.Lookup("collection").StringValueOK()
			}
			attrs := []attribute.KeyValue{semconv.DBSystemNameMongoDB, semconv.DBOperationName(e.CommandName),
				semconv.DBNamespace(e.DatabaseName), semconv.DBCollectionName(coll)}
			server, _, _ := strings.Cut(e.ConnectionID, "[")
			if host, port, err := net.SplitHostPort(server); err == nil {
				p, _ := strconv.Atoi(port)
				attrs = append(attrs, semconv.ServerAddress(host), semconv.ServerPort(p))
			}
			_, span := cs.tracer.Start(ctx, e.CommandName+" "+coll, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
			cs.spans.Store(e.RequestID, span)
		},
		Succeeded: func(ctx context.Context, e *event.CommandSucceededEvent) {
			cs.finished(ctx, &e.CommandFinishedEvent, nil)
		},
		Failed: func(ctx context.Context, e *event.CommandFailedEvent) {
			cs.finished(ctx, &e.CommandFinishedEvent, e.Failure)
		},
	}
}

func (cs *commandSpans) finished(ctx context.Context, e *event.CommandFinishedEvent, failure error) {
	if v, ok := cs.spans.LoadAndDelete(e.RequestID); ok {
		span := v.(trace.Span)
		if failure != nil {
			span.SetStatus(codes.Error, "command failed")
		}
		span.End()
	}
	cs.duration.Record(ctx, e.Duration.Seconds(), metric.WithAttributes(semconv.DBSystemNameMongoDB,
		semconv.DBOperationName(e.CommandName), semconv.DBNamespace(e.DatabaseName)))
}
