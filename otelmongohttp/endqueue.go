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
// once for them all. To a service that mostly waits on its database those
// wake-ups can cost more than the spans: one request at a time, a traced
// page of 10 cost 1.28× the untraced one's CPU with each request's spans
// ended as it ended, 1.06× with batches.
type endQueue struct {
	delay time.Duration
	timer *time.Timer // armed while spans are held

	// ending is held while a batch is taken and ended, so that a flush
	// returns only once every span held before it has ended, including
	// those of a batch another goroutine took just before.
	ending sync.Mutex

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
	full := len(q.held) >= maxHeld
	q.mu.Unlock()
	if full {
		q.flush()
	}
}

// flush ends every span held.
func (q *endQueue) flush() {
	q.ending.Lock()
	defer q.ending.Unlock()
	q.mu.Lock()
	batch := q.held
	q.held, q.spare = q.spare, nil
	q.timer.Stop()
	q.mu.Unlock()
	if len(batch) == 0 {
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

// ForceFlush ends the spans the Observer holds (see Config.BatchEnds), so
// that the TracerProvider's processors have them; call it before the
// TracerProvider's Shutdown. Without BatchEnds it does nothing.
func (o *Observer) ForceFlush(ctx context.Context) error {
	if o.ends != nil {
		o.ends.flush()
	}
	return ctx.Err()
}
