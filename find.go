package mongohttp

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/mongohttp/mongohttp/bsonjson"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

type findHandler[T any] struct {
	*handlerBase[T]
	lookahead int
	limit     *limiter
}

func (h *findHandler[T]) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setRequestID(w, r)
	if !allowGetHead(w, r) {
		return
	}
	h.admitted(w, r, h.limit, h)
}

// serve answers one request. It returns an error only while nothing has been
// written; after the headers are out, a failure aborts the response (see
// abort) so the client sees a broken stream rather than a short, valid one.
func (h *findHandler[T]) serve(w http.ResponseWriter, r *http.Request) error {
	q, err := h.parser.parse(r.URL.RawQuery)
	if err != nil {
		return err
	}
	o := h.obs(r) // nil unless observed
	o.parsed(q, nil)
	comment := h.commentFor(r)
	base, err := h.base(r)
	if err != nil {
		return err
	}
	if err := h.parser.bind(q, base); err != nil {
		return err
	}
	if q.Count, err = h.parser.countMode(q.Count, len(base) > 0); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.maxTime)
	defer cancel()
	if q.Count != CountNone {
		o.issue()
	}
	total, err := h.count(ctx, q, base, comment)
	if err != nil {
		return err
	}
	if q.ref != nil {
		if err := h.resolveRef(ctx, q, base); err != nil {
			return err
		}
	}
	page := getPageBuffer()
	defer putPageBuffer(page)
	o.issue()
	more, err := h.readPage(ctx, r, q, and(base, q.Filter), page, comment)
	if err != nil {
		return err
	}
	n := page.len()
	link := ""
	if more {
		var token string
		if n, token, err = h.next(r, q, page, n-1); err != nil {
			return err
		}
		link = "<" + nextURL(r, q, token) + `>; rel="next"`
	}
	// The related documents of the page, one query per relation (see
	// embed.go). Pages end at the look-ahead, so this reads a bounded set.
	embeds, err := h.embedPage(ctx, r, q.Embed, page, n)
	if err != nil {
		return err
	}

	hdr := w.Header()
	ndjson := setListHeaders(hdr, r)
	if total >= 0 {
		hdr.Set("X-Total-Count", strconv.FormatInt(total, 10))
	}
	if link != "" {
		hdr.Set("Link", link)
	}
	o.answering(hdr, false)
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return nil
	}
	return h.write(w, r, page, n, embeds, ndjson)
}

// count answers ?count=; -1 when none was asked for.
func (h *findHandler[T]) count(ctx context.Context, q *Query, base bson.D, comment any) (int64, error) {
	switch q.Count {
	case CountExact:
		return h.coll.CountDocuments(ctx, and(base, q.CountFilter), countComment(comment)...)
	case CountEstimated:
		return h.coll.EstimatedDocumentCount(ctx, estimatedComment(comment)...)
	}
	return -1, nil
}

// readPage reads q's page into page: up to q.Limit documents, fewer when
// they pass the look-ahead, plus one more when there is one, which tells
// that a next page exists (it reports whether one does). Every page is
// held whole before its answer starts, so that its Link header can always
// be decided; the look-ahead bounds what that holds. The server cursor is
// released before it returns.
func (h *findHandler[T]) readPage(ctx context.Context, r *http.Request, q *Query, filter bson.D, page *pageBuffer, comment any) (bool, error) {
	// The find is sent as a command so that the server gets the time limit
	// too (maxTimeMS, from ctx's deadline) and abandons the work when it
	// passes; the driver's Find leaves maxTimeMS out. One document more than
	// the page tells whether a next page exists. A first batch one larger
	// than that lets every server see the result is complete and close the
	// cursor, saving a killCursors round trip.
	batch := int32(min(q.Limit+2, 1000))
	cmd := make(bson.D, 0, 10)
	cmd = append(cmd, bson.E{Key: "find", Value: h.coll.Name()}, bson.E{Key: "filter", Value: filter})
	if len(q.Sort) > 0 {
		cmd = append(cmd, bson.E{Key: "sort", Value: q.Sort})
	}
	if len(q.Projection) > 0 {
		cmd = append(cmd, bson.E{Key: "projection", Value: q.Projection})
	}
	if q.Skip > 0 {
		cmd = append(cmd, bson.E{Key: "skip", Value: q.Skip})
	}
	cmd = append(cmd, bson.E{Key: "limit", Value: q.Limit + 1}, bson.E{Key: "batchSize", Value: batch})
	if h.readConcern != nil {
		cmd = append(cmd, bson.E{Key: "readConcern", Value: bson.D{{Key: "level", Value: h.readConcern.Level}}})
	}
	cmd = withComment(cmd, comment)
	var cur *mongo.Cursor
	err := retryRead(ctx, func() (err error) {
		cur, err = h.coll.Database().RunCommandCursor(ctx, cmd, h.runOpts)
		return err
	})
	if err != nil {
		return false, err
	}
	h.obs(r).firstBatch()
	defer closeInBackground(r.Context(), cur)
	cur.SetBatchSize(batch) // for the getMores, which do not inherit it
	for cur.Next(ctx) {
		page.add(cur.Current)
		// A document that takes the page past the look-ahead is held
		// only to prove that more follow; the first one is always served.
		if page.len() > int(q.Limit) || (page.size() > h.lookahead && page.len() > 1) {
			return true, nil
		}
	}
	return false, cur.Err()
}

