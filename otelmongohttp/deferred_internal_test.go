package otelmongohttp

import (
	"context"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// TestDeferredCommandSpans checks that the spans of a request's finished
// commands end with the request's, at their own end times, before it; that
// past maxDeferred, and once the request has ended, commands end their
// spans themselves.
func TestDeferredCommandSpans(t *testing.T) {
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	defer tp.Shutdown(context.Background())
	tracer := tp.Tracer("test")
	ctx, server := tracer.Start(context.Background(), "request")
	rc := &requestContext{Context: ctx, span: server}

	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := range maxDeferred + 1 {
		_, span := tracer.Start(ctx, "command", trace.WithTimestamp(base))
		at := base.Add(time.Duration(i+1) * time.Millisecond)
		if !rc.deferEnd(span, at) {
			if i != maxDeferred {
				t.Fatalf("command %d was not kept", i)
			}
			span.End(trace.WithTimestamp(at))
		}
	}
	if got := len(spans.GetSpans()); got != 1 {
		t.Fatalf("%d spans ended before the request, want the one past the bound", got)
	}
	rc.endCommands()
	server.End()
	got := spans.GetSpans()
	if len(got) != maxDeferred+2 {
		t.Fatalf("%d spans, want %d", len(got), maxDeferred+2)
	}
	for i, s := range got[1 : maxDeferred+1] {
		if want := base.Add(time.Duration(i+1) * time.Millisecond); !s.EndTime.Equal(want) || s.Parent.SpanID() != server.SpanContext().SpanID() {
			t.Errorf("command %d ended at %v under %s, want %v under the request", i, s.EndTime, s.Parent.SpanID(), want)
		}
	}
	if last := got[len(got)-1]; last.Name != "request" {
		t.Errorf("the last span ended is %q, want the request's", last.Name)
	}
	_, late := tracer.Start(ctx, "late")
	if rc.deferEnd(late, time.Now()) {
		t.Error("a command finishing after its request was kept")
	}
	late.End()
}
