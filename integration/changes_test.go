package integration_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mongohttp/mongohttp"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// feedSettings are short, so that the tests see changes quickly.
var feedSettings = mongohttp.ChangeFeed{Poll: 50 * time.Millisecond, Overlap: 3 * time.Second, Heartbeat: 200 * time.Millisecond}

// feedFixture serves notes with their writes and feeds: /notes/changes
// for all, /g/{group}/notes/changes scoped to a group.
type feedFixture struct {
	*writeFixture
	all, group *mongohttp.Feed
}

func newFeedFixture(t *testing.T, feed mongohttp.ChangeFeed) *feedFixture {
	t.Helper()
	c := connect(t, mongohttp.PoolConfig{})
	coll := database(t, c).Collection("notes")
	decl := mongohttp.Collection[note]{
		Client: c, Coll: coll, Policy: notesPolicy, Admission: mongohttp.Admission{MaxActive: -1}, Changes: &feed,
		Prepare: func(r *http.Request, op mongohttp.WriteOp, n *note) error {
			if n.Password != "" {
				n.PasswordHash, n.Password = "hash:"+strings.ToUpper(n.Password), ""
			}
			return nil
		},
	}
	decl.Policy.CursorKey = []byte("0123456789abcdef-feed-tests")
	all := mongohttp.Must(mongohttp.New(decl))
	scoped := decl
	scoped.BaseFilter = func(r *http.Request) (bson.D, error) {
		return bson.D{{Key: "group", Value: r.PathValue("group")}}, nil
	}
	group := mongohttp.Must(mongohttp.New(scoped))
	f := &feedFixture{writeFixture: &writeFixture{coll: coll}, all: all.Changes(), group: group.Changes()}
	mux := http.NewServeMux()
	mux.Handle("/notes", mongohttp.Methods{"GET": all.Find(), "POST": all.Insert()})
	mux.Handle("GET /notes/changes", f.all)
	mux.Handle("/notes/{id}", mongohttp.Methods{"GET": all.FindOne(), "PUT": all.Replace(), "PATCH": all.Patch(), "DELETE": all.Delete()})
	mux.Handle("/g/{group}/notes", mongohttp.Methods{"GET": group.Find(), "POST": group.Insert()})
	mux.Handle("GET /g/{group}/notes/changes", f.group)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// feedEvent is one Server-Sent Event as a client sees it.
type feedEvent struct {
	kind, id string
	data     map[string]any
}

// eventReader reads a stream of Server-Sent Events, as EventSource does:
// lastID follows every id line, with or without data.
type eventReader struct {
	resp   *http.Response
	events chan feedEvent
	mu     sync.Mutex
	lastID string
	done   chan struct{}
}

func openFeed(t *testing.T, url string, header ...string) *eventReader {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	e := &eventReader{resp: resp, events: make(chan feedEvent, 10000), done: make(chan struct{})}
	go e.read(t)
	t.Cleanup(e.close)
	return e
}

func (e *eventReader) close() { e.resp.Body.Close() }

func (e *eventReader) read(t *testing.T) {
	defer close(e.done)
	defer close(e.events)
	sc := bufio.NewScanner(e.resp.Body)
	sc.Buffer(nil, 1<<24)
	var ev feedEvent
	var data string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if ev.id != "" {
				e.mu.Lock()
				e.lastID = ev.id
				e.mu.Unlock()
			}
			if data != "" {
				if strings.Contains(data, "password") || strings.Contains(data, "hash:") {
					t.Errorf("a hidden field left the server: %s", data)
				}
				if err := json.Unmarshal([]byte(data), &ev.data); err != nil {
					t.Errorf("event data %q: %v", data, err)
				}
				e.events <- ev
			}
			ev, data = feedEvent{}, ""
		case strings.HasPrefix(line, "event: "):
			ev.kind = line[len("event: "):]
		case strings.HasPrefix(line, "id: "):
			ev.id = line[len("id: "):]
		case strings.HasPrefix(line, "data: "):
			data = line[len("data: "):]
		}
	}
}

func (e *eventReader) last() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.lastID
}

// next returns the next event, failing the test after within.
func (e *eventReader) next(t *testing.T, within time.Duration) feedEvent {
	t.Helper()
	select {
	case ev, ok := <-e.events:
		if !ok {
			t.Fatal("the stream ended")
		}
		return ev
	case <-time.After(within):
		t.Fatalf("no event within %s", within)
	}
	return feedEvent{}
}

// replica applies events to a map of documents by id, as a client would.
type replica map[string]map[string]any