// next chooses how the first n documents of page continue: it returns how
// many of them to serve and the after token of the page after those. The
// last document served must anchor a keyset token; when the last ones
// cannot (see nextToken), the page ends at the last one that can, so that
// the next page starts with them. When none can, the token continues by
// position. Either way no document is left out or served twice.
func (h *findHandler[T]) next(r *http.Request, q *Query, page *pageBuffer, n int) (int, string, error) {
	digest, err := filterDigest(q)
	if err != nil {
		return 0, "", err
	}
	var firstErr error
	for i := n; i > 0; i-- {
		token, err := h.parser.keysetToken(q, digest, page.doc(i-1))
		if err != nil {
			// Sort values too long for a token: one that names the
			// document.
			if ref, rerr := h.parser.refToken(q, digest, page.docs[max(0, i-maxRefs):i]); rerr == nil {
				token, err = ref, nil
			}
		}
		if err == nil {
			if i < n {
				h.logger.LogAttrs(r.Context(), slog.LevelDebug, "mongohttp: page shortened to end at a document that can anchor the next one",
					slog.String("path", r.URL.Path), slog.Int("served", i), slog.Int("read", n), slog.Any("reason", firstErr))
			}
			return i, token, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	token, err := h.parser.offsetToken(q, digest, n)
	if err != nil {
		return 0, "", ErrInternal.Detailf("the next page cannot be addressed: the sort values of this page's documents cannot make an after token").withCause(err)
	}
	h.logger.LogAttrs(r.Context(), slog.LevelWarn, "mongohttp: no document of the page can anchor the next one; continuing by position",
		slog.String("path", r.URL.Path), slog.Int("served", n), slog.Any("reason", firstErr))
	return n, token, nil
}

// write writes the first n documents of page as the body.
func (h *findHandler[T]) write(w http.ResponseWriter, r *http.Request, page *pageBuffer, n int, embeds *embedding, ndjson bool) error {
	var dw *bsonjson.DocumentWriter
	if ndjson {
		dw = h.enc.NewNDJSONWriter(w)
	} else {
		dw = h.enc.NewArrayWriter(w)
	}
	var v T
	for i := range n {
		doc, err := h.document(r, page.doc(i), &v)
		if err == nil && embeds != nil {
			doc = embeds.apply(doc, page.doc(i))
		}
		if err == nil {
			err = dw.WriteDocument(doc)
		}
		if err != nil {
			if i == 0 {
				// Nothing has reached w yet (the writer buffers, and the
				// first document is encoded before the status is sent), so
				// the client still gets a problem answer. The writer is
				// dropped, not closed, since Close would write the brackets.
				w.Header().Del("Link")
				return err
			}
			h.abort(r, err)
		}
	}
	if err := dw.Close(); err != nil {
		h.abort(r, err)
	}
	h.obs(r).wrote(n)
	return nil
}

// pageBuffer holds the raw documents of a page in chunks, so that the look
// ahead costs a few allocations rather than one per document, and holds
// little more than the page (a growing slice would hold up to twice as
// much, and copy it).
type pageBuffer struct {
	chunks [][]byte // those of earlier pages are reused
	used   int      // chunks holding documents of this page
	docs   []bson.Raw
	bytes  int
}

const pageChunk = 64 << 10

func (p *pageBuffer) add(doc []byte) {
	if p.used == 0 || cap(p.chunks[p.used-1])-len(p.chunks[p.used-1]) < len(doc) {
		p.nextChunk(len(doc))
	}
	c := p.chunks[p.used-1]
	start := len(c)
	c = append(c, doc...)
	p.chunks[p.used-1] = c
	p.docs = append(p.docs, c[start:len(c):len(c)])
	p.bytes += len(doc)
}

func (p *pageBuffer) nextChunk(need int) {
	switch {
	case p.used < len(p.chunks) && cap(p.chunks[p.used]) >= need:
		p.chunks[p.used] = p.chunks[p.used][:0]
	case p.used < len(p.chunks):
		p.chunks[p.used] = make([]byte, 0, max(pageChunk, need))
	default:
		p.chunks = append(p.chunks, make([]byte, 0, max(pageChunk, need)))
	}
	p.used++
}

func (p *pageBuffer) len() int           { return len(p.docs) }
func (p *pageBuffer) size() int          { return p.bytes }
func (p *pageBuffer) doc(i int) bson.Raw { return p.docs[i] }

var pagePool = sync.Pool{New: func() any { return new(pageBuffer) }}

func getPageBuffer() *pageBuffer { return pagePool.Get().(*pageBuffer) }

// putPageBuffer recycles p, keeping at most a default look-ahead's worth
// of standard chunks, so one large page does not pin megabytes in the pool.
func putPageBuffer(p *pageBuffer) {
	keep := p.chunks[:0]
	for _, c := range p.chunks {
		if cap(c) == pageChunk && len(keep) < DefaultLookahead/pageChunk {
			keep = append(keep, c[:0])
		}
	}
	clear(p.chunks[len(keep):])
	p.chunks = keep
	if cap(p.docs) > 4096 {
		p.docs = nil
	}
	clear(p.docs)
	p.docs, p.used, p.bytes = p.docs[:0], 0, 0
	pagePool.Put(p)
}

// setListHeaders sets the headers every list answer has, in the media
// type the client prefers, and reports whether that is NDJSON.
func setListHeaders(hdr http.Header, r *http.Request) (ndjson bool) {
	ndjson = prefersNDJSON(r.Header)
	if ndjson {
		hdr.Set("Content-Type", NDJSON)
	} else {
		hdr.Set("Content-Type", "application/json")
	}
	hdr.Add("Vary", "Accept")
	hdr.Set("X-Content-Type-Options", "nosniff")
	return ndjson
}

// prefersNDJSON reports whether the Accept header prefers NDJSON to JSON,
// with RFC 9110's rules: each type takes the quality of the most specific
// range that matches it (application/x-ndjson, then application/*, then
// */*; none is q=0). NDJSON is chosen when its quality is above zero and
// above JSON's, or equal to it and named while JSON is not. Everything
// else, an Accept header that allows neither type included, gets JSON,
// which RFC 9110 permits instead of a 406.
func prefersNDJSON(h http.Header) bool {
	var js, nd acceptMatch
	for _, v := range h.Values("Accept") {
		for part := range strings.SplitSeq(v, ",") {
			mediaRange, params, _ := strings.Cut(part, ";")
			typ, sub, ok := strings.Cut(strings.ToLower(strings.TrimSpace(mediaRange)), "/")
			if !ok || typ == "" || sub == "" || (typ == "*" && sub != "*") {
				continue
			}
			q, ok := acceptQuality(params)
			if !ok {
				continue
			}
			js.consider(typ, sub, "json", q)
			nd.consider(typ, sub, "x-ndjson", q)
		}
	}
	return nd.q > 0 && (nd.q > js.q || (nd.q == js.q && nd.specificity == 3 && js.specificity < 3))
}

// acceptMatch is the most specific Accept range that matched a type.
type acceptMatch struct {
	specificity int // 0 none, 1 */*, 2 application/*, 3 the type itself
	q           int // thousandths
}

func (m *acceptMatch) consider(typ, sub, want string, q int) {
	s := 0
	switch {
	case typ == "application" && sub == want:
		s = 3
	case typ == "application" && sub == "*":
		s = 2
	case typ == "*":
		s = 1
	}
	// The most specific range decides; among equally specific ones, the
	// highest quality.
	if s > m.specificity || (s == m.specificity && s > 0 && q > m.q) {
		m.specificity, m.q = s, q
	}
}

// acceptQuality reads the q parameter of an Accept element, in
// thousandths (1000 when absent). ok is false for a malformed one, and
// the element is then ignored.
func acceptQuality(params string) (q int, ok bool) {
	for p := range strings.SplitSeq(params, ";") {
		name, val, _ := strings.Cut(strings.TrimSpace(p), "=")
		if !strings.EqualFold(strings.TrimSpace(name), "q") {
			continue
		}
		// qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
		val = strings.TrimSpace(val)
		whole, frac, _ := strings.Cut(val, ".")
		if (whole != "0" && whole != "1") || len(frac) > 3 {
			return 0, false
		}
		n := 0
		for i := range 3 {
			d := 0
			if i < len(frac) {
				if frac[i] < '0' || frac[i] > '9' {
					return 0, false
				}
				d = int(frac[i] - '0')
			}
			n = n*10 + d
		}
		if whole == "1" {
			if n != 0 {
				return 0, false
			}
			return 1000, true
		}
		return n, true // the first q parameter ends the media range's parameters
	}
	return 1000, true
}

// nextURL is the link to the page after token: the request's own path and
// the parameters q was parsed from, but skip and after, each re-encoded,
// with after set to token. It is a relative reference (RFC 8288 allows
// one) built from the path the client sent, so it stays right behind
// StripPrefix and proxies that rewrite Host; and since nothing of the raw
// query is copied, no input can end the URI, add a link or a parameter to
// the header, or point it at another host.
func nextURL(r *http.Request, q *Query, token string) string {
	var b strings.Builder
	b.WriteString(linkPath(r))
	b.WriteByte('?')
	for _, p := range q.params {
		appendLinkEscaped(&b, p.key)
		b.WriteByte('=')
		appendLinkEscaped(&b, p.value)
		b.WriteByte('&')
	}
	b.WriteString("after=")
	b.WriteString(token)
	return b.String()
}

// linkPath is the request's path, in canonical form (see canonicalPath), as
// an absolute-path reference: one that
// starts with "//" would name another host, so "/." is put before it (the
// same path once dot segments are removed); ";" and "," are escaped
// because simple Link header parsers split on them.
func linkPath(r *http.Request) string {
	path := r.URL.EscapedPath()
	if r.RequestURI != "" {
		if u, err := url.ParseRequestURI(r.RequestURI); err == nil {
			path = u.EscapedPath()
		}
	}
	path = strings.NewReplacer(";", "%3B", ",", "%2C").Replace(canonicalPath(path))
	switch {
	case !strings.HasPrefix(path, "/"):
		path = "/" + path
	case strings.HasPrefix(path, "//"):
		path = "/." + path
	}
	return path
}

// linkSafe reports whether a byte stays as it is in a next link's
// parameters: the unreserved characters of RFC 3986, and ":[]", which keep
// links readable (age[gte]=30, dates) and mean nothing to the query grammar
// or to Link header parsers. Commas are escaped like semicolons, because
// simple parsers split the header on both.
func linkSafe(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~' || c == ':' || c == '[' || c == ']'
}

func appendLinkEscaped(b *strings.Builder, s string) {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		if c := s[i]; linkSafe(c) {
			b.WriteByte(c)
		} else {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
}

// linkEscapedLen is the length of s as appendLinkEscaped writes it.
func linkEscapedLen(s string) int {
	n := len(s)
	for i := 0; i < len(s); i++ {
		if !linkSafe(s[i]) {
			n += 2
		}
	}
	return n
}
