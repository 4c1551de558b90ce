package otelmongohttp

import "testing"

// TestCacheStopsGrowing checks that a cache keeps at most cacheLimit
// entries and still returns the value asked for past it.
func TestCacheStopsGrowing(t *testing.T) {
	var c cache
	for i := range cacheLimit + 10 {
		if got := c.LoadOrStore(i, i*2); got != i*2 {
			t.Fatalf("LoadOrStore(%d) = %v, want %d", i, got, i*2)
		}
	}
	n := 0
	c.m.Range(func(any, any) bool { n++; return true })
	if n != cacheLimit || c.size.Load() != cacheLimit {
		t.Fatalf("%d entries (size %d), want %d", n, c.size.Load(), cacheLimit)
	}
	if v, ok := c.Load(3); !ok || v != 6 {
		t.Errorf("Load(3) = %v, %v", v, ok)
	}
	if got := c.LoadOrStore(3, 99); got != 6 {
		t.Errorf("LoadOrStore of a kept key = %v, want the kept 6", got)
	}
}
