package mongohttp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/mongo"
)

func TestAsError(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantCode   string
	}{
		{"sentinel", ErrFieldNotAllowed, 400, "field_not_allowed"},
		{"occurrence", ErrLimitExceeded.Detailf("limit %d", 5), 400, "limit_exceeded"},
		{"wrapped occurrence", fmt.Errorf("parsing: %w", ErrInvalidCursor.Detailf("bad")), 400, "invalid_cursor"},
		{"no documents", mongo.ErrNoDocuments, 404, "not_found"},
		{"deadline", context.DeadlineExceeded, 504, "timeout"},
		{"wrapped deadline", fmt.Errorf("find: %w", context.DeadlineExceeded), 504, "timeout"},
		{"maxTimeMS expired", mongo.CommandError{Code: 50, Name: "MaxTimeMSExpired"}, 504, "timeout"},
		{"shutdown in progress", mongo.CommandError{Code: 91, Name: "ShutdownInProgress"}, 503, "unavailable"},
		{"not primary", mongo.CommandError{Code: 10107, Name: "NotWritablePrimary"}, 503, "unavailable"},
		{"retryable label", mongo.CommandError{Code: 1234, Labels: []string{"RetryableError"}}, 503, "unavailable"},
		{"client closed", mongo.ErrClientDisconnected, 503, "unavailable"},
		{"server bug", mongo.CommandError{Code: 2, Name: "BadValue", Message: "secret server detail"}, 500, "internal"},
		{"anything else", errors.New("boom"), 500, "internal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AsError(tt.err)
			if got.Status != tt.wantStatus || got.Code != tt.wantCode {
				t.Fatalf("AsError(%v) = %d %s, want %d %s", tt.err, got.Status, got.Code, tt.wantStatus, tt.wantCode)
			}
			if !errors.Is(got, &Error{Code: tt.wantCode}) {
				t.Fatalf("errors.Is does not match by code")
			}
		})
	}
	if AsError(nil) != nil {
		t.Fatal("AsError(nil) != nil")
	}
}

func TestWriteError(t *testing.T) {
	cause := mongo.CommandError{Code: 2, Message: "secret server detail"}
	tests := []struct {
		name       string
		method     string
		err        error
		wantStatus int
		wantRetry  bool
		wantBody   bool
	}{
		{"client error", "GET", ErrUnknownParameter.Detailf(`unknown parameter "x"`), 400, false, true},
		{"unavailable", "GET", mongo.ErrClientDisconnected, 503, true, true},
		{"internal hides the cause", "GET", cause, 500, false, true},
		{"HEAD has no body", "HEAD", ErrNotFound, 404, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			rec.Header().Set("ETag", `"stale"`)
			WriteError(rec, httptest.NewRequest(tt.method, "/users/1", nil), tt.err)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d", rec.Code, tt.wantStatus)
			}
			h := rec.Header()
			if h.Get("Content-Type") != "application/problem+json" || h.Get("ETag") != "" || h.Get("Cache-Control") != "no-store" {
				t.Fatalf("headers %v", h)
			}
			if (h.Get("Retry-After") != "") != tt.wantRetry {
				t.Fatalf("Retry-After %q, want present=%v", h.Get("Retry-After"), tt.wantRetry)
			}
			if !tt.wantBody {
				if rec.Body.Len() != 0 {
					t.Fatalf("HEAD body %q", rec.Body)
				}
				return
			}
			var p map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
				t.Fatal(err)
			}
			e := AsError(tt.err)
			want := map[string]any{
				"type": ProblemTypeBase + e.Code, "title": e.Title, "status": float64(e.Status),
				"code": e.Code, "instance": "/users/1",
			}
			for k, v := range want {
				if p[k] != v {
					t.Fatalf("%s = %v, want %v (body %s)", k, p[k], v, rec.Body)
				}
			}
			if strings.Contains(rec.Body.String(), "secret server detail") {
				t.Fatalf("the cause leaked: %s", rec.Body)
			}
		})
	}
}