func (rep replica) apply(ev feedEvent) {
	id := fmt.Sprint(ev.data["_id"])
	switch ev.kind {
	case "change":
		rep[id] = ev.data
	case "remove":
		delete(rep, id)
	}
}

// until applies events to rep until cond holds.
func (e *eventReader) until(t *testing.T, rep replica, within time.Duration, what string, cond func(replica) bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond(rep) {
		select {
		case ev, ok := <-e.events:
			if !ok {
				t.Fatalf("the stream ended before %s", what)
			}
			rep.apply(ev)
		case <-time.After(time.Until(deadline)):
			t.Fatalf("after %s: %s; replica %v", within, what, rep)
		}
	}
}

func likesOf(rep replica, id string) any {
	if d, ok := rep[id]; ok {
		return d["likes"]
	}
	return nil
}

func (f *feedFixture) insert(t *testing.T, target, body string) string {
	t.Helper()
	r := f.send(t, http.MethodPost, target, "application/json", body)
	if r.status != http.StatusCreated {
		t.Fatalf("POST %s: %d %s", target, r.status, r.body)
	}
	return jsonDoc(t, r)["_id"].(string)
}

func (f *feedFixture) patch(t *testing.T, id, body string) {
	t.Helper()
	if r := f.send(t, http.MethodPatch, "/notes/"+id, "application/merge-patch+json", body); r.status != http.StatusOK {
		t.Fatalf("PATCH %s: %d %s", id, r.status, r.body)
	}
}

func (f *feedFixture) remove(t *testing.T, id string) {
	t.Helper()
	if r := f.send(t, http.MethodDelete, "/notes/"+id, "", ""); r.status != http.StatusNoContent {
		t.Fatalf("DELETE %s: %d %s", id, r.status, r.body)
	}
}

// TestChangesStream follows a filtered feed from since=0: the snapshot,
// then inserts, patches across the filter's threshold and deletes, as
// changes and removals, with the hidden field never sent.
func TestChangesStream(t *testing.T) {
	f := newFeedFixture(t, feedSettings)
	a := f.insert(t, "/notes", `{"title":"a","likes":10,"password":"secret"}`)
	f.insert(t, "/notes", `{"title":"low","likes":1}`)
	feed := openFeed(t, f.srv.URL+"/notes/changes?likes[gte]=5&since=0")
	rep := replica{}
	first := feed.next(t, 5*time.Second)
	if first.kind != "change" || first.data["_id"] != a || first.id == "" {
		t.Fatalf("first event %+v, want the snapshot's change of %s with an id", first, a)
	}
	rep.apply(first)
	b := f.insert(t, "/notes", `{"title":"b","likes":7}`)
	feed.until(t, rep, 5*time.Second, "the insert arrives", func(r replica) bool { return r[b] != nil })
	f.patch(t, a, `{"likes":2}`) // leaves the filter
	feed.until(t, rep, 5*time.Second, "the patched-out document is removed", func(r replica) bool { return r[a] == nil })
	f.patch(t, b, `{"likes":70}`)
	feed.until(t, rep, 5*time.Second, "the patch arrives", func(r replica) bool { return likesOf(r, b) == 70.0 })
	f.remove(t, b)
	feed.until(t, rep, 5*time.Second, "the delete arrives", func(r replica) bool { return r[b] == nil })
	f.patch(t, a, `{"likes":50,"password":"other"}`) // comes back into the filter
	feed.until(t, rep, 5*time.Second, "the document comes back", func(r replica) bool { return likesOf(r, a) == 50.0 })
	if len(rep) != 1 {
		t.Fatalf("replica %v, want only %s", rep, a)
	}
}

// TestChangesResume disconnects a client, writes while it is away, and
// resumes with Last-Event-ID and with since=: it gets what it missed.
func TestChangesResume(t *testing.T) {
	f := newFeedFixture(t, feedSettings)
	a := f.insert(t, "/notes", `{"title":"a","likes":1}`)
	b := f.insert(t, "/notes", `{"title":"b","likes":1}`)
	feed := openFeed(t, f.srv.URL+"/notes/changes?since=0")
	rep := replica{}
	feed.until(t, rep, 5*time.Second, "the snapshot", func(r replica) bool { return len(r) == 2 })
	// A heartbeat moves the token past the snapshot.
	snapshot := feed.last()
	eventually(t, 5*time.Second, "a heartbeat's token after the snapshot", func() bool { return feed.last() != snapshot })
	token := feed.last()
	feed.close()
	<-feed.done
	f.patch(t, a, `{"likes":3}`)
	f.remove(t, b)
	c := f.insert(t, "/notes", `{"title":"c","likes":1}`)

	for _, how := range []string{"Last-Event-ID", "since"} {
		t.Run(how, func(t *testing.T) {
			again := replica{}
			for k, v := range rep {
				again[k] = v
			}
			var resumed *eventReader
			if how == "since" {
				resumed = openFeed(t, f.srv.URL+"/notes/changes?since="+token)
			} else {
				resumed = openFeed(t, f.srv.URL+"/notes/changes?since=0", "Last-Event-ID", token)
			}
			resumed.until(t, again, 5*time.Second, "the missed writes", func(r replica) bool {
				return likesOf(r, a) == 3.0 && r[b] == nil && r[c] != nil
			})
		})
	}
}

