package mongohttp

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// recordingObserver keeps every report.
type recordingObserver struct {
	mu      sync.Mutex
	started []RequestReport
	ended   []RequestReport
}

func (o *recordingObserver) StartRequest(r *http.Request, rep *RequestReport) context.Context {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.started = append(o.started, *rep)
	return r.Context()
}

func (o *recordingObserver) EndRequest(_ context.Context, rep *RequestReport) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.ended = append(o.ended, *rep)
}

// TestUnobservedHandlersAreNotWrapped checks that, with no observer and no
// Server-Timing, the handlers are the bare handlers: no wrapper, no
// writer, no context value on the way.
func TestUnobservedHandlersAreNotWrapped(t *testing.T) {
	res := Must(New(Collection[bson.Raw]{Client: offline, Coll: offlineCollection(t, "things")}))
	agg, err := res.Aggregate(Aggregation{Pipeline: mongo.Pipeline{{{Key: "$count", Value: "n"}}}})
	if err != nil {
		t.Fatal(err)
	}
	for name, h := range map[string]http.Handler{
		"Find": undescribed(res.Find()), "FindOne": undescribed(res.FindOne()), "Aggregate": undescribed(agg),
		"Insert": undescribed(res.Insert()), "Replace": undescribed(res.Replace()), "Patch": undescribed(res.Patch()), "Delete": undescribed(res.Delete()),
	} {
		switch h.(type) {
		case *findHandler[bson.Raw], *findOneHandler[bson.Raw], *aggregateHandler[bson.Raw], *writer[bson.Raw]:
		default:
			t.Errorf("%s() is a %T, want the bare handler", name, h)
		}
	}
	if res.bases[""].observed {
		t.Error("the handlers are marked observed")
	}
	observed := Must(New(Collection[bson.Raw]{Client: offline, Coll: offlineCollection(t, "things"), Observer: &recordingObserver{}}))
	if _, ok := undescribed(observed.Find()).(*findHandler[bson.Raw]); ok {
		t.Error("with an Observer, Find() is not wrapped")
	}
	if _, ok := observed.Insert().(*writer[bson.Raw]); ok {
		t.Error("with an Observer, Insert() is not wrapped")
	}
	if !observed.bases[""].observed {
		t.Error("with an Observer, the handlers are not marked observed")
	}
}

// undescribed returns the handler a described handler wraps.
func undescribed(h http.Handler) http.Handler {
	if d, ok := h.(*describedHandler); ok {
		return d.Handler
	}
	return h
}

// TestUnobservedHooksDoNotAllocate runs every hook the handlers call, in
// the order they call them, on an unobserved handler and a request without
// trace context: no allocation.
func TestUnobservedHooksDoNotAllocate(t *testing.T) {
	h := Must(New(Collection[bson.Raw]{Client: offline, Coll: offlineCollection(t, "things")})).bases[""]
	r := httptest.NewRequest(http.MethodGet, "/things?limit=3", nil)
	r.Header.Set("X-Request-Id", "abc") // read only on failures
	hdr := http.Header{}
	q := &Query{Limit: 3}
	cmd := make(bson.D, 0, 9)
	allocs := testing.AllocsPerRun(1000, func() {
		o := h.obs(r)
		o.admitted()
		o.parsed(q, nil)
		comment := h.commentFor(r)
		_ = countComment(comment)
		_ = estimatedComment(comment)
		o.issue()
		cmd = withComment(cmd[:0], comment)
		o.firstBatch()
		o.documentsInHand()
		o.answering(hdr, false)
		o.wrote(3)
		o.parsedFilter(nil)
		_ = insertComment(r.Context())
		_ = contextComment(r.Context())
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per request, want 0", allocs)
	}
}

func TestParseTraceParent(t *testing.T) {
	const valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	tests := []struct {
		in   string
		want string
	}{
		{valid, valid},
		{"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future", "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		{"", ""},
		{valid + "-extra", ""}, // version 00 has exactly four parts
		{"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", ""},
		{"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", ""},
		{"00-00000000000000000000000000000000-00f067aa0ba902b7-01", ""},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", ""},
		{"00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", ""},
		{"00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01", ""},
	}
	for _, tt := range tests {
		got, ok := parseTraceParent(tt.in)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("parseTraceParent(%q) = %q, %v; want %q", tt.in, got, ok, tt.want)
		}
	}
	if got := traceID(valid); got != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("traceID = %q", got)
	}
}

