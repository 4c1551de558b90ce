package integration_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mongohttp/mongohttp"
	"github.com/mongohttp/mongohttp/integration/testserver"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// BenchmarkFeedVersusPolling compares, in one run, 200 clients following
// one change feed with 200 clients polling Find every second, under 20
// writes a second to a collection of 1,000 documents:
//
//	cd integration && go test -run '^$' -bench FeedVersusPolling -benchtime 1x
//
// Logs are discarded: a database that cannot keep up with the polling
// answers 503 and 504, which the benchmark counts (failed/s).
//
// It reports the median and p99 latency from a write's answer to the
// client seeing it (for polling, the first poll that shows it), the
// database commands per second the service sends, and the CPU this
// process spends per second (the service and its 200 clients; the
// database runs in another process).
func BenchmarkFeedVersusPolling(b *testing.B) {
	const (
		clients  = 200
		docs     = 1000
		rate     = 20
		duration = 15 * time.Second
	)
	for _, mode := range []string{"feed", "poll"} {
		b.Run(mode, func(b *testing.B) {
			for range b.N {
				var commands atomic.Int64
				opts := options.Client().SetMonitor(&event.CommandMonitor{Started: func(context.Context, *event.CommandStartedEvent) { commands.Add(1) }})
				c, err := mongohttp.ConnectConfig(context.Background(), mongohttp.Config{URI: serverURI, Options: opts, Pool: mongohttp.PoolConfig{MaxPoolSize: 300}})
				if err != nil {
					b.Fatal(err)
				}
				coll := testserver.Database(b, c.Mongo()).Collection("bench")
				seed := make([]any, docs)
				for i := range seed {
					seed[i] = bson.D{{Key: "title", Value: fmt.Sprintf("seed %d", i)}, {Key: "likes", Value: int32(i)}}
				}
				if _, err := coll.InsertMany(context.Background(), seed); err != nil {
					b.Fatal(err)
				}
				res := mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{
					Client: c, Logger: slog.New(slog.DiscardHandler),
					Coll: coll, Policy: mongohttp.Policy{Filter: map[string]mongohttp.Type{"title": mongohttp.String}, Sort: []string{"likes"}, DefaultSort: "-likes",
						DefaultLimit: 20, MaxLimit: 100, Write: map[string]mongohttp.Type{"title": mongohttp.String, "likes": mongohttp.Int}},
					Admission: mongohttp.Admission{MaxActive: -1}, Changes: &mongohttp.ChangeFeed{},
				}))
				mux := http.NewServeMux()
				mux.Handle("GET /docs", res.Find())
				mux.Handle("POST /docs", res.Insert())
				mux.Handle("GET /docs/changes", res.Changes())
				srv := httptest.NewServer(mux)

				var failed atomic.Int64 // reads answered with an error
				var mu sync.Mutex
				written := map[string]time.Time{} // title → the write's answer
				seen := map[string]time.Time{}    // title → first seen by any client
				note := func(title string) {
					mu.Lock()
					if _, ok := seen[title]; !ok {
						seen[title] = time.Now()
					}
					mu.Unlock()
				}
				ctx, stop := context.WithCancel(context.Background())
				var wg sync.WaitGroup
				hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
				for i := range clients {
					wg.Go(func() {
						if mode == "feed" {
							followFeed(ctx, hc, srv.URL+"/docs/changes", note)
							return
						}
						pollFind(ctx, hc, srv.URL+"/docs", time.Duration(i)*time.Second/clients, note, &failed)
					})
				}
				time.Sleep(2 * time.Second)
				commands.Store(0)
				cpu0 := cpuTime()
				start := time.Now()
				tick := time.NewTicker(time.Second / rate)
				for n := 0; time.Since(start) < duration; n++ {
					<-tick.C
					title := fmt.Sprintf("w%d", n)
					resp, err := hc.Post(srv.URL+"/docs", "application/json", strings.NewReader(fmt.Sprintf(`{"title":%q,"likes":%d}`, title, docs+n)))
					if err != nil {
						b.Fatal(err)
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					mu.Lock()
					written[title] = time.Now()
					mu.Unlock()
				}
				tick.Stop()
				time.Sleep(2 * time.Second)
				elapsed := time.Since(start)
				cpu := cpuTime() - cpu0
				queries := commands.Load()
				stop()
				srv.CloseClientConnections()
				wg.Wait()
				srv.Close()

				var lat []time.Duration
				for title, at := range written {
					if s, ok := seen[title]; ok {
						lat = append(lat, max(0, s.Sub(at)))
					}
				}
				slices.Sort(lat)
				if len(lat) > 0 {
					b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "median-ms")
					b.ReportMetric(float64(lat[len(lat)*99/100].Milliseconds()), "p99-ms")
				}
				b.ReportMetric(float64(failed.Load())/elapsed.Seconds(), "failed/s")
				b.ReportMetric(float64(len(lat))/float64(len(written)), "seen")
				b.ReportMetric(cpu.Seconds()/elapsed.Seconds(), "cpu-s/s")
				b.ReportMetric(float64(queries)/elapsed.Seconds(), "db-cmds/s")
			}
		})
	}
}

// followFeed reads the feed and notes each title in a change event.
func followFeed(ctx context.Context, hc *http.Client, url string, note func(string)) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := hc.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			var d struct{ Title string }
			if json.Unmarshal([]byte(line), &d) == nil {
				note(d.Title)
			}
		}
	}
}

// pollFind asks for the newest page every second, from offset on, and
// notes the titles it holds.
func pollFind(ctx context.Context, hc *http.Client, url string, offset time.Duration, note func(string), failed *atomic.Int64) {
	select {
	case <-ctx.Done():
		return
	case <-time.After(offset):
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := hc.Do(req); err == nil {
			if resp.StatusCode != http.StatusOK && ctx.Err() == nil {
				failed.Add(1)
			}
			var page []struct{ Title string }
			_ = json.NewDecoder(resp.Body).Decode(&page)
			resp.Body.Close()
			for _, d := range page {
				note(d.Title)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// cpuTime is this process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
