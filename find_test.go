package mongohttp

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestPrefersNDJSON(t *testing.T) {
	tests := []struct {
		accept []string
		ndjson bool
	}{
		{nil, false},
		{[]string{""}, false},
		{[]string{"application/json"}, false},
		{[]string{"application/x-ndjson"}, true},
		{[]string{"Application/X-NDJSON"}, true},
		{[]string{"application/x-ndjson; charset=utf-8"}, true},
		{[]string{"application/x-ndjson;q=0"}, false},
		{[]string{"application/x-ndjson; q=0.000"}, false},
		{[]string{"application/x-ndjson;q=0, */*"}, false},
		{[]string{"*/*"}, false},
		{[]string{"application/*"}, false},
		{[]string{"text/html"}, false},
		{[]string{"application/x-ndjson, application/json"}, false},
		{[]string{"application/json, application/x-ndjson"}, false},
		{[]string{"application/x-ndjson, application/json;q=0.9"}, true},
		{[]string{"application/json;q=0.5, application/x-ndjson;q=0.6"}, true},
		{[]string{"application/x-ndjson;q=0.5, */*"}, false},
		{[]string{"application/x-ndjson;q=0.5, */*;q=0.1"}, true},
		{[]string{"application/x-ndjson, */*"}, true},
		{[]string{"application/x-ndjson, application/*;q=1"}, true},
		{[]string{"application/json;q=0", "application/x-ndjson;q=0.1"}, true},
		{[]string{"application/json;q=0, application/x-ndjson;q=0"}, false},
		{[]string{"*/*;q=0, application/x-ndjson"}, true},
		// Malformed qualities void their element.
		{[]string{"application/x-ndjson;q=2"}, false},
		{[]string{"application/x-ndjson;q=1.5"}, false},
		{[]string{"application/x-ndjson;q=0.1234"}, false},
		{[]string{"application/x-ndjson;q=abc"}, false},
		{[]string{"application/x-ndjson;q="}, false},
		{[]string{"application/x-ndjson;q=1.000"}, true},
		{[]string{"application/x-ndjson;q=0."}, false},
		{[]string{"application/x-ndjson;q=0.5;q=0"}, true},
		// Nonsense ranges are skipped.
		{[]string{"*/x-ndjson"}, false},
		{[]string{"x-ndjson"}, false},
		{[]string{"/", ",,,;;;"}, false},
	}
	for _, tt := range tests {
		h := http.Header{}
		for _, v := range tt.accept {
			h.Add("Accept", v)
		}
		if got := prefersNDJSON(h); got != tt.ndjson {
			t.Errorf("Accept %q: NDJSON %v, want %v", tt.accept, got, tt.ndjson)
		}
	}
}

// linkTarget is the URI inside a Link header built for a request.
func linkTarget(t *testing.T, qp *QueryParser, target string) (string, *Query) {
	t.Helper()
	r := httptest.NewRequest("GET", target, nil)
	q, err := qp.Parse(r.URL.RawQuery)
	if err != nil {
		t.Fatalf("Parse(%q): %v", r.URL.RawQuery, err)
	}
	return nextURL(r, q, "TOKEN"), q
}

func TestNextURLIsBuiltFromTheParsedQuery(t *testing.T) {
	p := queryTestPolicy()
	p.ExtraParameters = []string{"pretty"}
	qp := mustQueryParser(t, p)
	tests := []struct{ target, want string }{
		{"/people?sort=-age,name&age[gte]=30", "/people?sort=-age%2Cname&age[gte]=30&after=TOKEN"},
		{"/people?skip=40&limit=5&count=exact", "/people?limit=5&count=exact&after=TOKEN"},
		{"/people?created[lt]=2024-05-01T12:00:00Z&pretty", "/people?created[lt]=2024-05-01T12:00:00Z&pretty=&after=TOKEN"},
		{"/people?%61ge=3&name=a+b", "/people?age=3&name=a%20b&after=TOKEN"},
		{"/people?name=%C3%A9%26x%3Dy", "/people?name=%C3%A9%26x%3Dy&after=TOKEN"},
		{`/people?filter={"name":"x"}`, "/people?filter=%7B%22name%22:%22x%22%7D&after=TOKEN"},
		{"/a/b%2Fc/people;v=1,2?age=1", "/a/b%2Fc/people%3Bv=1%2C2?age=1&after=TOKEN"},
	}
	for _, tt := range tests {
		if got, _ := linkTarget(t, qp, tt.target); got != tt.want {
			t.Errorf("%s: link\n %s, want\n %s", tt.target, got, tt.want)
		}
	}
}

