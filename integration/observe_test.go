package integration_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mongohttp/mongohttp"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

const testTraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// reports keeps every report an observer receives.
type reports struct {
	mu  sync.Mutex
	got []mongohttp.RequestReport
}

func (o *reports) StartRequest(r *http.Request, rep *mongohttp.RequestReport) context.Context {
	return r.Context()
}

func (o *reports) EndRequest(_ context.Context, rep *mongohttp.RequestReport) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.got = append(o.got, *rep)
}

func (o *reports) take(t *testing.T, n int) []mongohttp.RequestReport {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.got) != n {
		t.Fatalf("%d reports, want %d: %+v", len(o.got), n, o.got)
	}
	got := o.got
	o.got = nil
	return got
}

// commands records the commands a client sends, through the driver's
// command monitor.
type commands struct {
	mu      sync.Mutex
	started []bson.Raw
}

func (c *commands) monitor() *event.CommandMonitor {
	return &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		switch e.CommandName {
		case "find", "aggregate", "count":
			c.mu.Lock()
			c.started = append(c.started, slices.Clone(e.Command))
			c.mu.Unlock()
		}
	}}
}

// take returns the names and comments of the commands sent since the last
// call ("" for a command without a comment).
func (c *commands) take() (names, comments []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cmd := range c.started {
		names = append(names, cmd.Index(0).Key())
		v, err := cmd.LookupErr("comment")
		if err != nil {
			comments = append(comments, "")
			continue
		}
		comments = append(comments, v.StringValue())
	}
	c.started = nil
	return names, comments
}

// observedService serves people on a ServeMux from a client whose
// Config.Observer is obs, recording its commands.
func observedService(t *testing.T, obs mongohttp.Observer, decl func(*mongohttp.Collection[bson.Raw])) (*httptest.Server, *commands, []person) {
	t.Helper()
	cmds := &commands{}
	c, err := mongohttp.ConnectConfig(context.Background(), mongohttp.Config{
		URI: serverURI, Observer: obs,
		Options: options.Client().SetMonitor(cmds.monitor()),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	coll := database(t, c).Collection("people")
	ps := people(t, coll, 12)
	d := mongohttp.Collection[bson.Raw]{Client: c, Coll: coll, Policy: peoplePolicy}
	if decl != nil {
		decl(&d)
	}
	res := mongohttp.Must(mongohttp.New(d))
	mux := http.NewServeMux()
	mux.Handle("GET /people", res.Find())
	mux.Handle("GET /people/{id}", res.FindOne())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	cmds.take() // the seed's
	return srv, cmds, ps
}

func get(t *testing.T, url string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body) // the trailers arrive with the end of the body
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// TestObserverReportsEachRequest checks every field of the reports of a
// page, a document and a refusal served from a real server.
func TestObserverReportsEachRequest(t *testing.T) {
	obs := &reports{}
	srv, _, ps := observedService(t, obs, nil)

	resp, body := get(t, srv.URL+"/people?age[gte]=25&sort=-age&limit=3&count=exact&fields=name",
		"X-Request-Id", "req-page", "Traceparent", testTraceParent)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("page: %d %s", resp.StatusCode, body)
	}
	page := obs.take(t, 1)[0]
	if page.Handler != "find" || page.Route != "/people" || page.Method != "GET" || page.Collection != "people" ||
		page.Status != 200 || page.Code != "" || page.Err != nil || page.Aborted ||
		page.RequestID != "req-page" || page.TraceParent != testTraceParent ||
		page.Documents != 3 || page.Bytes != int64(len(body)) {
		t.Errorf("page report: %+v (body of %d bytes)", page, len(body))
	}
	checkPhases(t, "page", page)
	wantShape := mongohttp.QueryShape{
		Filter: []string{"age $gte"}, Sort: []string{"-age", "_id"}, Fields: []string{"name", "age"}, Count: mongohttp.CountExact,
	}
	if shape := page.Shape(); !slices.Equal(shape.Filter, wantShape.Filter) || !slices.Equal(shape.Sort, wantShape.Sort) ||
		!slices.Equal(shape.Fields, wantShape.Fields) || shape.Count != wantShape.Count {
		t.Errorf("page shape %+v, want %+v", shape, wantShape)
	}

	resp, body = get(t, srv.URL+"/people/"+ps[4].ID.Hex())
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("document: %d %s", resp.StatusCode, body)
	}
	one := obs.take(t, 1)[0]
	if one.Handler != "findOne" || one.Route != "/people/{id}" || one.Status != 200 || one.Documents != 1 ||
		one.Bytes != int64(len(body)) || len(one.RequestID) != 16 || one.TraceParent != "" ||
		!slices.Equal(one.Shape().Filter, []string{"_id $eq"}) {
		t.Errorf("document report: %+v", one)
	}
	checkPhases(t, "document", one)

	resp, _ = get(t, srv.URL+"/people/"+bson.NewObjectID().Hex())
	missing := obs.take(t, 1)[0]
	if resp.StatusCode != http.StatusNotFound || missing.Status != 404 || missing.Code != "not_found" || missing.Documents != 0 || missing.Err == nil {
		t.Errorf("missing document: %d, report %+v", resp.StatusCode, missing)
	}
	if got := resp.Header.Get("X-Request-Id"); got != missing.RequestID {
		t.Errorf("the 404 carries X-Request-Id %q, the report %q", got, missing.RequestID)
	}
}

