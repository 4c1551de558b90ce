package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/mongohttp/mongohttp"
	"github.com/mongohttp/mongohttp/otelmongohttp"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// telemetry is the service's observability: the metrics that /metrics
// serves in the Prometheus text format and, with -trace, each request's
// spans printed to standard error as they end, one line each.
type telemetry struct {
	Observer *otelmongohttp.Observer
	metrics  http.Handler
	closers  []func(context.Context) error
	pool     metric.Registration
}

// newTelemetry builds the telemetry; spans go to traceTo, or nowhere when
// it is nil (the trace context of requests still reaches the database's
// comments).
func newTelemetry(traceTo io.Writer) (*telemetry, error) {
	mp, metrics, err := otelmongohttp.Prometheus()
	if err != nil {
		return nil, err
	}
	t := &telemetry{metrics: metrics, closers: []func(context.Context) error{mp.Shutdown}}
	var tp trace.TracerProvider = noop.NewTracerProvider()
	if traceTo != nil {
		// Synchronous, so that a span is on the terminal when its request
		// is answered: this is for reading, not for production.
		sdkTP := sdktrace.NewTracerProvider(sdktrace.WithSyncer(&lineExporter{w: traceTo}))
		t.closers = append(t.closers, sdkTP.Shutdown)
		tp = sdkTP
	}
	if t.Observer, err = otelmongohttp.New(otelmongohttp.Config{TracerProvider: tp, MeterProvider: mp}); err != nil {
		return nil, err
	}
	return t, nil
}

// observePool adds the client's pool gauges to the metrics.
func (t *telemetry) observePool(c *mongohttp.Client) error {
	reg, err := t.Observer.ObservePool(c, "example")
	t.pool = reg
	return err
}

// MetricsHandler serves the metrics in the Prometheus text format, on the
// operator listener next to /debug/pool, never on the public address.
func (t *telemetry) MetricsHandler() http.Handler { return getOnly(t.metrics) }

// close stops the gauges and flushes and stops the providers.
func (t *telemetry) close(ctx context.Context) error {
	var errs []error
	if t.pool != nil {
		errs = append(errs, t.pool.Unregister())
	}
	for _, c := range t.closers {
		errs = append(errs, c(ctx))
	}
	return errors.Join(errs...)
}

// lineExporter prints each span on one line as it ends, children before
// their parent:
//
//	span find users (client) 1.234ms trace=4bf9… id=e6b6… parent=9fcc… db.system.name=mongodb …
//
// A span's parent names the span it belongs to: the commands' parent is
// the request's span, whose parent is the caller's (remote) when the
// request came with a traceparent header.
type lineExporter struct {
	mu sync.Mutex
	w  io.Writer
}

func (e *lineExporter) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range spans {
		var b strings.Builder
		fmt.Fprintf(&b, "span %s (%s) %s trace=%s id=%s", s.Name(), s.SpanKind(),
			s.EndTime().Sub(s.StartTime()).Round(time.Microsecond), s.SpanContext().TraceID(), s.SpanContext().SpanID())
		if p := s.Parent(); p.IsValid() {
			fmt.Fprintf(&b, " parent=%s", p.SpanID())
			if p.IsRemote() {
				b.WriteString("(remote)")
			}
		}
		if st := s.Status(); st.Code == codes.Error {
			fmt.Fprintf(&b, " error=%q", st.Description)
		}
		for _, kv := range s.Attributes() {
			fmt.Fprintf(&b, " %s=%s", kv.Key, kv.Value.String())
		}
		b.WriteByte('\n')
		if _, err := io.WriteString(e.w, b.String()); err != nil {
			return err
		}
	}
	return nil
}

func (e *lineExporter) Shutdown(context.Context) error { return nil }