// TestNextURLCannotBeForged sends queries and paths meant to close the
// link, add a relation, or point it at another host. The link must be one
// relative reference to the request's own path, and parse back to the
// same query.
func TestNextURLCannotBeForged(t *testing.T) {
	qp := mustQueryParser(t, queryTestPolicy())
	hostile := []string{
		`/people?name[ne]=a>;rel="prev",<//evil.example/p?`,
		`/people?name=` + url.QueryEscape(`a>; rel="next", <https://evil.example/`),
		`/people?name=%3E%3B%20rel%3D%22next%22%2C%20%3C%2F%2Fevil.example%2F`,
		`/people?name=x%0D%0ALink:%20<//evil.example>`,
		`/people?name=x%0AX-Injected:%201`,
		`/people?email=a\"b`,
		`/people?name=%E2%80%AEevil`,
		`//evil.example/p?name=x`,
		`///evil.example/p?name=x`,
		`/\evil.example?name=x`,
		`http://evil.example/people?name=x`,
		`/people?filter=` + url.QueryEscape(`{"$or":[{"name":">;rel=\"prev\""},{"name":"<//x>"}]}`),
	}
	for _, target := range hostile {
		t.Run(target, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RequestURI = target
			u, err := url.ParseRequestURI(target)
			if err != nil {
				t.Fatal(err)
			}
			r.URL = u
			q, err := qp.Parse(u.RawQuery)
			if err != nil {
				// Refusing is fine too, as a client error.
				if AsError(err).Status != 400 {
					t.Fatalf("refused with %v", err)
				}
				return
			}
			tok, err := qp.nextToken(q, marshalRaw(t, qD{{Key: "_id", Value: queryOID}}))
			if err != nil {
				t.Fatal(err)
			}
			link := nextURL(r, q, tok)
			if strings.HasPrefix(link, "//") || !strings.HasPrefix(link, "/") {
				t.Fatalf("link %q is not an absolute-path reference", link)
			}
			if i := strings.IndexFunc(link, func(c rune) bool {
				return c <= ' ' || c >= 0x7f || strings.ContainsRune(`<>";,\`+"`{}|^", c)
			}); i >= 0 {
				t.Fatalf("link %q holds %q", link, link[i])
			}
			lu, err := url.Parse(link)
			if err != nil || lu.Host != "" || lu.Scheme != "" {
				t.Fatalf("link %q parses to %+v (%v)", link, lu, err)
			}
			base, _ := url.Parse("https://api.example/svc/people")
			if got := base.ResolveReference(lu); got.Host != "api.example" || got.Path != pathOf(u) {
				t.Fatalf("link %q resolves to %s, want host api.example and path %q", link, got, pathOf(u))
			}
			back, err := qp.Parse(lu.RawQuery)
			if err != nil {
				t.Fatalf("the link's query is refused: %v", err)
			}
			sameQueryDoc(t, "CountFilter", back.CountFilter, q.CountFilter)
		})
	}
}

func pathOf(u *url.URL) string {
	if u.Path == "" {
		return "/"
	}
	return u.Path
}

// TestMaxQueryBytesLeavesRoomForLinks: the cap counts the query as links
// write it, without after, so every link of an accepted query is accepted
// however small the cap and however the client escaped its query.
func TestMaxQueryBytesLeavesRoomForLinks(t *testing.T) {
	p := queryTestPolicy()
	p.MaxQueryBytes = 40
	qp := mustQueryParser(t, p)
	for _, raw := range []string{
		"sort=name&name=abcdefghij&age[gte]=30", // 38 bytes
		`sort=name&filter={"age":3}`,            // raw quotes and braces: longer once escaped
		"sort=name&name=%61%62%63%64%65%66%67%68%69%6a%6b%6c%6d%6e%6f&age=4",
		"sort=name&name=" + strings.Repeat("n", 25),
	} {
		q, err := qp.Parse(raw)
		if err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		tok, err := qp.nextToken(q, marshalRaw(t, qD{{Key: "_id", Value: queryOID}, {Key: "name", Value: strings.Repeat("n", 500)}, {Key: "age", Value: 3}}))
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest("GET", "/people?"+raw, nil)
		link, _ := url.Parse(nextURL(r, q, tok))
		if len(link.RawQuery) < 500 {
			t.Fatalf("the link's query is %d bytes; the test needs a long token", len(link.RawQuery))
		}
		if _, err := qp.Parse(link.RawQuery); err != nil {
			t.Errorf("%s: the link %s is refused: %v", raw, link, err)
		}
	}
	tests := []struct {
		query string
		ok    bool
	}{
		{"name=" + strings.Repeat("n", 35), true},
		{"name=" + strings.Repeat("n", 36), false},
		{"name=" + strings.Repeat("%6E", 35), true}, // over-escaped: measured as written in links
		{"name=" + strings.Repeat("%22", 11), true}, // 5 + 33
		{"name=" + strings.Repeat("%22", 12), false},
		{`name="""""""""""`, true}, // raw quotes count as escaped
		{`name=""""""""""""`, false},
		{"&&name=" + strings.Repeat("n", 35) + "&&", true},
		{"after=" + strings.Repeat("A", 1000), true}, // not limit_exceeded: invalid_cursor
		{"name=" + strings.Repeat("%ZZ", 100), false},
		{strings.Repeat("x", 3*(40+MaxCursorLength+7)+1), false},
	}
	for _, tt := range tests {
		_, err := qp.Parse(tt.query)
		if tt.ok != !errors.Is(err, ErrLimitExceeded) {
			t.Errorf("%.60s (%d bytes): %v", tt.query, len(tt.query), err)
		}
	}
	if _, err := qp.Parse("after=" + strings.Repeat("A", 1000)); !errors.Is(err, ErrInvalidCursor) {
		t.Errorf("a long bad token: %v, want invalid_cursor", err)
	}
}

