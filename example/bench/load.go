package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// newHTTPClient returns the load generator's client: keep-alive
// connections to the serve process, at most conns of them.
func newHTTPClient(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		MaxIdleConns:        conns + 4,
		MaxIdleConnsPerHost: conns + 4,
		MaxConnsPerHost:     conns + 4, // the load's conns, and the stats requests
		IdleConnTimeout:     5 * time.Minute,
		DisableCompression:  true,
	}}
}

// loadResult is what the clients saw during one load.
type loadResult struct {
	ok       int
	errs     int
	byStatus map[int]int // errors that were answers with another status
	firstErr error
	elapsed  time.Duration   // from the first request to the last answer
	lat      []time.Duration // one per successful request
	bytes    int64           // body bytes of the successful requests
}

// request is one request of a load: a GET of url unless method is set.
type request struct {
	method      string // "" is GET
	url         string
	body        []byte // sent as is; nil for none
	contentType string
	want        int // the status that counts as success; 0 is 200
}

// get is the request for a GET of url.
func get(url string) func(uint64) request {
	return func(uint64) request { return request{url: url} }
}

// runLoad sends requests from conns concurrent clients, each one after the
// other on its keep-alive connection, until d has passed; requests in
// flight then finish and are counted. next(i) gives the i-th request.
func runLoad(ctx context.Context, hc *http.Client, conns int, d time.Duration, next func(i uint64) request, accept string) loadResult {
	start := time.Now()
	deadline := start.Add(d)
	var seq atomic.Uint64
	results := make([]loadResult, conns)
	var wg sync.WaitGroup
	for w := range conns {
		wg.Go(func() {
			r := &results[w]
			for time.Now().Before(deadline) && ctx.Err() == nil {
				t0 := time.Now()
				n, err := send(ctx, hc, next(seq.Add(1)-1), accept, io.Discard)
				if err != nil {
					r.errs++
					if r.firstErr == nil {
						r.firstErr = err
					}
					var se *statusError
					if errors.As(err, &se) {
						if r.byStatus == nil {
							r.byStatus = map[int]int{}
						}
						r.byStatus[se.status]++
					}
					time.Sleep(10 * time.Millisecond) // no busy loop on a dead server
					continue
				}
				r.lat = append(r.lat, time.Since(t0))
				r.ok++
				r.bytes += n
			}
		})
	}
	wg.Wait()
	total := loadResult{elapsed: time.Since(start), byStatus: map[int]int{}}
	for _, r := range results {
		total.ok += r.ok
		total.errs += r.errs
		for st, n := range r.byStatus {
			total.byStatus[st] += n
		}
		total.bytes += r.bytes
		total.lat = append(total.lat, r.lat...)
		if total.firstErr == nil {
			total.firstErr = r.firstErr
		}
	}
	slices.Sort(total.lat)
	return total
}

// fetch GETs url and copies the body to dst; any status but 200 is an error.
func fetch(ctx context.Context, hc *http.Client, url, accept string, dst io.Writer) (int64, error) {
	return send(ctx, hc, request{url: url}, accept, dst)
}

// send makes the request and copies the answer's body to dst; any status
// but the one it wants is an error.
func send(ctx context.Context, hc *http.Client, rq request, accept string, dst io.Writer) (int64, error) {
	method, want := rq.method, rq.want
	if method == "" {
		method = http.MethodGet
	}
	if want == 0 {
		want = http.StatusOK
	}
	var body io.Reader
	if rq.body != nil {
		body = bytes.NewReader(rq.body) // sets Content-Length
	}
	req, err := http.NewRequestWithContext(ctx, method, rq.url, body)
	if err != nil {
		return 0, err
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if rq.contentType != "" {
		req.Header.Set("Content-Type", rq.contentType)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return 0, &statusError{method: method, url: rq.url, status: resp.StatusCode, msg: string(msg)}
	}
	return io.Copy(dst, resp.Body)
}

// fetchPage is fetch for a page of a walk: it also returns the target of
// the answer's Link rel="next" header, resolved against url ("" for none).
func fetchPage(ctx context.Context, hc *http.Client, url, accept string, dst io.Writer) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept", accept)
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return "", fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	if _, err := io.Copy(dst, resp.Body); err != nil {
		return "", err
	}
	link := resp.Header.Get("Link")
	if link == "" {
		return "", nil
	}
	target, ok := strings.CutSuffix(strings.TrimPrefix(link, "<"), `>; rel="next"`)
	if !ok {
		return "", fmt.Errorf("GET %s: Link %q", url, link)
	}
	next, err := resp.Request.URL.Parse(target)
	if err != nil {
		return "", err
	}
	return next.String(), nil
}

// statusError is an answer with another status than the one wanted.
type statusError struct {
	method, url string
	status      int
	msg         string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("%s %s: %d %s: %s", e.method, e.url, e.status, http.StatusText(e.status), e.msg)
}

// percentile returns the p-th percentile (0 < p ≤ 1) of sorted values, by
// the nearest-rank method.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p*float64(len(sorted))+0.999999) - 1
	return sorted[max(0, min(rank, len(sorted)-1))]
}

// median returns the median of xs (the mean of the middle two for an even
// count), or 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// serveClient talks to the serve process's control endpoints.
type serveClient struct {
	hc   *http.Client
	base string // http://host:port
}

func (c serveClient) stats(ctx context.Context) (processStats, error) {
	var st processStats
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/_stats", nil)
	if err != nil {
		return st, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("GET /_stats: %s", resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

func (c serveClient) gc(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/_gc", nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("POST /_gc: %s", resp.Status)
	}
	return nil
}