// checkPhases checks that the phases of a served request were measured and
// nest: admission, then the wait for a connection and the first batch,
// all within the whole.
func checkPhases(t *testing.T, what string, rep mongohttp.RequestReport) {
	t.Helper()
	if rep.PoolWait <= 0 || rep.FirstBatch <= 0 || rep.DatabaseTime <= 0 || rep.EncodingTime <= 0 || rep.Duration <= 0 {
		t.Errorf("%s: a phase was not measured: %+v", what, rep)
	}
	if rep.AdmissionWait > rep.FirstBatch || rep.PoolWait > rep.FirstBatch || rep.FirstBatch > rep.Duration ||
		rep.DatabaseTime+rep.EncodingTime > rep.Duration {
		t.Errorf("%s: the phases do not nest: %+v", what, rep)
	}
}

// TestObserveCommentCarriesTraceContext checks, on the commands the driver sends,
// that a request's trace context reaches the server in their comment:
// with and without an observer, for the count, the page and the document.
func TestObserveCommentCarriesTraceContext(t *testing.T) {
	t.Run("unobserved", func(t *testing.T) {
		srv, cmds, ps := observedService(t, nil, nil)
		get(t, srv.URL+"/people?count=exact&name=p001", "Traceparent", testTraceParent)
		get(t, srv.URL+"/people?count=estimated", "Traceparent", testTraceParent)
		get(t, srv.URL+"/people/"+ps[0].ID.Hex(), "Traceparent", testTraceParent)
		names, comments := cmds.take()
		if !slices.Equal(names, []string{"aggregate", "find", "count", "find", "find"}) {
			t.Fatalf("commands %v", names)
		}
		want := "traceparent='" + testTraceParent + "'"
		for i, c := range comments {
			if c != want {
				t.Errorf("%s: comment %s, want %s", names[i], c, want)
			}
		}

		get(t, srv.URL+"/people?count=exact")
		get(t, srv.URL+"/people/"+ps[0].ID.Hex(), "Traceparent", "00-not-a-trace-context")
		names, comments = cmds.take()
		if len(names) != 3 || slices.ContainsFunc(comments, func(c string) bool { return c != "" }) {
			t.Errorf("without a valid trace context: commands %v with comments %q, want none", names, comments)
		}
	})
	t.Run("observed", func(t *testing.T) {
		obs := &reports{}
		srv, cmds, ps := observedService(t, obs, nil)
		get(t, srv.URL+"/people?count=exact", "Traceparent", testTraceParent, "X-Request-Id", "r1")
		get(t, srv.URL+"/people/"+ps[0].ID.Hex(), "X-Request-Id", "r'/2")
		names, comments := cmds.take()
		want := []string{
			"request_id='r1',traceparent='" + testTraceParent + "'",
			"request_id='r1',traceparent='" + testTraceParent + "'",
			"request_id='r%27%2F2'",
		}
		if !slices.Equal(comments, want) {
			t.Errorf("commands %v with comments\n%q\nwant\n%q", names, comments, want)
		}
		obs.take(t, 2)
	})
}

var timingValue = regexp.MustCompile(`^db;dur=\d+\.\d\d(, enc;dur=\d+\.\d\d)?$`)

