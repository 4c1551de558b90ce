package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// TestReadmeTryWrites replays the write examples of docs/example.md in
// order. Ids and ETags differ on every run: each one an answer shows is
// mapped to the one this run got, in later commands and when answers are
// compared.
func TestReadmeTryWrites(t *testing.T) {
	block := docBlock(t, "docs/example.md", "trywrites", "console")
	shown := map[string]string{} // documented value → this run's value
	var created []string
	t.Cleanup(func() { deletePosts(t, created) })
	toRun := func(s string) string {
		for shownValue, actual := range shown {
			s = strings.ReplaceAll(s, shownValue, actual)
		}
		return s
	}
	toShown := func(s string) string {
		for shownValue, actual := range shown {
			s = strings.ReplaceAll(s, actual, shownValue)
		}
		return s
	}
	runs := 0
	for _, example := range strings.Split(strings.TrimSpace(block), "\n\n$ ") {
		example = "$ " + strings.TrimPrefix(example, "$ ")
		command, rest, _ := strings.Cut(example, "\n")
		req, withHeaders := curlRequest(t, toRun(command))
		runs++
		resp, body := send(t, req.method, req.path, req.header.Get("Content-Type"), req.body, req.headerPairs()...)
		var status string
		var headers []string
		wantBody := rest
		if withHeaders {
			head, b, _ := strings.Cut(rest, "\n\n")
			lines := strings.Split(head, "\n")
			status, headers, wantBody = lines[0], lines[1:], b
		}
		if withHeaders && "HTTP/1.1 "+resp.Status != status {
			t.Fatalf("%s: status %q, the docs show %q", command, resp.Status, status)
		}
		for _, h := range headers {
			name, want, _ := strings.Cut(h, ": ")
			got := resp.Header.Get(name)
			if name == "Location" || name == "Etag" {
				// Learn this run's value for the documented one.
				shown[want] = got
				if name == "Location" {
					shown[strings.TrimPrefix(want, "/posts/")] = strings.TrimPrefix(got, "/posts/")
					created = append(created, strings.TrimPrefix(got, "/posts/"))
				}
				continue
			}
			if got != want {
				t.Errorf("%s: %s %q, the docs show %q", command, name, got, want)
			}
		}
		if got := toShown(strings.TrimSuffix(string(body), "\n")); got != strings.TrimSpace(wantBody) {
			t.Fatalf("%s: body\n%s\nthe docs show\n%s", command, got, wantBody)
		}
	}
	if runs != 5 {
		t.Errorf("%d curl lines in the trywrites section, want 5", runs)
	}
}

// curlCall is a curl command line of the docs, parsed.
type curlCall struct {
	method, path, body string
	header             http.Header
}

func (c curlCall) headerPairs() []string {
	var out []string
	for k, vs := range c.header {
		if k != "Content-Type" {
			out = append(out, k, vs[0])
		}
	}
	return out
}

// curlRequest parses the curl lines the docs use: -s, -i, -X, -H, -d and
// a localhost:8080 URL, with single-quoted arguments.
func curlRequest(t *testing.T, line string) (curlCall, bool) {
	t.Helper()
	args := shellWords(strings.TrimPrefix(line, "$ "))
	if len(args) == 0 || args[0] != "curl" {
		t.Fatalf("docs line %q is not a curl line", line)
	}
	c := curlCall{method: "GET", header: http.Header{}}
	withHeaders, method := false, ""
	for i := 1; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-s":
		case a == "-si":
			withHeaders = true
		case a == "-X":
			i++
			method = args[i]
		case a == "-H":
			i++
			k, v, _ := strings.Cut(args[i], ": ")
			c.header.Set(k, v)
		case a == "-d":
			i++
			c.body, c.method = args[i], "POST"
		case strings.HasPrefix(a, "localhost:8080/"):
			c.path = strings.TrimPrefix(a, "localhost:8080")
		default:
			t.Fatalf("docs line %q: argument %q is not one the test understands", line, a)
		}
	}
	if method != "" {
		c.method = method
	}
	return c, withHeaders
}

// shellWords splits a command line at spaces outside single quotes.
func shellWords(s string) []string {
	var out []string
	var cur strings.Builder
	quoted, any := false, false
	for _, r := range s {
		switch {
		case r == '\'':
			quoted, any = !quoted, true
		case r == ' ' && !quoted:
			if any {
				out = append(out, cur.String())
				cur.Reset()
				any = false
			}
		default:
			cur.WriteRune(r)
			any = true
		}
	}
	if any {
		out = append(out, cur.String())
	}
	return out
}

// deletePosts removes posts a test created, should it stop half-way.
func deletePosts(t *testing.T, ids []string) {
	if len(ids) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mc, err := mongo.Connect(options.Client().ApplyURI(shared.dbURI))
	if err != nil {
		t.Error(err)
		return
	}
	defer func() { _ = mc.Disconnect(ctx) }()
	var oids bson.A
	for _, id := range ids {
		if oid, err := bson.ObjectIDFromHex(id); err == nil {
			oids = append(oids, oid)
		}
	}
	if _, err := mc.Database(shared.dbName).Collection("posts").DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: oids}}}}); err != nil {
		t.Error(err)
	}
}