func TestMethodNotAllowed(t *testing.T) {
	rec := httptest.NewRecorder()
	(&HealthHandler{Client: Wrap(nil)}).ServeHTTP(rec, httptest.NewRequest(http.MethodDelete, "/", nil))
	if rec.Code != 405 || rec.Header().Get("Allow") != "GET, HEAD" {
		t.Fatalf("status %d, Allow %q", rec.Code, rec.Header().Get("Allow"))
	}
}

// TestWriteErrorWithoutAnErrorStatus checks that an *Error whose Status
// cannot carry a problem (net/http panics on WriteHeader(0)) and a nil
// error still end in a 500 problem answer, over a real connection.
func TestWriteErrorWithoutAnErrorStatus(t *testing.T) {
	errs := map[string]error{
		"zero":            &Error{Code: "custom", Detail: "an application error without a status"},
		"negative":        &Error{Status: -1, Code: "custom"},
		"success":         &Error{Status: 200, Code: "custom"},
		"redirect":        &Error{Status: 302, Code: "custom"},
		"just below 400":  &Error{Status: 399, Code: "custom"},
		"just above 599":  &Error{Status: 600, Code: "custom"},
		"three digits":    &Error{Status: 999, Code: "custom"},
		"four digits":     &Error{Status: 1000, Code: "custom"},
		"wrapped zero":    fmt.Errorf("hook: %w", &Error{Code: "custom"}),
		"zero in a chain": errors.Join(errors.New("first"), &Error{Status: 0}),
		"nil":             nil,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, r, errs[r.URL.Query().Get("case")])
	}))
	defer srv.Close()
	for name := range errs {
		t.Run(name, func(t *testing.T) {
			resp, err := http.Get(srv.URL + "/things/1?case=" + url.QueryEscape(name))
			if err != nil {
				t.Fatalf("the connection failed: %v", err)
			}
			defer resp.Body.Close()
			var p map[string]any
			if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 500 || resp.Header.Get("Content-Type") != "application/problem+json" ||
				p["status"] != float64(500) || p["code"] != "internal" || p["title"] != "Internal error" {
				t.Fatalf("status %d, %v", resp.StatusCode, p)
			}
			if strings.Contains(fmt.Sprint(p), "custom") || strings.Contains(fmt.Sprint(p), "application error") {
				t.Fatalf("the broken error leaked: %v", p)
			}
		})
	}
	if got := AsError(&Error{Code: "custom"}); got.Status != 500 || !errors.Is(got, ErrInternal) {
		t.Errorf("AsError of a status-less *Error = %d %s, want 500 internal", got.Status, got.Code)
	}
}

// TestWriteErrorKeepsApplicationErrors checks that an application's own
// *Error with a valid status keeps it, and gets a title when it has none.
func TestWriteErrorKeepsApplicationErrors(t *testing.T) {
	rec := httptest.NewRecorder()
	WriteError(rec, httptest.NewRequest("GET", "/x", nil), &Error{Status: 403, Code: "forbidden", Detail: "not yours"})
	var p map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatal(err)
	}
	if rec.Code != 403 || p["code"] != "forbidden" || p["title"] != "Forbidden" || p["detail"] != "not yours" {
		t.Fatalf("status %d, %v", rec.Code, p)
	}
}

