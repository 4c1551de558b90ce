package mongohttp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
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