func TestRequestID(t *testing.T) {
	for _, in := range []string{"req-42", "0f2c:9/a+b=c", strings.Repeat("a", 128)} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set(RequestIDHeader, in)
		if got := requestID(r); got != in {
			t.Errorf("X-Request-Id %q: id %q, want it kept", in, got)
		}
	}
	for _, in := range []string{"", "has space", `quo"te`, "back\\slash", "é", strings.Repeat("a", 129)} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set(RequestIDHeader, in)
		got := requestID(r)
		if got == in || len(got) != 16 || !lowerHex(got) {
			t.Errorf("X-Request-Id %q: id %q, want a new 16-digit hex id", in, got)
		}
	}
}

func TestPatternRoute(t *testing.T) {
	for pattern, want := range map[string]string{
		"":                        "",
		"/users":                  "/users",
		"GET /users/{id}":         "/users/{id}",
		"GET  example.com/users/": "/users/",
		"example.com/posts/{$}":   "/posts/{$}",
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Pattern = pattern
		if got := patternRoute(r); got != want {
			t.Errorf("patternRoute(%q) = %q, want %q", pattern, got, want)
		}
	}
}

func TestQueryShapeHasNoValues(t *testing.T) {
	qp, err := NewQueryParser(Policy{
		Filter:    map[string]Type{"name": String, "age": Int, "tags": String},
		Sort:      []string{"age", "name"},
		Project:   []string{"name", "age"},
		Operators: append(DefaultOperators(), "regex"),
	})
	if err != nil {
		t.Fatal(err)
	}
	q, err := qp.Parse(`name=Secret%20Name&age[gte]=4242&age[lt]=5151&sort=-age&fields=name&count=exact` +
		`&filter={"$or":[{"tags":{"$in":["private-tag"]}},{"name":{"$regex":"^Sec"}}]}`)
	if err != nil {
		t.Fatal(err)
	}
	s := shapeOf(q, nil)
	want := QueryShape{
		Filter: []string{"$and", "name $eq", "age $gte", "age $lt", "$or", "tags $in", "name $regex"},
		Sort:   []string{"-age", "_id"},
		Fields: []string{"name", "age"},
		Count:  CountExact,
	}
	if !slices.Equal(s.Filter, want.Filter) || !slices.Equal(s.Sort, want.Sort) || !slices.Equal(s.Fields, want.Fields) || s.Count != want.Count {
		t.Fatalf("shape %+v, want %+v", s, want)
	}
	text := s.String()
	if text != "filter=$and,name $eq,age $gte,age $lt,$or,tags $in,name $regex sort=-age,_id fields=name,age count=exact" {
		t.Errorf("String() = %q", text)
	}
	for _, v := range []string{"Secret", "4242", "5151", "private", "^Sec"} {
		if strings.Contains(text, v) {
			t.Errorf("the shape %q holds the value %q", text, v)
		}
	}
	if got := shapeOf(nil, bson.D{{Key: "name", Value: int32(1)}, {Key: "secret", Value: int32(0)}}); !slices.Equal(got.Filter, []string{"_id $eq"}) || !slices.Equal(got.Fields, []string{"name"}) {
		t.Errorf("FindOne shape %+v", got)
	}
}

