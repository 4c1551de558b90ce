package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestSoak drives the example's routes with 64 keep-alive connections on
// loopback for a bounded time (SOAK_DURATION, default 20s) and checks that
// no answer is a 5xx (but the 503 "overloaded" of admission control, the
// designed answer when a busy machine makes requests queue too long),
// nothing hangs, and memory and goroutines come back.
func TestSoak(t *testing.T) {
	duration := 20 * time.Second
	if d, err := time.ParseDuration(os.Getenv("SOAK_DURATION")); err == nil && d > 0 {
		duration = d
	}
	const conns = 64
	// Cheap routes most of the time, a scan of every post now and then:
	// the mix a real client sends, not a benchmark of the slowest query.
	u, p := wantUsers, wantPosts
	targets := []string{
		"/healthz",
		"/users?limit=5",
		"/users?age[gte]=30&age[lt]=40&sort=-age&limit=10",
		"/users/not-an-id",
		"/posts/" + p[0].ID.Hex(),
	}
	for i := range 20 {
		targets = append(targets, "/users/"+u[(i*37)%len(u)].ID.Hex())
	}
	targets = append(targets, "/users/"+u[0].ID.Hex()+"/posts?limit=5")

	transport := &http.Transport{MaxIdleConnsPerHost: conns}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: testMaxTime + 10*time.Second}

	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	goroutines := runtime.NumGoroutine()

	var (
		ok, clientErrs, serverErrs, failures, shed atomic.Int64
		slowest                                    atomic.Int64
		wg                                         sync.WaitGroup
		mu                                         sync.Mutex
		examples                                   []string
		warmHeap                                   uint64
		warmOnce                                   sync.Once
	)
	start := time.Now()
	deadline := start.Add(duration)
	for c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				target := targets[(c*7+i)%len(targets)]
				began := time.Now()
				resp, err := client.Get(shared.base + target)
				if err != nil {
					failures.Add(1)
					mu.Lock()
					examples = append(examples, fmt.Sprintf("%s: %v", target, err))
					mu.Unlock()
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if d := int64(time.Since(began)); d > slowest.Load() {
					slowest.Store(d)
				}
				switch {
				case resp.StatusCode == http.StatusServiceUnavailable && bytes.Contains(body, []byte(`"code":"overloaded"`)):
					// Shedding is the designed answer when requests wait
					// longer than the admission queue allows (a busy
					// machine): a 503 with Retry-After, not a failure.
					shed.Add(1)
				case resp.StatusCode >= 500:
					serverErrs.Add(1)
					mu.Lock()
					examples = append(examples, fmt.Sprintf("%s: %d", target, resp.StatusCode))
					mu.Unlock()
				case resp.StatusCode >= 400:
					clientErrs.Add(1) // /users/not-an-id
				default:
					ok.Add(1)
				}
				if time.Since(start) > duration/4 {
					warmOnce.Do(func() { warmHeap = heap() })
				}
			}
		}()
	}
	wg.Wait()
	transport.CloseIdleConnections()
	endHeap := heap()
	t.Logf("%d requests in %s: %d ok, %d 4xx, %d shed (503 overloaded), %d other 5xx, %d failed; slowest %s; heap %d KiB after warm-up, %d KiB at the end",
		ok.Load()+clientErrs.Load()+serverErrs.Load()+shed.Load(), duration, ok.Load(), clientErrs.Load(), shed.Load(), serverErrs.Load(),
		failures.Load(), time.Duration(slowest.Load()).Round(time.Millisecond), warmHeap>>10, endHeap>>10)
	if serverErrs.Load() > 0 || failures.Load() > 0 {
		t.Fatalf("%d 5xx answers and %d failed requests, e.g. %v", serverErrs.Load(), failures.Load(), examples[:min(5, len(examples))])
	}
	if ok.Load() < conns {
		t.Fatalf("only %d successful requests in %s", ok.Load(), duration)
	}
	if clientErrs.Load() == 0 {
		t.Fatalf("the malformed-id route never answered 4xx")
	}
	// Stable memory: after the load, the live heap is back near where it
	// stood once warmed up (a fixed margin for pools and caches).
	if warmHeap > 0 && endHeap > warmHeap+32<<20 {
		t.Fatalf("live heap grew from %d KiB to %d KiB", warmHeap>>10, endHeap>>10)
	}
	eventually(t, 15*time.Second, 50*time.Millisecond, func() (bool, string) {
		n := runtime.NumGoroutine()
		return n <= goroutines+5, fmt.Sprintf("goroutines: %d after the soak, %d before", n, goroutines)
	})
}
