package otelmongohttp

import "sync"

// cacheLimit bounds each cache: past it, values are made at each use and
// not kept, so a Route function that returns paths instead of templates
// costs time, not memory.
const cacheLimit = 1024

// cache keeps values made once per key: the attributes of a service's few
// routes, codes and commands, which cost allocations and a sort to make.
// A typed map rather than a sync.Map, whose interface keys would cost an
// allocation at each look-up. It stops growing at cacheLimit entries.
type cache[K comparable, V any] struct {
	mu sync.RWMutex
	m  map[K]V
}

// Load returns the value of key.
func (c *cache[K, V]) Load(key K) (V, bool) {
	c.mu.RLock()
	v, ok := c.m[key]
	c.mu.RUnlock()
	return v, ok
}

// LoadOrStore returns the value of key, storing v first if there is room.
func (c *cache[K, V]) LoadOrStore(key K, v V) V {
	c.mu.Lock()
	defer c.mu.Unlock()
	if kept, ok := c.m[key]; ok {
		return kept
	}
	if len(c.m) >= cacheLimit {
		return v
	}
	if c.m == nil {
		c.m = make(map[K]V)
	}
	c.m[key] = v
	return v
}

// interner returns one string per distinct name read from the bytes of a
// command, so that reading a command's collection allocates only the
// first time.
type interner struct {
	mu sync.RWMutex
	m  map[string]string
}

func (in *interner) intern(b []byte) string {
	in.mu.RLock()
	s, ok := in.m[string(b)] // no allocation for the look-up
	in.mu.RUnlock()
	if ok {
		return s
	}
	s = string(b)
	in.mu.Lock()
	defer in.mu.Unlock()
	if len(in.m) >= cacheLimit {
		return s
	}
	if in.m == nil {
		in.m = make(map[string]string)
	}
	in.m[s] = s
	return s
}
