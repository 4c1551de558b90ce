package mongohttp

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

type findHandler[T any] struct {
	*handlerBase[T]
	lookahead int
	limit     *limiter
}

func (h *findHandler[T]) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !allowGetHead(w, r) {
		return
	}
	client := clientLimiter(h.coll.Database().Client())
	if err := admit(r.Context(), h.limit, client); err != nil {
		h.errorFunc(w, r, err)
		return
	}
	defer leave(h.limit, client)
	h.obs(r).admitted()
	if err := h.serve(w, r); err != nil {
		h.errorFunc(w, r, err)
	}
}

// serve answers one request. It returns an error only while nothing has been
// written; after the headers are out, a failure aborts the response (see
// abort) so the client sees a broken stream rather than a short, valid one.
func (h *findHandler[T]) serve(w http.ResponseWriter, r *http.Request) error {
	q, err := h.parser.Parse(r.URL.RawQuery)
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
	filter := and(base, q.Filter)
	ctx, cancel := context.WithTimeout(r.Context(), h.maxTime)
	defer cancel()

	var total int64 = -1
	if q.Count != CountNone {
		o.issue()
	}
	switch q.Count {
	case CountExact:
		if total, err = h.coll.CountDocuments(ctx, and(base, q.CountFilter), countComment(comment)...); err != nil {
			return err
		}
	case CountEstimated:
		if total, err = h.coll.EstimatedDocumentCount(ctx, estimatedComment(comment)...); err != nil {
			return err
		}
	}

	// The find is sent as a command so that the server gets the time limit
	// too (maxTimeMS, from ctx's deadline) and abandons the work when it
	// passes; the driver's Find leaves maxTimeMS out. One document more than
	// the page tells whether a next page exists. A first batch one larger
	// than that lets every server see the result is complete and close the
	// cursor, saving a killCursors round trip. Batches stay small so a large
	// page streams with bounded memory.
	batch := int32(min(q.Limit+2, 1000))
	cmd := make(bson.D, 0, 9)
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
	o.issue()
	var cur *mongo.Cursor
	err = retryRead(ctx, func() (err error) {
		cur, err = h.coll.Database().RunCommandCursor(ctx, cmd, h.runOpts)
		return err
	})
	if err != nil {
		return err
	}
	o.firstBatch()
	cur.SetBatchSize(batch) // for the getMores, which do not inherit it
	closed := false
	defer func() {
		if !closed {
			closeInBackground(r.Context(), cur)
		}
	}()

	// Look ahead: hold up to limit+1 raw documents (bounded by lookahead
	// bytes) so the Link header can be decided before the body starts.
	page := getPageBuffer()
	defer putPageBuffer(page)
	streaming := false
	for page.len() <= int(q.Limit) && cur.Next(ctx) {
		page.add(cur.Current)
		if page.size() > h.lookahead && page.len() <= int(q.Limit) {
			streaming = true
			break
		}
	}
	if err := cur.Err(); err != nil {
		return err
	}
	if !streaming {
		// The page is in hand: release the server cursor now rather than
		// after the body is written.
		closed = true
		closeInBackground(r.Context(), cur)
	}

	hdr := w.Header()
	ndjson := acceptsNDJSON(r)
	if ndjson {
		hdr.Set("Content-Type", NDJSON)
	} else {
		hdr.Set("Content-Type", "application/json")
	}
	hdr.Add("Vary", "Accept")
	hdr.Set("X-Content-Type-Options", "nosniff")
	if total >= 0 {
		hdr.Set("X-Total-Count", strconv.FormatInt(total, 10))
	}
	n := page.len()
	if !streaming && n > int(q.Limit) {
		n = int(q.Limit)
		// A page whose last sort key cannot make a token (an array value,
		// a key too long) is still served, without a next link.
		if token, err := h.parser.NextToken(q, page.doc(n-1)); err == nil {
			hdr.Set("Link", "<"+nextURL(r, token)+`>; rel="next"`)
		} else {
			h.logger.LogAttrs(r.Context(), slog.LevelWarn, "mongohttp: no next link for this page",
				slog.String("path", r.URL.Path), slog.Any("error", err))
		}
	}
	o.answering(hdr, false)
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return nil
	}

	var dw *DocumentWriter
	if ndjson {
		dw = h.enc.NewNDJSONWriter(w)
	} else {
		dw = h.enc.NewArrayWriter(w)
	}
	var v T
	write := func(raw bson.Raw) error {
		doc, err := h.document(r, raw, &v)
		if err != nil {
			return err
		}
		return dw.WriteDocument(doc)
	}
	// The first document is encoded before the status is sent, so that a
	// document that cannot be encoded still gets a proper error answer.
	for i := range n {
		if err := write(page.doc(i)); err != nil {
			if i == 0 {
				// Nothing has reached w yet (the writer buffers), so the
				// client still gets a problem answer. The writer is dropped,
				// not closed, since Close would write the brackets.
				hdr.Del("Link")
				return err
			}
			h.abort(r, err)
		}
	}
	if streaming {
		for dw.Count() < int(q.Limit) && cur.Next(ctx) {
			if err := write(cur.Current); err != nil {
				h.abort(r, err)
			}
		}
		if err := cur.Err(); err != nil {
			h.abort(r, err)
		}
	}
	if err := dw.Close(); err != nil {
		h.abort(r, err)
	}
	o.wrote(dw.Count())
	return nil
}

