package integration_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/mongohttp/mongohttp"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// problemDetail returns the detail of a problem answer.
func problemDetail(t *testing.T, r response) string {
	t.Helper()
	var p struct {
		Detail string `json:"detail"`
	}
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("status %d, body %s: %v", r.status, r.body, err)
	}
	return p.Detail
}

// TestConditionalHeadersFailClosed: a conditional header that is present
// is a condition, whatever it holds. One that names no usable entity tag
// (empty, commas, weak tags only) is a 412 that does not say the document
// changed; a malformed one is a 400; a tag is compared whole, never by its
// version prefix; If-Match needs an existing document, "*" included, even
// beside If-None-Match: *. Nothing is written by any of them.
func TestConditionalHeadersFailClosed(t *testing.T) {
	f := newWriteFixture(t, nil)
	id, etag := f.insertNote(t, "/notes", `{"title":"kept","likes":1}`)
	version, _, _ := strings.Cut(strings.Trim(etag, `"`), ".")
	missing := bson.NewObjectID().Hex()
	const put, patch = "application/json", "application/merge-patch+json"
	for _, tt := range []struct {
		name, method, target, ct, body string
		header                         []string
		status                         int
		code                           string
	}{
		{"PUT empty If-Match", "PUT", "/notes/" + id, put, `{"title":"x"}`, []string{"If-Match", ""}, 412, "precondition_failed"},
		{"PUT comma If-Match", "PUT", "/notes/" + id, put, `{"title":"x"}`, []string{"If-Match", ","}, 412, "precondition_failed"},
		{"PUT commas and spaces", "PUT", "/notes/" + id, put, `{"title":"x"}`, []string{"If-Match", " , ,\t, "}, 412, "precondition_failed"},
		{"PATCH empty If-Match", "PATCH", "/notes/" + id, patch, `{"likes":9}`, []string{"If-Match", ""}, 412, "precondition_failed"},
		{"DELETE empty If-Match", "DELETE", "/notes/" + id, "", "", []string{"If-Match", ""}, 412, "precondition_failed"},
		{"DELETE comma If-Match", "DELETE", "/notes/" + id, "", "", []string{"If-Match", ","}, 412, "precondition_failed"},
		{"weak tag", "PATCH", "/notes/" + id, patch, `{"likes":9}`, []string{"If-Match", "W/" + etag}, 412, "precondition_failed"},
		{"version with another hash", "PATCH", "/notes/" + id, patch, `{"likes":9}`, []string{"If-Match", `"` + version + `.bogus"`}, 412, "precondition_failed"},
		{"version alone", "DELETE", "/notes/" + id, "", "", []string{"If-Match", `"` + version + `."`}, 412, "precondition_failed"},
		{"the ETag with a suffix", "PUT", "/notes/" + id, put, `{"title":"x"}`, []string{"If-Match", strings.TrimSuffix(etag, `"`) + `x"`}, 412, "precondition_failed"},
		{"unquoted tag", "PATCH", "/notes/" + id, patch, `{"likes":9}`, []string{"If-Match", strings.Trim(etag, `"`)}, 400, "invalid_parameter"},
		{"junk", "PUT", "/notes/" + id, put, `{"title":"x"}`, []string{"If-Match", "junk"}, 400, "invalid_parameter"},
		{"unterminated tag", "DELETE", "/notes/" + id, "", "", []string{"If-Match", `"abc`}, 400, "invalid_parameter"},
		{"star among tags", "PUT", "/notes/" + id, put, `{"title":"x"}`, []string{"If-Match", "*, " + etag}, 400, "invalid_parameter"},
		{"empty If-None-Match on PUT", "PUT", "/notes/" + id, put, `{"title":"x"}`, []string{"If-None-Match", ""}, 400, "invalid_parameter"},
		{"If-None-Match * on PATCH", "PATCH", "/notes/" + id, patch, `{"likes":9}`, []string{"If-None-Match", "*"}, 400, "invalid_parameter"},
		{"If-None-Match tag on DELETE", "DELETE", "/notes/" + id, "", "", []string{"If-None-Match", `"x"`}, 400, "invalid_parameter"},
		{"If-Match and If-None-Match: * on an existing document", "PUT", "/notes/" + id, put, `{"title":"x"}`, []string{"If-Match", etag, "If-None-Match", "*"}, 412, "precondition_failed"},

		// RFC 9110 13.1.1: If-Match on a missing document is false.
		{"PUT If-Match * missing", "PUT", "/notes/" + missing, put, `{"title":"x"}`, []string{"If-Match", "*"}, 412, "precondition_failed"},
		{"PUT If-Match tag missing", "PUT", "/notes/" + missing, put, `{"title":"x"}`, []string{"If-Match", etag}, 412, "precondition_failed"},
		{"PUT bogus If-Match and If-None-Match: *", "PUT", "/notes/" + missing, put, `{"title":"x"}`, []string{"If-Match", `"bogus"`, "If-None-Match", "*"}, 412, "precondition_failed"},
		{"PUT If-Match * and If-None-Match: *", "PUT", "/notes/" + missing, put, `{"title":"x"}`, []string{"If-Match", "*", "If-None-Match", "*"}, 412, "precondition_failed"},
		{"PUT empty If-Match missing", "PUT", "/notes/" + missing, put, `{"title":"x"}`, []string{"If-Match", ""}, 412, "precondition_failed"},
		{"PATCH If-Match missing", "PATCH", "/notes/" + missing, patch, `{"likes":9}`, []string{"If-Match", etag}, 412, "precondition_failed"},
		{"DELETE If-Match * missing", "DELETE", "/notes/" + missing, "", "", []string{"If-Match", "*"}, 412, "precondition_failed"},
		{"PUT empty If-None-Match missing", "PUT", "/notes/" + missing, put, `{"title":"x"}`, []string{"If-None-Match", ""}, 400, "invalid_parameter"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := f.send(t, tt.method, tt.target, tt.ct, tt.body, tt.header...)
			if got.status != tt.status {
				t.Fatalf("%d %s, want %d", got.status, got.body, tt.status)
			}
			checkProblem(t, got, tt.code)
			if d := problemDetail(t, got); strings.Contains(d, "changed") || strings.Contains(d, "written since") {
				if !strings.HasPrefix(tt.name, "version") && !strings.HasPrefix(tt.name, "the ETag") {
					t.Errorf("the detail claims the document changed: %q", d)
				}
			}
			if m := f.stored(t, id); m == nil || m["title"] != "kept" || m["likes"] != int32(1) {
				t.Fatalf("the document was written: %v", m)
			}
			if m := f.stored(t, missing); m != nil {
				t.Fatalf("the missing document was created: %v", m)
			}
		})
	}
	// The ETag itself, in any valid list, still works.
	if got := f.send(t, "PATCH", "/notes/"+id, patch, `{"likes":2}`, "If-Match", `"other", `+etag); got.status != 200 {
		t.Fatalf("If-Match listing the ETag: %d %s", got.status, got.body)
	}
}

