package mongohttp

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestHandlersWithoutClient checks the rule HealthHandler and StatsHandler
// share: with no Client and no client in the request's context they answer
// 500 "internal" and log an Error, and never create the default client
// (which would dial MONGODB_URI or localhost).
func TestHandlersWithoutClient(t *testing.T) {
	resetDefault(t)
	// Were Default called, it would build a client for this URI and keep it.
	t.Setenv("MONGODB_URI", "mongodb://127.0.0.1:1")
	for _, tc := range []struct {
		name string
		h    func(*slog.Logger) http.Handler
	}{
		{"HealthHandler", func(l *slog.Logger) http.Handler { return &HealthHandler{Logger: l} }},
		{"StatsHandler", func(l *slog.Logger) http.Handler { return &StatsHandler{Logger: l} }},
	} {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			t.Run(tc.name+" "+method, func(t *testing.T) {
				var logs bytes.Buffer
				logger := slog.New(slog.NewJSONHandler(&logs, nil))
				rec := httptest.NewRecorder()
				tc.h(logger).ServeHTTP(rec, httptest.NewRequest(method, "/probe", nil))

				if rec.Code != http.StatusInternalServerError || rec.Header().Get("Content-Type") != "application/problem+json" {
					t.Fatalf("status %d, Content-Type %q; want 500 application/problem+json", rec.Code, rec.Header().Get("Content-Type"))
				}
				if method == http.MethodGet {
					var p problemBody
					if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Code != "internal" || p.Status != 500 {
						t.Fatalf("body %s (%v), want code internal", rec.Body, err)
					}
					if strings.Contains(p.Detail, "Middleware") || strings.Contains(p.Detail, "configured") {
						t.Errorf("the detail shows the cause to the client: %q", p.Detail)
					}
				} else if rec.Body.Len() != 0 {
					t.Errorf("HEAD answered a body: %s", rec.Body)
				}
				var line struct {
					Level string `json:"level"`
					Msg   string `json:"msg"`
				}
				if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
					t.Fatalf("log %q: %v", logs.String(), err)
				}
				if line.Level != "ERROR" || !strings.Contains(line.Msg, tc.name) || !strings.Contains(line.Msg, "no client is configured") {
					t.Errorf("log line %+v, want an ERROR naming %s and saying no client is configured", line, tc.name)
				}
				if c := SetDefault(nil); c != nil {
					_ = c.Close(context.Background())
					t.Fatal("the handler created the default client")
				}
			})
		}
	}
}

// TestHandlersTakeTheClientFromTheContext checks the other two branches of
// the rule without a server: the client in the context (from Middleware) is
// used, and an explicit Client is used without one.
func TestHandlersTakeTheClientFromTheContext(t *testing.T) {
	resetDefault(t)
	// Nothing listens on port 1: a ping fails fast, so a health check through
	// this client answers 503, which tells it was the client used.
	c, err := ConnectConfig(context.Background(), Config{
		URI:  "mongodb://127.0.0.1:1",
		Pool: PoolConfig{ServerSelectionTimeout: 200 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	quiet := slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil))

	cases := []struct {
		name   string
		h      http.Handler
		status int
		want   string
	}{
		{"health from context", c.Middleware(&HealthHandler{Logger: quiet, Timeout: time.Second}), 503, `"code":"unavailable"`},
		{"health explicit", &HealthHandler{Client: c, Logger: quiet, Timeout: time.Second}, 503, `"code":"unavailable"`},
		{"stats from context", c.Middleware(&StatsHandler{Logger: quiet}), 200, `"current":{`},
		{"stats explicit", &StatsHandler{Client: c, Logger: quiet}, 200, `"cumulative":{`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			tc.h.ServeHTTP(rec, httptest.NewRequest("GET", "/probe", nil))
			if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.want) {
				t.Fatalf("%d %s; want %d with %s", rec.Code, rec.Body, tc.status, tc.want)
			}
		})
	}
	if d := SetDefault(nil); d != nil {
		t.Fatal("a handler created the default client")
	}
}