func TestCountModes(t *testing.T) {
	for _, bad := range [][]CountMode{{"approximate"}, {CountNone}, {CountExact, "EXACT"}} {
		if _, err := NewQueryParser(Policy{Count: bad}); err == nil {
			t.Errorf("Policy.Count %q accepted", bad)
		}
	}
	tests := []struct {
		modes        []CountMode
		query        string
		filtered     bool // by a base filter
		want         CountMode
		refused, bad bool
	}{
		{nil, "count=exact", false, CountExact, false, false},
		{nil, "count=estimated", false, CountEstimated, false, false},
		{nil, "count=estimated&name=x", false, CountExact, false, false},
		{nil, "count=estimated", true, CountExact, false, false},
		{nil, "count=Exact", false, "", false, true},
		{nil, "count=", false, "", false, true},
		{nil, "", true, CountNone, false, false},
		{[]CountMode{CountExact}, "count=estimated", false, "", true, false},
		{[]CountMode{CountExact}, "count=exact", true, CountExact, false, false},
		{[]CountMode{CountEstimated}, "count=exact", false, "", true, false},
		{[]CountMode{CountEstimated}, "count=estimated", false, CountEstimated, false, false},
		{[]CountMode{CountEstimated}, "count=estimated&name=x", false, "", true, false},
		{[]CountMode{CountEstimated}, "count=estimated", true, "", true, false},
		{[]CountMode{}, "count=exact", false, "", true, false},
		{[]CountMode{}, "count=estimated", false, "", true, false},
		{[]CountMode{}, "count=nonsense", false, "", false, true},
		{[]CountMode{}, "", false, CountNone, false, false},
	}
	for _, tt := range tests {
		name := fmt.Sprintf("%v %s base %v", tt.modes, tt.query, tt.filtered)
		qp := mustQueryParser(t, Policy{Count: tt.modes, Filter: map[string]Type{"name": String}})
		q, err := qp.Parse(tt.query)
		if err == nil {
			q.Count, err = qp.countMode(q.Count, tt.filtered)
		}
		switch {
		case tt.refused:
			if !errors.Is(err, ErrCountNotAllowed) || AsError(err).Status != 400 {
				t.Errorf("%s: %v, want count_not_allowed", name, err)
			}
		case tt.bad:
			if !errors.Is(err, ErrInvalidParameter) {
				t.Errorf("%s: %v, want invalid_parameter", name, err)
			}
		case err != nil:
			t.Errorf("%s: %v", name, err)
		case q.Count != tt.want:
			t.Errorf("%s: count %q, want %q", name, q.Count, tt.want)
		}
	}
}

func TestPageBuffer(t *testing.T) {
	p := getPageBuffer()
	var want [][]byte
	for i := range 300 {
		size := 5 + (i*7919)%3000
		if i == 150 {
			size = 3 * pageChunk // larger than a chunk
		}
		doc := bytes.Repeat([]byte{byte(i)}, size)
		want = append(want, doc)
		p.add(doc)
	}
	check := func() {
		t.Helper()
		if p.len() != len(want) {
			t.Fatalf("%d documents, want %d", p.len(), len(want))
		}
		total := 0
		for i, w := range want {
			if !bytes.Equal(p.doc(i), w) {
				t.Fatalf("document %d changed", i)
			}
			total += len(w)
		}
		if p.size() != total {
			t.Fatalf("size %d, want %d", p.size(), total)
		}
	}
	check()
	putPageBuffer(p)
	if p.len() != 0 || p.size() != 0 || len(p.chunks) > DefaultLookahead/pageChunk {
		t.Fatalf("recycled buffer holds %d documents, %d bytes, %d chunks", p.len(), p.size(), len(p.chunks))
	}
	for _, c := range p.chunks {
		if cap(c) != pageChunk {
			t.Fatalf("a recycled chunk of %d bytes", cap(c))
		}
	}
	// A reused buffer gives the same documents back.
	want = want[:0]
	for i := range 50 {
		doc := bytes.Repeat([]byte{byte(i + 1)}, 20000)
		want = append(want, doc)
		p.add(doc)
	}
	check()
	putPageBuffer(p)
}

func TestLinkEscapedLenMatchesTheLink(t *testing.T) {
	for _, s := range []string{"", "abc", "a b", `{"x":[1,2]}`, "é", "\x00\xff", "-._~:[]", ",%&=+#?/;<>"} {
		var b strings.Builder
		appendLinkEscaped(&b, s)
		if linkEscapedLen(s) != b.Len() {
			t.Errorf("%q: length %d, written %d (%s)", s, linkEscapedLen(s), b.Len(), b.String())
		}
		if back, err := url.QueryUnescape(b.String()); err != nil || back != s {
			t.Errorf("%q escapes to %q, which reads back as %q (%v)", s, b.String(), back, err)
		}
	}
}