// TestRequireIfMatchEmptyHeader: under RequireIfMatch a present but empty
// If-Match neither passes nor counts as absent.
func TestRequireIfMatchEmptyHeader(t *testing.T) {
	f := newWriteFixture(t, func(c *mongohttp.Collection[note]) { c.RequireIfMatch = true })
	id, _ := f.insertNote(t, "/notes", `{"title":"kept"}`)
	for _, v := range []string{"", ",", " "} {
		got := f.send(t, "PATCH", "/notes/"+id, "application/merge-patch+json", `{"likes":1}`, "If-Match", v)
		if got.status != 412 && got.status != 428 {
			t.Fatalf("If-Match %q: %d %s", v, got.status, got.body)
		}
		if m := f.stored(t, id); m["likes"] != nil {
			t.Fatalf("If-Match %q wrote: %v", v, m)
		}
	}
}

// TestConcurrentCreatingPuts: PUTs without a precondition racing to create
// one new id: one creates (201), the others replace what it created
// (200). None is a 412: no precondition was given, so none failed.
func TestConcurrentCreatingPuts(t *testing.T) {
	f := newWriteFixture(t, nil)
	for round := range 3 {
		id := bson.NewObjectID().Hex()
		const n = 8
		statuses := make([]response, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				statuses[i] = f.send(t, "PUT", "/notes/"+id, "application/json", fmt.Sprintf(`{"title":"w%d"}`, i))
			}()
		}
		close(start)
		wg.Wait()
		count := map[int]int{}
		for _, r := range statuses {
			count[r.status]++
		}
		if count[201] != 1 || count[200] != n-1 {
			for _, r := range statuses {
				if r.status != 200 && r.status != 201 {
					t.Logf("%d %s", r.status, r.body)
				}
			}
			t.Fatalf("round %d: statuses %v, want 1×201 and %d×200", round, count, n-1)
		}
		if m := f.stored(t, id); m == nil || !strings.HasPrefix(fmt.Sprint(m["title"]), "w") {
			t.Fatalf("stored %v", m)
		}
	}
}