// TestChangesScoped follows two groups' feeds while a note moves from one
// group to the other: it leaves the first (remove) and enters the second.
func TestChangesScoped(t *testing.T) {
	f := newFeedFixture(t, feedSettings)
	x := f.insert(t, "/g/x/notes", `{"title":"n","likes":1}`)
	f.insert(t, "/g/y/notes", `{"title":"m","likes":1}`)
	fx := openFeed(t, f.srv.URL+"/g/x/notes/changes?since=0")
	fy := openFeed(t, f.srv.URL+"/g/y/notes/changes?since=0")
	rx, ry := replica{}, replica{}
	fx.until(t, rx, 5*time.Second, "x's snapshot", func(r replica) bool { return len(r) == 1 && r[x] != nil })
	fy.until(t, ry, 5*time.Second, "y's snapshot", func(r replica) bool { return len(r) == 1 })
	// notes' policy cannot write group: move it the way another program would,
	// with a new version, as mongohttp's writes do.
	oid, _ := bson.ObjectIDFromHex(x)
	if _, err := f.coll.UpdateByID(context.Background(), oid, bson.D{{Key: "$set", Value: bson.D{
		{Key: "group", Value: "y"}, {Key: "_etag", Value: bson.NewObjectID()}}}}); err != nil {
		t.Fatal(err)
	}
	fx.until(t, rx, 5*time.Second, "the note leaves x", func(r replica) bool { return len(r) == 0 })
	fy.until(t, ry, 5*time.Second, "the note enters y", func(r replica) bool { return len(r) == 2 && r[x] != nil })
}

// TestChangesPull reads the pull form as JSON and NDJSON, and continues
// from its token.
func TestChangesPull(t *testing.T) {
	f := newFeedFixture(t, feedSettings)
	a := f.insert(t, "/notes", `{"title":"a","likes":1,"password":"pw"}`)
	get := func(target, accept string) (int, string) {
		r := f.send(t, http.MethodGet, target, "", "", "Accept", accept)
		return r.status, string(r.body)
	}
	status, body := get("/notes/changes?since=0", "application/json")
	var page struct {
		Changes []struct {
			Event string         `json:"event"`
			Data  map[string]any `json:"data"`
		} `json:"changes"`
		Next string `json:"next"`
	}
	if status != http.StatusOK || json.Unmarshal([]byte(body), &page) != nil || len(page.Changes) != 1 ||
		page.Changes[0].Event != "change" || page.Changes[0].Data["_id"] != a || page.Next == "" {
		t.Fatalf("since=0: %d %s", status, body)
	}
	f.patch(t, a, `{"likes":2}`)
	f.remove(t, a)
	status, body = get("/notes/changes?since="+page.Next, "application/x-ndjson")
	lines := strings.Split(strings.TrimSpace(body), "\n")
	if status != http.StatusOK || len(lines) != 2 || !strings.Contains(lines[0], `"event":"remove"`) || !strings.HasPrefix(lines[1], `{"next":"`) {
		t.Fatalf("since=token: %d %s", status, body)
	}
	status, body = get("/notes/changes", "application/json")
	if status != http.StatusOK || !strings.HasPrefix(body, `{"changes":[],"next":"`) {
		t.Fatalf("no since: %d %s", status, body)
	}
}