// TestObservedRefusals checks the reports and log lines of requests
// refused before any query: the code, the status, the request id from the
// header or made, the route, and no value of the query anywhere.
func TestObservedRefusals(t *testing.T) {
	var logs bytes.Buffer
	obs := &recordingObserver{}
	res := Must(New(Collection[bson.Raw]{
		Client:   offline,
		Coll:     offlineCollection(t, "things"),
		Policy:   Policy{Filter: map[string]Type{"age": Int}},
		Observer: obs,
		Logger:   slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}))
	mux := http.NewServeMux()
	mux.Handle("/things", res.Find())
	mux.Handle("GET /things/{id}", res.FindOne())

	req := func(method, target string, hdr map[string]string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, target, nil)
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		return w
	}
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	w1 := req(http.MethodGet, "/things?age=SECRET77", map[string]string{"X-Request-Id": "req-1", "Traceparent": tp})
	w2 := req(http.MethodPost, "/things", nil)
	w3 := req(http.MethodGet, "/things/not-an-id", nil)

	if len(obs.started) != 3 || len(obs.ended) != 3 {
		t.Fatalf("%d starts and %d ends, want 3 of each", len(obs.started), len(obs.ended))
	}
	want := []struct {
		status          int
		code, route, id string
		handler         string
	}{
		{400, "invalid_parameter", "/things", "req-1", "find"},
		{405, "method_not_allowed", "/things", "", "find"},
		{400, "invalid_object_id", "/things/{id}", "", "findOne"},
	}
	for i, rep := range obs.ended {
		w := want[i]
		if rep.Status != w.status || rep.Code != w.code || rep.Route != w.route || rep.Handler != w.handler ||
			rep.Collection != "things" || rep.Database != "db" || rep.Documents != 0 || rep.Duration <= 0 || rep.Bytes == 0 {
			t.Errorf("report %d: %+v, want status %d, code %s, route %s, handler %s", i, rep, w.status, w.code, w.route, w.handler)
		}
		if w.id != "" && rep.RequestID != w.id {
			t.Errorf("report %d: request id %q, want %q", i, rep.RequestID, w.id)
		}
		if rep.RequestID == "" || obs.started[i].RequestID != rep.RequestID {
			t.Errorf("report %d: request id %q at start, %q at end", i, obs.started[i].RequestID, rep.RequestID)
		}
	}
	if obs.ended[0].TraceParent != tp || obs.ended[1].TraceParent != "" {
		t.Errorf("trace parents %q, %q", obs.ended[0].TraceParent, obs.ended[1].TraceParent)
	}
	if got := w1.Header().Get(RequestIDHeader); got != "req-1" {
		t.Errorf("error answer's %s = %q, want req-1", RequestIDHeader, got)
	}
	if got := w3.Header().Get(RequestIDHeader); got != obs.ended[2].RequestID {
		t.Errorf("error answer's %s = %q, want the made id %q", RequestIDHeader, got, obs.ended[2].RequestID)
	}
	_ = w2

	// One line per failure that went through ErrorFunc (the 405 is
	// answered before), at Debug, with the id, the route and the code.
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d log lines, want 2:\n%s", len(lines), logs.String())
	}
	for i, want := range []string{
		`"level":"DEBUG","msg":"mongohttp: request failed","request_id":"req-1","method":"GET","route":"/things","path":"/things","status":400,"code":"invalid_parameter","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"}`,
		`"route":"/things/{id}","path":"/things/not-an-id","status":400,"code":"invalid_object_id"}`,
	} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("log line %d:\n%s\nwant it to contain\n%s", i, lines[i], want)
		}
	}
	if strings.Contains(logs.String(), "SECRET77") {
		t.Errorf("the logs hold a value of the query:\n%s", logs.String())
	}
}

// TestTooLargeBodyClosesTheConnection checks that a 413 for a body past
// MaxBodyBytes closes the connection, observed or not: the rest of the
// body is never read, so the connection cannot carry another request.
func TestTooLargeBodyClosesTheConnection(t *testing.T) {
	for name, obs := range map[string]Observer{"unobserved": nil, "observed": &recordingObserver{}} {
		t.Run(name, func(t *testing.T) {
			res := Must(New(Collection[bson.Raw]{Client: offline, Coll: offlineCollection(t, "things"), MaxBodyBytes: 1024, Observer: obs,
				Policy: Policy{Write: map[string]Type{"title": String}}}))
			srv := httptest.NewServer(res.Insert())
			defer srv.Close()
			body := `{"title":"` + strings.Repeat("x", 64<<10) + `"}`
			resp, err := http.Post(srv.URL, "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestEntityTooLarge || !resp.Close {
				t.Fatalf("status %d, connection closed %v; want 413 and closed", resp.StatusCode, resp.Close)
			}
		})
	}
}
