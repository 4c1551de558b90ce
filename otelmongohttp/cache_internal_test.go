package otelmongohttp

import "testing"

// TestCacheStopsGrowing checks that a cache keeps at most cacheLimit
// entries and still returns the value asked for past it.
func TestCacheStopsGrowing(t *testing.T) {
	var c cache[int, int]
	for i := range cacheLimit + 10 {
		if got := c.LoadOrStore(i, i*2); got != i*2 {
			t.Fatalf("LoadOrStore(%d) = %v, want %d", i, got, i*2)
		}
	}
	if len(c.m) != cacheLimit {
		t.Fatalf("%d entries, want %d", len(c.m), cacheLimit)
	}
	if v, ok := c.Load(3); !ok || v != 6 {
		t.Errorf("Load(3) = %v, %v", v, ok)
	}
	if _, ok := c.Load(cacheLimit + 5); ok {
		t.Errorf("a key past the limit was kept")
	}
	if got := c.LoadOrStore(3, 99); got != 6 {
		t.Errorf("LoadOrStore of a kept key = %v, want the kept 6", got)
	}

	var in interner
	a := in.intern([]byte("users"))
	if b := in.intern([]byte("users")); a != "users" || b != a {
		t.Errorf("intern: %q, %q", a, b)
	}
	if n := testing.AllocsPerRun(100, func() { in.intern([]byte("users")) }); n != 0 {
		t.Errorf("interning a known name: %v allocations", n)
	}
}