// TestChangesTokens: a damaged token is 400, one made for another filter,
// scope or collection is 400, one older than the retention is 410.
func TestChangesTokens(t *testing.T) {
	f := newFeedFixture(t, mongohttp.ChangeFeed{Poll: 50 * time.Millisecond, Overlap: 500 * time.Millisecond, Retention: 1500 * time.Millisecond})
	other := newFeedFixture(t, feedSettings) // another database: another collection
	token := func(fx *feedFixture, target string) string {
		r := fx.send(t, http.MethodGet, target, "", "", "Accept", "application/json")
		var p struct{ Next string }
		if r.status != http.StatusOK || json.Unmarshal(r.body, &p) != nil {
			t.Fatalf("GET %s: %d %s", target, r.status, r.body)
		}
		return p.Next
	}
	tok := token(f, "/notes/changes?since=0&likes[gt]=1")
	gx := token(f, "/g/x/notes/changes?since=0")
	forged := []byte(tok)
	forged[len(forged)/2] ^= 1
	for _, c := range []struct {
		name, target string
		status       int
		code         string
	}{
		{"valid", "/notes/changes?likes[gt]=1&since=" + tok, 200, ""},
		{"forged", "/notes/changes?likes[gt]=1&since=" + string(forged), 400, "invalid_resume_token"},
		{"garbage", "/notes/changes?since=%00%ff", 400, "invalid_parameter"},
		{"other filter", "/notes/changes?likes[gt]=2&since=" + tok, 400, "invalid_resume_token"},
		{"no filter", "/notes/changes?since=" + tok, 400, "invalid_resume_token"},
		{"other scope", "/g/y/notes/changes?since=" + gx, 400, "invalid_resume_token"},
		{"scope to all", "/notes/changes?since=" + gx, 400, "invalid_resume_token"},
		{"sort", "/notes/changes?sort=likes", 400, "invalid_parameter"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := f.send(t, http.MethodGet, c.target, "", "", "Accept", "application/json")
			if r.status != c.status || (c.code != "" && jsonDoc(t, r)["code"] != c.code) {
				t.Fatalf("%d %s, want %d %s", r.status, r.body, c.status, c.code)
			}
		})
	}
	t.Run("other collection", func(t *testing.T) {
		r := other.send(t, http.MethodGet, "/notes/changes?likes[gt]=1&since="+tok, "", "", "Accept", "text/event-stream")
		if r.status != 400 || jsonDoc(t, r)["code"] != "invalid_resume_token" {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	t.Run("expired", func(t *testing.T) {
		// Waiting for the clock itself: the token must outlive the
		// retention, and nothing else says when it has.
		time.Sleep(1600 * time.Millisecond)
		r := f.send(t, http.MethodGet, "/notes/changes?likes[gt]=1&since="+tok, "", "", "Accept", "text/event-stream")
		if r.status != http.StatusGone || jsonDoc(t, r)["code"] != "resume_expired" ||
			r.header.Get("Content-Type") != "application/problem+json" {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
}

// TestChangesShutdown: a graceful shutdown ends the open streams at once.
func TestChangesShutdown(t *testing.T) {
	f := newFeedFixture(t, feedSettings)
	// openFeed returns once the headers came, which the feed sends after
	// it has counted the stream in and registered with the server.
	feeds := []*eventReader{openFeed(t, f.srv.URL+"/notes/changes"), openFeed(t, f.srv.URL+"/g/x/notes/changes?since=0")}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := f.srv.Config.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("shutdown took %s with open feeds", took)
	}
	for _, e := range feeds {
		select {
		case <-e.done:
		case <-time.After(2 * time.Second):
			t.Fatal("a stream is still open after the shutdown")
		}
	}
}

// TestChangesCutsSlowClient: a client that stops reading is cut after the
// write timeout, and the stream's goroutine ends.
func TestChangesCutsSlowClient(t *testing.T) {
	cfg := feedSettings
	cfg.WriteTimeout = 300 * time.Millisecond
	cfg.MaxQueue = 2
	f := newFeedFixture(t, cfg)
	conn, err := net.Dial("tcp", f.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /notes/changes HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
	// The headers come once the stream has subscribed to the changes; then
	// the client reads nothing more until the server has had to cut it.
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	in := bufio.NewReader(conn)
	resp, err := http.ReadResponse(in, nil)
	if err != nil {
		t.Fatal(err)
	}
	// 18 MB, more than the sockets' buffers hold, written as mongohttp's
	// writes do (with a version) but directly, which is quicker.
	big := strings.Repeat("x", 600<<10)
	const count = 30
	for i := range count {
		// One at a time: the version is made just before its write, as
		// mongohttp's writes do, and a write longer than the feed's overlap
		// could be missed.
		doc := bson.D{{Key: "title", Value: big}, {Key: "likes", Value: i}, {Key: "_etag", Value: bson.NewObjectID()}}
		if _, err := f.coll.InsertOne(context.Background(), doc); err != nil {
			t.Fatal(err)
		}
	}
	// A client that stalls: deliberate, not a wait for a condition. The
	// feed's writes block, and its write timeout passes.
	time.Sleep(2 * time.Second)
	// The client now reads: it must reach the end of the stream, which the
	// server ended, instead of waiting forever.
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("after %d bytes: %v (the server did not cut the stream)", n, err)
	}
	if n >= count*600<<10 {
		t.Fatalf("the client got %d bytes: every event, so it was not cut", n)
	}
}