// pageBuffer holds the raw documents of a page back to back, so the look
// ahead costs one growing slice rather than one allocation per document.
type pageBuffer struct {
	buf  []byte
	offs []int
}

func (p *pageBuffer) add(doc []byte) {
	p.offs = append(p.offs, len(p.buf))
	p.buf = append(p.buf, doc...)
}

func (p *pageBuffer) len() int  { return len(p.offs) }
func (p *pageBuffer) size() int { return len(p.buf) }

func (p *pageBuffer) doc(i int) bson.Raw {
	end := len(p.buf)
	if i+1 < len(p.offs) {
		end = p.offs[i+1]
	}
	return p.buf[p.offs[i]:end]
}

var pagePool = sync.Pool{New: func() any { return new(pageBuffer) }}

func getPageBuffer() *pageBuffer { return pagePool.Get().(*pageBuffer) }

// putPageBuffer recycles p unless a large page made it big, so one export
// does not pin megabytes in the pool.
func putPageBuffer(p *pageBuffer) {
	if cap(p.buf) > 4*DefaultLookahead {
		return
	}
	p.buf, p.offs = p.buf[:0], p.offs[:0]
	pagePool.Put(p)
}

// acceptsNDJSON reports whether the client asked for NDJSON.
func acceptsNDJSON(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		for part := range strings.SplitSeq(v, ",") {
			mt, _, _ := strings.Cut(part, ";")
			if strings.EqualFold(strings.TrimSpace(mt), NDJSON) {
				return true
			}
		}
	}
	return false
}

// nextURL is the request's own path and query with after set to token and
// skip dropped. It is a relative reference (RFC 8288 allows one), built
// from the path the client sent, so it stays right behind StripPrefix and
// proxies that rewrite Host.
func nextURL(r *http.Request, token string) string {
	path := r.URL.EscapedPath()
	if r.RequestURI != "" {
		if u, err := url.ParseRequestURI(r.RequestURI); err == nil {
			path = u.EscapedPath()
		}
	}
	var b strings.Builder
	b.WriteString(path)
	b.WriteByte('?')
	for part := range strings.SplitSeq(r.URL.RawQuery, "&") {
		key, _, _ := strings.Cut(part, "=")
		if k, err := url.QueryUnescape(key); err == nil {
			key = k // %61fter is after too
		}
		if part == "" || key == "after" || key == "skip" {
			continue
		}
		b.WriteString(part)
		b.WriteByte('&')
	}
	b.WriteString("after=")
	b.WriteString(token)
	return b.String()
}
