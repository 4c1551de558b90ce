package mongohttp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Bulk insert batches: an insertMany is sent when either bound is reached,
// so memory stays flat however long the stream is.
const (
	bulkBatchDocs  = 500
	bulkBatchBytes = 4 << 20
)

// serveBulkInsert answers POST with an NDJSON stream of documents.
func serveBulkInsert[T any](h *writer[T], w http.ResponseWriter, r *http.Request) error {
	if mediaType(r) != NDJSON {
		w.Header().Set("Accept-Post", NDJSON)
		return errMediaType(r, NDJSON+": one document a line (a single "+mediaJSON+" document goes to the collection's insert route)")
	}
	return h.serveBulk(w, r)
}

// serveBulk inserts an NDJSON stream, one document per line (blank lines
// are skipped), in ordered batches. It stops at the first line that cannot
// be inserted: everything before it is stored, nothing after it. The
// answer is 200 {"inserted": n}, or the failing line's problem document
// with "inserted" and "line" (1-based) members.
func (h *writer[T]) serveBulk(w http.ResponseWriter, r *http.Request) error {
	if r.Header.Get("Idempotency-Key") != "" {
		return ErrInvalidParameter.Detailf("Idempotency-Key applies to single inserts; a bulk insert reports how far it got instead")
	}
	_, fixed, err := h.scope(r)
	if err != nil {
		return err
	}
	in := bufio.NewReaderSize(h.body(w, r), 64<<10)
	var (
		batch     []any
		batchLine []int // the line of each document of the batch
		size      int
		inserted  int64
		line      int
		buf       []byte
		// bodyFailed is set when the body could not be read
		bodyFailed bool
	)
	// fail answers the failure of line at. The rest of the stream is
	// dropped (see dropRest) unless it is the body that failed.
	fail := func(at int, err error) error {
		if !bodyFailed {
			dropRest(w, r, in, true)
		}
		e := AsError(err)
		c := *e
		c.Extensions = map[string]any{"inserted": inserted, "line": at}
		return &c
	}
	// flush inserts the batch. After the body failed to arrive, net/http
	// has cancelled the request's context: the lines read are stored all
	// the same, as the answer's "inserted" says, under the time limit.
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		ctx, cancel := h.writeContext(r)
		if bodyFailed {
			cancel()
			ctx, cancel = context.WithTimeout(context.WithoutCancel(r.Context()), h.maxTime)
		}
		defer cancel()
		opts := options.InsertMany().SetOrdered(true)
		if c := contextComment(ctx); c != nil {
			opts.SetComment(c)
		}
		res, err := h.w.wcoll.InsertMany(ctx, batch, opts)
		if res != nil {
			inserted += int64(len(res.InsertedIDs))
		}
		defer func() { h.obs(r).wrote(int(inserted)) }()
		if err != nil {
			at, failed := batchLine[0], bson.Raw(nil)
			var bwe mongo.BulkWriteException
			if errors.As(err, &bwe) && len(bwe.WriteErrors) > 0 {
				idx := bwe.WriteErrors[0].Index
				if idx >= 0 && idx < len(batchLine) {
					at, failed = batchLine[idx], batch[idx].(bson.Raw)
					inserted = inserted - int64(len(res.InsertedIDs)) + int64(idx)
				}
			}
			if isDuplicateKey(err) {
				err = h.w.unique.conflictError(ctx, err, failed)
			}
			return fail(at, err)
		}
		batch, batchLine, size = batch[:0], batchLine[:0], 0
		return nil
	}
	for {
		var err error
		buf, err = readLine(in, buf[:0], h.w.maxBody)
		if len(buf) > 0 || err == nil {
			line++
		}
		if errors.Is(err, errLineTooLong) {
			if ferr := flush(); ferr != nil {
				return ferr
			}
			return fail(line, ErrBodyTooLarge.Detailf("line %d is longer than %d bytes", line, h.w.maxBody))
		}
		if err != nil && err != io.EOF {
			bodyFailed = true
			if ferr := flush(); ferr != nil {
				return ferr
			}
			if len(buf) == 0 {
				line++ // the line that did not come
			}
			return fail(line, h.bodyReadError(err))
		}
		if trimmed := bytes.TrimSpace(buf); len(trimmed) > 0 {
			doc, derr := h.bulkDocument(r, trimmed, fixed)
			if derr != nil {
				if ferr := flush(); ferr != nil {
					return ferr
				}
				return fail(line, derr)
			}
			batch = append(batch, doc)
			batchLine = append(batchLine, line)
			size += len(doc)
			if len(batch) >= bulkBatchDocs || size >= bulkBatchBytes {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		if err == io.EOF {
			break
		}
	}
	if err := flush(); err != nil {
		return err
	}
	writeJSON(w, r, http.StatusOK, map[string]int64{"inserted": inserted})
	return nil
}

// bulkDocument checks and prepares one line as Insert does one body.
func (h *writer[T]) bulkDocument(r *http.Request, line []byte, fixed bson.D) (bson.Raw, error) {
	body, err := h.parser.write.decodeBody(line, false)
	var fields *ValidationError
	if err != nil && !errors.As(err, &fields) {
		return nil, err
	}
	if err := checkScope(body, fields, fixed); err != nil {
		return nil, err
	}
	return h.finalize(r, OpInsert, h.mergeInto(bson.D{}, body, ""), bson.NewObjectID(), fixed)
}

var errLineTooLong = errors.New("line too long")

// readLine appends the next line of in, without its newline, to buf. It
// returns io.EOF with the last line when the stream ends, and
// errLineTooLong once the line passes max bytes (the rest is not read).
func readLine(in *bufio.Reader, buf []byte, max int64) ([]byte, error) {
	for {
		chunk, err := in.ReadSlice('\n')
		buf = append(buf, chunk...)
		if int64(len(buf)) > max+1 {
			return buf, errLineTooLong
		}
		switch {
		case err == nil:
			return buf[:len(buf)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return buf, err
		}
	}
}
