package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// heavyPostsQuery is an allowed but expensive query: an exact count, a
// deep skip, a two-field sort and two large $nin lists make the database
// read, filter and sort every post (about half a second alone).
func heavyPostsQuery() string {
	titles := make([]string, 90)
	for i := range titles {
		titles[i] = fmt.Sprintf("%q", fmt.Sprintf("no such title %02d", i))
	}
	filter := `{"title":{"$nin":[` + strings.Join(titles, ",") + `]}}`
	return "/posts?count=exact&skip=1000&limit=100&sort=-likes,published&filter=" + url.QueryEscape(filter)
}

// TestOverloadSheds sends a burst of heavy queries to a service with the
// default time limit (10 s) while a client keeps asking cheap ones. With
// admission control the heavy ones either run (200) or are refused at once
// (503 overloaded): never a wall of 504s from queries that all ran out of
// time together. The cheap ones, on other handlers, keep succeeding. The
// figures are logged for the README; the test asserts only outcomes.
func TestOverloadSheds(t *testing.T) {
	svc, err := startService([]string{"-addr", "127.0.0.1:0", "-debug-addr", "", "-db", shared.dbName, "-max-time", "10s"},
		map[string]string{"MONGODB_URI": shared.dbURI})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := svc.stop(); err != nil {
			t.Error(err)
		}
	}()
	const heavy = 40
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: heavy + 2}}
	defer client.CloseIdleConnections()

	type answer struct {
		status int
		code   string
		took   time.Duration
	}
	get := func(target string) answer {
		start := time.Now()
		resp, err := client.Get(svc.base + target)
		if err != nil {
			return answer{status: -1, code: err.Error(), took: time.Since(start)}
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var p struct{ Code string }
		if resp.StatusCode != 200 {
			_ = json.Unmarshal(body, &p)
		}
		return answer{status: resp.StatusCode, code: p.Code, took: time.Since(start)}
	}
	if a := get(heavyPostsQuery()); a.status != 200 {
		t.Fatalf("the heavy query alone: %d %s", a.status, a.code)
	}

	var (
		wg                sync.WaitGroup
		mu                sync.Mutex
		heavyAnswers      []answer
		cheapAnswers      []answer
		burstDone         = make(chan struct{})
		cheapTargets      = []string{"/healthz", "/users/" + wantUsers[1].ID.Hex(), "/users?limit=5"}
		burstStart        = time.Now()
		burstWall         time.Duration
		cheapLoopFinished = make(chan struct{})
	)
	go func() {
		defer close(cheapLoopFinished)
		for i := 0; ; i++ {
			select {
			case <-burstDone:
				return
			default:
			}
			a := get(cheapTargets[i%len(cheapTargets)])
			mu.Lock()
			cheapAnswers = append(cheapAnswers, a)
			mu.Unlock()
		}
	}()
	for range heavy {
		wg.Go(func() {
			a := get(heavyPostsQuery())
			mu.Lock()
			heavyAnswers = append(heavyAnswers, a)
			mu.Unlock()
		})
	}
	wg.Wait()
	burstWall = time.Since(burstStart)
	close(burstDone)
	<-cheapLoopFinished

	var ok, refused []time.Duration
	for _, a := range heavyAnswers {
		switch {
		case a.status == 200:
			ok = append(ok, a.took)
		case a.status == 503 && a.code == "overloaded":
			refused = append(refused, a.took)
		default:
			t.Errorf("heavy query answered %d %s after %s; want 200 or 503 overloaded", a.status, a.code, a.took)
		}
	}
	if len(ok) == 0 {
		t.Errorf("no heavy query succeeded: the burst did no useful work")
	}
	var cheap []time.Duration
	for _, a := range cheapAnswers {
		if a.status != 200 {
			t.Errorf("cheap request answered %d %s during the burst", a.status, a.code)
		}
		cheap = append(cheap, a.took)
	}
	t.Logf("burst of %d heavy queries in %s: %d answered 200 (median %s, max %s), %d refused 503 (median %s, max %s); %d cheap requests during the burst, median %s, max %s",
		heavy, burstWall.Round(time.Millisecond), len(ok), median(ok), maxOf(ok), len(refused), median(refused), maxOf(refused),
		len(cheap), median(cheap), maxOf(cheap))
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2].Round(time.Millisecond)
}

func maxOf(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	return slices.Max(ds).Round(time.Millisecond)
}
