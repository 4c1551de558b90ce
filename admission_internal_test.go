package mongohttp

import (
	"context"
	"errors"
	"testing"
	"time"
)

// waitFor polls cond until it holds, failing after a generous deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestLimiterQueuesThenAdmits(t *testing.T) {
	l := Admission{MaxActive: 1, MaxQueued: 1, MaxWait: time.Minute}.limiter()
	ctx := context.Background()
	if err := l.acquire(ctx); err != nil {
		t.Fatal(err)
	}
	got := make(chan error)
	go func() { got <- l.acquire(ctx) }()
	waitFor(t, "a queued request", func() bool { return l.stats().Queued == 1 })
	// The queue is full: the next is refused at once.
	if err := l.acquire(ctx); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("third acquire: %v, want ErrOverloaded", err)
	}
	l.release()
	if err := <-got; err != nil {
		t.Fatalf("queued acquire: %v", err)
	}
	st := l.stats()
	if st.Active != 1 || st.Queued != 0 || st.Admitted != 2 || st.Refused != 1 || st.WaitTotal <= 0 {
		t.Fatalf("stats %+v", st)
	}
	l.release()
	if st := l.stats(); st.Active != 0 {
		t.Fatalf("after release: %+v", st)
	}
}

func TestLimiterRefusesAfterMaxWait(t *testing.T) {
	l := Admission{MaxActive: 1, MaxWait: 20 * time.Millisecond}.limiter()
	ctx := context.Background()
	if err := l.acquire(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.acquire(ctx); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("acquire past MaxWait: %v, want ErrOverloaded", err)
	}
	if st := l.stats(); st.Refused != 1 || st.Queued != 0 || st.Active != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestLimiterWaitEndsWithContext(t *testing.T) {
	l := Admission{MaxActive: 1, MaxWait: time.Minute}.limiter()
	if err := l.acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan error)
	go func() { got <- l.acquire(ctx) }()
	waitFor(t, "a queued request", func() bool { return l.stats().Queued == 1 })
	cancel()
	if err := <-got; !errors.Is(err, context.Canceled) {
		t.Fatalf("acquire with a cancelled context: %v", err)
	}
	if st := l.stats(); st.Queued != 0 || st.Active != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestAdmissionDefaults(t *testing.T) {
	tests := []struct {
		a              Admission
		def            int
		active, queued int
		nilLimiter     bool
	}{
		{Admission{}, DefaultMaxActive, DefaultMaxActive, 16 * DefaultMaxActive, false},
		{Admission{}, DefaultClientMaxActive, DefaultClientMaxActive, 16 * DefaultClientMaxActive, false},
		{Admission{MaxActive: 3, MaxQueued: -1}, DefaultMaxActive, 3, 0, false},
		{Admission{MaxActive: -1}, DefaultMaxActive, 0, 0, true},
	}
	for _, tt := range tests {
		l := tt.a.newLimiter(tt.def)
		if tt.nilLimiter {
			if l != nil {
				t.Errorf("%+v: want no limiter", tt.a)
			}
			// A nil limiter admits everything.
			if err := l.acquire(context.Background()); err != nil {
				t.Error(err)
			}
			l.release()
			continue
		}
		if cap(l.slots) != tt.active || l.maxQueued != int64(tt.queued) || l.maxWait != DefaultMaxWait {
			t.Errorf("%+v: active %d queued %d wait %v", tt.a, cap(l.slots), l.maxQueued, l.maxWait)
		}
	}
}

func TestAdmitFastPathDoesNotAllocate(t *testing.T) {
	h := Admission{}.limiter()
	c := Admission{}.newLimiter(DefaultClientMaxActive)
	ctx := context.Background()
	allocs := testing.AllocsPerRun(100, func() {
		if err := admit(ctx, h, c); err != nil {
			t.Fatal(err)
		}
		leave(h, c)
	})
	if allocs != 0 {
		t.Fatalf("admit+leave allocates %v times", allocs)
	}
}