// TestProblemEchoesAreBounded checks that a problem never echoes more than
// a bounded, escaped part of the request: a 1 MB path full of NUL bytes, an
// invalid UTF-8 path, a huge method, a huge detail.
func TestProblemEchoesAreBounded(t *testing.T) {
	problem := func(t *testing.T, r *http.Request, err error) (map[string]any, []byte) {
		t.Helper()
		rec := httptest.NewRecorder()
		WriteError(rec, r, err)
		body := rec.Body.Bytes()
		if len(body) > 2048 {
			t.Fatalf("the problem is %d bytes long", len(body))
		}
		for _, c := range body[:len(body)-1] { // the final newline is ours
			if c < 0x20 {
				t.Fatalf("raw control byte %#x in %q", c, body)
			}
		}
		var p map[string]any
		if err := json.Unmarshal(body, &p); err != nil {
			t.Fatal(err)
		}
		return p, body
	}

	// The cut never splits a percent-escape, wherever the boundary falls.
	for prefix := range 3 {
		path := "/" + strings.Repeat("a", prefix) + strings.Repeat("%00", 1<<20/3)
		p, _ := problem(t, httptest.NewRequest("GET", path, nil), ErrNotFound)
		inst, _ := p["instance"].(string)
		if len(inst) > MaxInstanceLength || len(inst) < MaxInstanceLength-2 || !strings.HasPrefix(inst, "/"+strings.Repeat("a", prefix)+"%00") {
			t.Fatalf("instance of %d bytes: %.80q…", len(inst), inst)
		}
		if _, err := url.PathUnescape(inst); err != nil {
			t.Fatalf("instance %q ends in a cut escape: %v", inst[len(inst)-6:], err)
		}
	}

	p, _ := problem(t, httptest.NewRequest("GET", "/users/%FF%00x", nil), ErrInvalidObjectID)
	if p["instance"] != "/users/%FF%00x" {
		t.Errorf("instance %q, want the percent-encoded path", p["instance"])
	}

	long := strings.Repeat("é", 100<<10)
	p, _ = problem(t, httptest.NewRequest("GET", "/", nil), &Error{Status: 400, Code: "app", Detail: long})
	if d, _ := p["detail"].(string); len(d) > 1024 || !strings.HasPrefix(d, "éé") || !strings.HasSuffix(d, "…") {
		t.Errorf("detail of %d bytes", len(d))
	}

	rec := httptest.NewRecorder()
	(&HealthHandler{Client: Wrap(nil)}).ServeHTTP(rec, httptest.NewRequest(strings.Repeat("X", 100<<10), "/", nil))
	if rec.Code != 405 || rec.Body.Len() > 512 {
		t.Errorf("405 for a long method: status %d, %d bytes", rec.Code, rec.Body.Len())
	}
}

// TestSentinelsCannotBeChanged checks that what AsError returns, and what
// an ErrorFunc receives, is never the package's own sentinel: changing it
// must not change ErrNotFound and the others for the whole process.
func TestSentinelsCannotBeChanged(t *testing.T) {
	before := make([]Error, len(sentinels))
	for i, s := range sentinels {
		before[i] = *s
	}
	spoil := func(e *Error) {
		e.Status, e.Code, e.Title, e.Detail, e.Err = 418, "spoiled", "Spoiled", "spoiled", errors.New("spoiled")
	}
	for _, s := range sentinels {
		for _, err := range []error{s, fmt.Errorf("hook: %w", s), errors.Join(errors.New("x"), s), s.Detailf("an occurrence")} {
			got := AsError(err)
			if !errors.Is(got, s) {
				t.Errorf("AsError(%v) = %v, which does not match its sentinel", err, got)
			}
			spoil(got)

			// What an ErrorFunc receives.
			received := detachSentinel(err)
			if !errors.Is(received, s) || received.Error() != err.Error() {
				t.Errorf("detachSentinel(%v) = %v, which does not match", err, received)
			}
			var e *Error
			if !errors.As(received, &e) {
				t.Fatalf("detachSentinel(%v) holds no *Error", err)
			}
			spoil(e)
			spoil(AsError(received))
		}
	}
	for i, s := range sentinels {
		if !reflect.DeepEqual(*s, before[i]) {
			t.Errorf("sentinel %s was changed to %+v", before[i].Code, *s)
		}
	}
	if e, ok := detachSentinel(ErrNotFound).(*Error); !ok || e == ErrNotFound {
		t.Errorf("a bare sentinel must become a copy of type *Error, got %T", detachSentinel(ErrNotFound))
	}
	if err := errors.New("plain"); detachSentinel(err) != err {
		t.Error("an error without a sentinel must pass unchanged")
	}
	if occ := ErrNotFound.Detailf("x"); detachSentinel(occ) != error(occ) {
		t.Error("an occurrence is already a copy and must pass unchanged")
	}
}
