package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestTelemetry runs a service of its own with -trace, so that its
// metrics count only this test's requests: /metrics parses as the
// Prometheus text format and counts each request under its route, the
// spans of a request are on standard error with the incoming trace id,
// and a filter value is in neither.
func TestTelemetry(t *testing.T) {
	svc, err := startService([]string{"-addr", "127.0.0.1:0", "-debug-addr", "127.0.0.1:0", "-db", shared.dbName, "-max-time", testMaxTime.String(), "-trace"},
		map[string]string{"MONGODB_URI": shared.dbURI})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := svc.stop(); err != nil {
			t.Error(err)
		}
	}()
	const secret = "Secret-Name-Value"
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	resp, body := fetch(t, "GET", svc.base+"/users?name="+secret+"&limit=2",
		"Traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	wantStatus(t, resp, body, 200, "application/json")
	for range 2 {
		resp, body = fetch(t, "GET", svc.base+"/users/"+wantUsers[0].ID.Hex())
		wantStatus(t, resp, body, 200, "application/json")
	}
	resp, body = fetch(t, "GET", svc.base+"/users/not-an-id")
	wantStatus(t, resp, body, 400, "application/problem+json")

	resp, body = fetch(t, "GET", svc.base+"/metrics")
	wantProblem(t, resp, body, 404, "not_found") // never on the public address
	resp, body = fetch(t, "GET", svc.ops+"/metrics")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("/metrics: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if strings.Contains(string(body), secret) {
		t.Errorf("/metrics holds a filter value:\n%s", body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	counts := map[string]uint64{}
	for _, m := range families["http_server_request_duration_seconds"].GetMetric() {
		var route, status string
		for _, l := range m.GetLabel() {
			switch l.GetName() {
			case "http_route":
				route = l.GetValue()
			case "http_response_status_code":
				status = l.GetValue()
			}
		}
		counts[route+" "+status] += m.GetHistogram().GetSampleCount()
	}
	want := map[string]uint64{"/users 200": 1, "/users/{id} 200": 2, "/users/{id} 400": 1}
	if len(counts) != len(want) {
		t.Errorf("request counts %v, want %v", counts, want)
	}
	for k, n := range want {
		if counts[k] != n {
			t.Errorf("http_server_request_duration_seconds %s: %d, want %d", k, counts[k], n)
		}
	}
	if _, ok := families["db_client_connection_count"]; !ok {
		t.Error("/metrics has no pool gauges")
	}

	out := svc.stderr.String()
	var ids []string
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^span find users \(client\) \S+ trace=` + traceID + ` id=\w{16} parent=(\w{16}) db.system.name=mongodb `),
		regexp.MustCompile(`(?m)^span GET /users \(server\) \S+ trace=` + traceID + ` id=(\w{16}) parent=00f067aa0ba902b7\(remote\) http.request.method=GET `),
		regexp.MustCompile(`(?m)^span GET /users/\{id\} \(server\) .* mongohttp.documents=(1) `),
	} {
		m := want.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("standard error has no line matching %s:\n%s", want, out)
		}
		ids = append(ids, m[1])
	}
	if ids[0] != ids[1] {
		t.Errorf("the find's span has parent %s, not the request's span %s", ids[0], ids[1])
	}
	if strings.Contains(out, secret) {
		t.Errorf("the spans hold a filter value:\n%s", out)
	}
}