// TestObserveServerTiming checks the header and Find's trailer, on and off.
func TestObserveServerTiming(t *testing.T) {
	srv, _, ps := observedService(t, nil, func(c *mongohttp.Collection[bson.Raw]) { c.ServerTiming = true })
	resp, _ := get(t, srv.URL+"/people?limit=2")
	if h := resp.Header.Get("Server-Timing"); !timingValue.MatchString(h) || strings.Contains(h, "enc") {
		t.Errorf("Find's Server-Timing header %q, want the database time", h)
	}
	if tr := resp.Trailer.Get("Server-Timing"); !regexp.MustCompile(`^enc;dur=\d+\.\d\d$`).MatchString(tr) {
		t.Errorf("Find's Server-Timing trailer %q, want the encoding time", tr)
	}
	resp, _ = get(t, srv.URL+"/people/"+ps[0].ID.Hex())
	if h := resp.Header.Get("Server-Timing"); !timingValue.MatchString(h) || !strings.Contains(h, "enc") {
		t.Errorf("FindOne's Server-Timing header %q, want the database and encoding times", h)
	}
	resp, _ = get(t, srv.URL+"/people/"+bson.NewObjectID().Hex())
	if h := resp.Header.Get("Server-Timing"); h != "" {
		t.Errorf("an error answer carries Server-Timing %q", h)
	}

	off, _, _ := observedService(t, nil, nil)
	resp, _ = get(t, off.URL+"/people?limit=2")
	if h, tr := resp.Header.Get("Server-Timing"), resp.Trailer.Get("Server-Timing"); h != "" || tr != "" {
		t.Errorf("Server-Timing is off by default, yet the answer has %q and trailer %q", h, tr)
	}
}

// TestObserveFailureLogLine checks the one line a failed request logs: a 5xx at
// Error with its cause, a 4xx at Debug without its detail, both with the
// request id, the route, the code and the trace id, and never a value of
// the query.
func TestObserveFailureLogLine(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(p)
	}), &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, _, _ := observedService(t, nil, func(c *mongohttp.Collection[bson.Raw]) {
		c.Logger = logger
		c.MaxTime = time.Nanosecond // every query runs out of time: a 504
	})
	resp, _ := get(t, srv.URL+"/people?name=Alice-Private", "X-Request-Id", "req-504", "Traceparent", testTraceParent)
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("status %d, want 504", resp.StatusCode)
	}
	resp, _ = get(t, srv.URL+"/people?age=Bob-Private", "X-Request-Id", "req-400")
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d, want 400", resp.StatusCode)
	}
	mu.Lock()
	out := logs.String()
	mu.Unlock()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want one per failed request:\n%s", len(lines), out)
	}
	for i, want := range []string{
		`"level":"ERROR","msg":"mongohttp: request failed","request_id":"req-504","method":"GET","route":"/people","path":"/people","status":504,"code":"timeout","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","error":`,
		`"level":"DEBUG","msg":"mongohttp: request failed","request_id":"req-400","method":"GET","route":"/people","path":"/people","status":400,"code":"invalid_parameter"}`,
	} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("line %d:\n%s\nwant it to contain\n%s", i, lines[i], want)
		}
	}
	if strings.Contains(out, "Private") {
		t.Errorf("the log holds a value of the query:\n%s", out)
	}
}

// TestObservedAbort checks the report and the log line of an answer cut
// short: a document that fails in Transform after the first one.
func TestObservedAbort(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(p)
	}), nil))
	obs := &reports{}
	srv, _, _ := observedService(t, obs, func(c *mongohttp.Collection[bson.Raw]) {
		c.Logger = logger
		c.Transform = func(r *http.Request, doc *bson.Raw) error {
			if name, _ := doc.Lookup("name").StringValueOK(); name == "p001" {
				return errors.New("this document cannot be served")
			}
			return nil
		}
	})
	req, err := http.NewRequest(http.MethodGet, srv.URL+"/people?limit=5", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Request-Id", "req-abort")
	if resp, err := http.DefaultClient.Do(req); err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil {
			t.Fatalf("the aborted answer arrived whole: %d", resp.StatusCode)
		}
	}
	var rep mongohttp.RequestReport
	eventually(t, 10*time.Second, "the report of the aborted request", func() bool {
		obs.mu.Lock()
		defer obs.mu.Unlock()
		if len(obs.got) == 1 {
			rep = obs.got[0]
			return true
		}
		return false
	})
	if !rep.Aborted || rep.Err == nil || rep.Status != 0 || rep.Documents != 0 || rep.RequestID != "req-abort" {
		t.Errorf("report %+v, want an abort before any byte, with its cause", rep)
	}
	mu.Lock()
	out := logs.String()
	mu.Unlock()
	if !strings.Contains(out, `"level":"ERROR","msg":"mongohttp: response aborted","request_id":"req-abort","method":"GET","route":"/people","path":"/people","error":"this document cannot be served"}`) {
		t.Errorf("log:\n%s", out)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
