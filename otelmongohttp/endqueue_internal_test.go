package otelmongohttp

import (
	"context"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// TestEndQueue checks that held spans reach the processors only when the
// queue is flushed, full or past its delay, each at its own end time.
func TestEndQueue(t *testing.T) {
	spans := tracetest.NewInMemoryExporter()
	exported := make(chan struct{}, 4096) // a signal per span ended
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(notifyingExporter{spans, exported}))
	defer tp.Shutdown(context.Background())
	tracer := tp.Tracer("test")
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

	// request starts a request's span with one finished command below it.
	request := func(at time.Time) *requestContext {
		ctx, server := tracer.Start(context.Background(), "request", trace.WithTimestamp(at))
		rc := &requestContext{Context: ctx, span: server}
		_, cmd := tracer.Start(ctx, "command", trace.WithTimestamp(at))
		if !rc.deferEnd(cmd, at.Add(time.Millisecond)) {
			t.Error("the command was not kept") // not Fatal: called from goroutines too
			cmd.End()
		}
		return rc
	}

	t.Run("flush", func(t *testing.T) {
		spans.Reset()
		o := &Observer{ends: newEndQueue(time.Hour)}
		rc := request(base)
		o.ends.hold(rc, base.Add(2*time.Millisecond))
		if n := len(spans.GetSpans()); n != 0 {
			t.Fatalf("%d spans ended before the flush", n)
		}
		if err := o.ForceFlush(context.Background()); err != nil {
			t.Fatal(err)
		}
		got := spans.GetSpans()
		if len(got) != 2 {
			t.Fatalf("%d spans after the flush, want 2", len(got))
		}
		for _, s := range got {
			want := map[string]time.Time{"command": base.Add(time.Millisecond), "request": base.Add(2 * time.Millisecond)}[s.Name]
			if !s.EndTime.Equal(want) {
				t.Errorf("%s ended at %v, want %v", s.Name, s.EndTime, want)
			}
		}
		_, late := tracer.Start(rc, "late")
		if rc.deferEnd(late, time.Now()) {
			t.Error("a command finishing after its request was held")
		}
		late.End()
		if err := o.ForceFlush(context.Background()); err != nil || len(spans.GetSpans()) != 3 {
			t.Errorf("a flush of an empty queue: %v, %d spans, want 3", err, len(spans.GetSpans()))
		}
	})

	t.Run("full", func(t *testing.T) {
		spans.Reset()
		q := newEndQueue(time.Hour)
		for i := range maxHeld / 2 {
			q.hold(request(base.Add(time.Duration(i)*time.Second)), base)
		}
		if n := len(spans.GetSpans()); n != maxHeld {
			t.Fatalf("%d spans ended once %d were held, want all of them", n, maxHeld)
		}
		q.hold(request(base), base)
		if n := len(spans.GetSpans()); n != maxHeld {
			t.Errorf("%d spans ended after one more request, want it held", n)
		}
		q.flush()
		if n := len(spans.GetSpans()); n != maxHeld+2 {
			t.Errorf("%d spans after the flush, want %d", n, maxHeld+2)
		}
	})

	t.Run("delay", func(t *testing.T) {
		spans.Reset()
		for len(exported) > 0 {
			<-exported
		}
		q := newEndQueue(10 * time.Millisecond)
		timeout := time.After(10 * time.Second)
		wait := func(n int) {
			for range n {
				select {
				case <-exported:
				case <-timeout:
					t.Fatalf("%d spans ended 10 s after the first request, want %d once its 10 ms passed", len(spans.GetSpans()), n)
				}
			}
		}
		q.hold(request(base), base)
		wait(2)
		q.hold(request(base), base) // the timer rearms for the next batch
		wait(2)
		if n := len(spans.GetSpans()); n != 4 {
			t.Errorf("%d spans, want 4", n)
		}
	})

	t.Run("concurrent", func(t *testing.T) {
		// Holds, timed flushes, full batches and ForceFlush at once: once
		// every hold has returned, a flush leaves no span unended.
		spans.Reset()
		o := &Observer{ends: newEndQueue(time.Millisecond)}
		const workers, each = 8, 100
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for i := range each {
					o.ends.hold(request(base), base)
					if i%25 == 0 {
						_ = o.ForceFlush(context.Background())
					}
				}
			})
		}
		wg.Wait()
		if err := o.ForceFlush(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n := len(spans.GetSpans()); n != 2*workers*each {
			t.Errorf("%d spans ended, want %d", n, 2*workers*each)
		}
	})
}

// notifyingExporter is the in-memory exporter, which signals each span it
// is given.
type notifyingExporter struct {
	*tracetest.InMemoryExporter
	exported chan<- struct{}
}

func (e notifyingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := e.InMemoryExporter.ExportSpans(ctx, spans)
	for range spans {
		select {
		case e.exported <- struct{}{}:
		default:
		}
	}
	return err
}
