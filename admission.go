package mongohttp

import (
	"context"
	"errors"
	"sync/atomic"
	"time"
)

// Admission bounds how many requests run their queries at once. A request
// that finds every place taken waits in a short queue; one that finds the
// queue full, or waits longer than MaxWait, is answered at once with 503
// problem+json, code "overloaded", and a Retry-After header. So under a
// burst the server keeps doing useful work at the pace it can sustain,
// instead of running everything at once until every query times out.
//
// Every handler made from a Resource has its own bound (Collection.Admission),
// so an expensive endpoint cannot take the places of a cheap one, and every
// request also counts against its client's bound (Config.Admission), which
// protects the database as a whole.
type Admission struct {
	// MaxActive is how many requests may run at once. Default (0) is
	// DefaultMaxActive for a handler and DefaultClientMaxActive for a
	// client. A negative value removes the bound (and the queue).
	MaxActive int

	// MaxQueued is how many requests may wait for a place. Default (0) is
	// sixteen times MaxActive: waiting costs little, and MaxWait, not the
	// queue's length, is what keeps slow requests from piling up. A
	// negative value means none wait.
	MaxQueued int

	// MaxWait is the longest a request waits in the queue before it is
	// refused; the request's own context can end the wait sooner. Default
	// is DefaultMaxWait (1 s).
	MaxWait time.Duration
}

// Admission defaults, for a small database server: a handler runs at most 8
// requests at once and a client 64, below the driver's pool of 100
// connections so that requests wait here, bounded, rather than in the pool.
const (
	DefaultMaxActive       = 8
	DefaultClientMaxActive = 64
	DefaultMaxWait         = time.Second
)

func (a Admission) check() error {
	if a.MaxWait < 0 {
		return errors.New("MaxWait is negative")
	}
	return nil
}

// limiter returns a handler's limiter, nil when unbounded.
func (a Admission) limiter() *limiter { return a.newLimiter(DefaultMaxActive) }

func (a Admission) newLimiter(defaultActive int) *limiter {
	active := a.MaxActive
	switch {
	case active < 0:
		return nil
	case active == 0:
		active = defaultActive
	}
	queued := a.MaxQueued
	switch {
	case queued < 0:
		queued = 0
	case queued == 0:
		queued = 16 * active
	}
	wait := a.MaxWait
	if wait == 0 {
		wait = DefaultMaxWait
	}
	return &limiter{slots: make(chan struct{}, active), maxQueued: int64(queued), maxWait: wait}
}

// limiter is a semaphore with a bounded queue.
type limiter struct {
	slots     chan struct{}
	queued    atomic.Int64
	maxQueued int64
	maxWait   time.Duration

	admitted, refused atomic.Uint64
	waitNanos         atomic.Int64
}

// acquire takes a place, waiting in the queue if need be. On success the
// caller must call release. The fast path, a free place, does not allocate.
func (l *limiter) acquire(ctx context.Context) error {
	if l == nil {
		return nil
	}
	select {
	case l.slots <- struct{}{}:
		l.admitted.Add(1)
		return nil
	default:
	}
	if l.queued.Add(1) > l.maxQueued {
		l.queued.Add(-1)
		l.refused.Add(1)
		return ErrOverloaded.Detailf("the server is busy; retry later")
	}
	defer l.queued.Add(-1)
	start := time.Now()
	t := time.NewTimer(l.maxWait)
	defer t.Stop()
	select {
	case l.slots <- struct{}{}:
		l.admitted.Add(1)
		l.waitNanos.Add(int64(time.Since(start)))
		return nil
	case <-t.C:
		l.refused.Add(1)
		l.waitNanos.Add(int64(time.Since(start)))
		return ErrOverloaded.Detailf("the server is busy; retry later")
	case <-ctx.Done():
		l.waitNanos.Add(int64(time.Since(start)))
		return ctx.Err()
	}
}

func (l *limiter) release() {
	if l != nil {
		<-l.slots
	}
}

// AdmissionStats is a snapshot of a limiter. Each field says whether it is
// current or cumulative.
type AdmissionStats struct {
	// Active is the number of requests running now. Current.
	Active int64
	// Queued is the number of requests waiting for a place now. Current.
	Queued int64
	// Admitted counts the requests let through. Cumulative.
	Admitted uint64
	// Refused counts the requests answered 503 "overloaded". Cumulative.
	Refused uint64
	// WaitTotal is the time requests spent in the queue. Cumulative.
	WaitTotal time.Duration
}

func (l *limiter) stats() AdmissionStats {
	if l == nil {
		return AdmissionStats{}
	}
	return AdmissionStats{
		Active: int64(len(l.slots)), Queued: l.queued.Load(),
		Admitted: l.admitted.Load(), Refused: l.refused.Load(),
		WaitTotal: time.Duration(l.waitNanos.Load()),
	}
}

// admit takes a place in the handler's limiter, then in its client's. On
// success the caller must call leave with the same limiters.
func admit(ctx context.Context, handler, client *limiter) error {
	if err := handler.acquire(ctx); err != nil {
		return err
	}
	if err := client.acquire(ctx); err != nil {
		handler.release()
		return err
	}
	return nil
}

func leave(handler, client *limiter) {
	client.release()
	handler.release()
}
