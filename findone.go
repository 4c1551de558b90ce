package mongohttp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"go.mongodb.org/mongo-driver/v2/bson"
)

type findOneHandler[T any] struct {
	*handlerBase[T]
	id    func(r *http.Request) string
	limit *limiter
}

func (h *findOneHandler[T]) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setRequestID(w, r)
	if !allowGetHead(w, r) {
		return
	}
	h.admitted(w, r, h.limit, h)
}

func (h *findOneHandler[T]) serve(w http.ResponseWriter, r *http.Request) error {
	projection, embed, err := h.parser.parseOne(r.URL.RawQuery)
	if err != nil {
		return err
	}
	projection = h.withVersion(projection)
	o := h.obs(r) // nil unless observed
	o.parsed(nil, projection)
	id, err := h.parser.ParseID(h.id(r))
	if err != nil {
		return err
	}
	base, err := h.base(r)
	if err != nil {
		return err
	}
	filter := and(base, bson.D{{Key: "_id", Value: id}})
	ctx, cancel := context.WithTimeout(r.Context(), h.maxTime)
	defer cancel()
	o.issue()
	raw, err := h.findOne(ctx, filter, projection, h.commentFor(r))
	if err != nil {
		return err
	}
	o.firstBatch()
	// Also for HEAD: the ETag covers the related documents.
	embeds, err := h.embedDocs(ctx, r, embed, []bson.Raw{raw})
	if err != nil {
		return err
	}
	o.documentsInHand()
	body, etag, err := h.renderEmbedded(r, raw, embeds)
	if err != nil {
		return err
	}
	hdr := w.Header()
	hdr.Set("ETag", etag)
	hdr.Set("X-Content-Type-Options", "nosniff")
	if etagMatches(r.Header.Values("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	hdr.Set("Content-Type", "application/json")
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	o.answering(hdr, true)
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
	return nil
}

// withVersion keeps the version field in an exclusion projection: the
// ETag carries it, and render leaves it out of the answer.
func (b *handlerBase[T]) withVersion(projection bson.D) bson.D {
	if isInclusion(projection) {
		return projection
	}
	return slices.DeleteFunc(projection, func(e bson.E) bool { return e.Key == b.version })
}

// findOne sends one find command with singleBatch, so that no cursor is
// left open on any server, and returns the document of its first batch.
// It reads the reply in place rather than through the driver's cursor.
func (h *findOneHandler[T]) findOne(ctx context.Context, filter, projection bson.D, comment any) (bson.Raw, error) {
	cmd := make(bson.D, 0, 7)
	cmd = append(cmd, bson.E{Key: "find", Value: h.coll.Name()}, bson.E{Key: "filter", Value: filter})
	if len(projection) > 0 {
		cmd = append(cmd, bson.E{Key: "projection", Value: projection})
	}
	cmd = append(cmd, bson.E{Key: "limit", Value: 1}, bson.E{Key: "singleBatch", Value: true})
	if h.readConcern != nil {
		cmd = append(cmd, bson.E{Key: "readConcern", Value: bson.D{{Key: "level", Value: h.readConcern.Level}}})
	}
	cmd = withComment(cmd, comment)
	var reply bson.Raw
	err := retryRead(ctx, func() (err error) {
		reply, err = h.coll.Database().RunCommand(ctx, cmd, h.runOpts).Raw()
		return err
	})
	if err != nil {
		return nil, err
	}
	batch, err := reply.LookupErr("cursor", "firstBatch")
	if err != nil {
		return nil, fmt.Errorf("find reply without cursor.firstBatch: %w", err)
	}
	arr, ok := batch.ArrayOK()
	if !ok {
		return nil, errors.New("find reply: cursor.firstBatch is not an array")
	}
	first, err := arr.IndexErr(0)
	if err != nil {
		return nil, ErrNotFound.Detailf("no document has this id")
	}
	doc, ok := first.DocumentOK()
	if !ok {
		return nil, errors.New("find reply: a batch element is not a document")
	}
	return doc, nil
}

// ParseObjectID parses s as an ObjectID (24 hex digits, either case) and
// returns an error matching ErrInvalidObjectID when it is not one: for
// BaseFilter hooks that read a parent id from the path.
func ParseObjectID(s string) (bson.ObjectID, error) {
	id, err := bson.ObjectIDFromHex(s)
	if err != nil {
		return bson.ObjectID{}, ErrInvalidObjectID.Detailf("an id must be 24 hexadecimal digits")
	}
	return id, nil
}
