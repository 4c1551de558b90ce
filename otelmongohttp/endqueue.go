package otelmongohttp

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// maxHeld is how many spans an endQueue holds before it ends them without
// waiting for its delay.
const maxHeld = 256

// endQueue holds the spans of finished requests and ends them together,
// each at its own end time, once maxHeld are waiting or its delay has
// passed since the first. A batching span processor wakes its goroutine
// for each span it is handed while idle; handed many at once, it wakes
// once for them all, and those wake-ups are most of what a traced request
// costs a service that is not saturated.
type endQueue struct {
	delay time.Duration
	timer *time.Timer // armed while spans are held

	mu    sync.Mutex
	held  []heldSpan
	spare []heldSpan // a batch's buffer, once ended, for the next
}

// heldSpan is a span and the option that ends it at its time.
type heldSpan struct {
	span trace.Span
	end  [1]trace.SpanEndOption
}

func newEndQueue(delay time.Duration) *endQueue {
	q := &endQueue{delay: delay}
	q.timer = time.AfterFunc(time.Hour, q.flush)
	q.timer.Stop()
	return q
}

// hold keeps the spans of a request (its commands' and then its own), or
// ends them with those held when the queue is full.
func (q *endQueue) hold(rc *requestContext, at time.Time) {
	q.mu.Lock()
	if len(q.held) == 0 {
		q.timer.Reset(q.delay)
	}
	for _, f := range rc.takeFinished() {
		q.held = append(q.held, heldSpan(f))
	}
	q.held = append(q.held, heldSpan{span: rc.span, end: [1]trace.SpanEndOption{trace.WithTimestamp(at)}})
	var batch []heldSpan
	if len(q.held) >= maxHeld {
		batch = q.take()
	}
	q.mu.Unlock()
	q.end(batch)
}

// take returns the held spans and empties the queue; q.mu is held.
func (q *endQueue) take() []heldSpan {
	batch := q.held
	q.held, q.spare = q.spare, nil
	q.timer.Stop()
	return batch
}

// end ends the spans of batch and keeps its buffer for another.
func (q *endQueue) end(batch []heldSpan) {
	if batch == nil {
		return
	}
	for i := range batch {
		batch[i].span.End(batch[i].end[:]...)
	}
	clear(batch)
	q.mu.Lock()
	if q.spare == nil {
		q.spare = batch[:0]
	}
	q.mu.Unlock()
}

// flush ends every span held.
func (q *endQueue) flush() {
	q.mu.Lock()
	batch := q.take()
	q.mu.Unlock()
	q.end(batch)
}

// ForceFlush ends the spans the Observer holds (see Config.BatchEnds), so
// that the TracerProvider's processors have them; call it before the
// TracerProvider's Shutdown. Without BatchEnds it does nothing.
func (o *Observer) ForceFlush(ctx context.Context) error {
	if o.ends != nil {
		o.ends.flush()
	}
	return ctx.Err()
}
