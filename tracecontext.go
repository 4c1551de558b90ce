package mongohttp

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// commentFor returns the comment the request's commands carry, so that the
// server's logs and profiler can be matched to requests: the W3C trace
// context and, for an observed request, the request id, in the sqlcommenter
// format (request_id='…',traceparent='…'), as a string since servers such
// as FerretDB take no other type. nil when the request has no trace context
// and is not observed; a traceparent header on an unobserved request costs
// its comment's two small allocations.
func (h *handlerBase[T]) commentFor(r *http.Request) any {
	if o := h.obs(r); o != nil {
		return o.commentValue()
	}
	tp := r.Header.Get("Traceparent")
	if tp == "" {
		return nil
	}
	if tp, ok := parseTraceParent(tp); ok {
		return "traceparent='" + tp + "'"
	}
	return nil
}

// commentValue is the comment of an observed request's commands, made
// once.
func (o *observation) commentValue() any {
	if o.comment == "" {
		id := url.QueryEscape(o.rep.RequestID)
		if o.rep.TraceParent != "" {
			o.comment = "request_id='" + id + "',traceparent='" + o.rep.TraceParent + "'"
		} else {
			o.comment = "request_id='" + id + "'"
		}
	}
	// A pointer into the observation, which the driver encodes as the
	// string it points to: boxing the string itself would allocate.
	return &o.comment
}

// contextComment is the comment of the commands of the write handlers,
// which reach the driver's helpers with the request's context only: that
// of an observed request; nil otherwise.
func contextComment(ctx context.Context) any {
	if o := observationFrom(ctx); o != nil {
		return o.commentValue()
	}
	return nil
}

// insertComment carries an observed request's comment to InsertOne.
func insertComment(ctx context.Context) []options.Lister[options.InsertOneOptions] {
	if c := contextComment(ctx); c != nil {
		return []options.Lister[options.InsertOneOptions]{options.InsertOne().SetComment(c)}
	}
	return nil
}

// withComment appends the comment to a command, when there is one.
func withComment(cmd bson.D, comment any) bson.D {
	if comment == nil {
		return cmd
	}
	return append(cmd, bson.E{Key: "comment", Value: comment})
}

// countComment and estimatedComment carry the comment to the count helpers.
func countComment(comment any) []options.Lister[options.CountOptions] {
	if comment == nil {
		return nil
	}
	return []options.Lister[options.CountOptions]{options.Count().SetComment(comment)}
}

func estimatedComment(comment any) []options.Lister[options.EstimatedDocumentCountOptions] {
	if comment == nil {
		return nil
	}
	return []options.Lister[options.EstimatedDocumentCountOptions]{options.EstimatedDocumentCount().SetComment(comment)}
}

// parseTraceParent checks a W3C traceparent header (version 00, or a later
// version's first 55 characters) and returns it, lowercase hex only, as
// the specification requires.
func parseTraceParent(s string) (string, bool) {
	if len(s) < 55 || (len(s) > 55 && s[55] != '-') {
		return "", false
	}
	version, trace, span, flags := s[0:2], s[3:35], s[36:52], s[53:55]
	if s[2] != '-' || s[35] != '-' || s[52] != '-' ||
		!lowerHex(version) || version == "ff" || (version == "00" && len(s) != 55) ||
		!lowerHex(trace) || !lowerHex(span) || !lowerHex(flags) ||
		strings.Trim(trace, "0") == "" || strings.Trim(span, "0") == "" {
		return "", false
	}
	return s[:55], true
}

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// traceID returns the trace id of a valid traceparent, "" otherwise.
func traceID(traceParent string) string {
	if len(traceParent) < 55 {
		return ""
	}
	return traceParent[3:35]
}

// requestID returns the request's id: its RequestIDHeader when plausible,
// else a new random one.
func requestID(r *http.Request) string {
	if id := r.Header.Get(RequestIDHeader); validRequestID(id) {
		return id
	}
	var b [8]byte
	var id [16]byte
	binary.LittleEndian.PutUint64(b[:], rand.Uint64())
	hex.Encode(id[:], b[:])
	return string(id[:])
}

// validRequestID accepts ids that are safe to log and to send back in a
// header: 1 to 128 visible ASCII characters, no quotes or backslashes.
func validRequestID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c > '~' || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// patternRoute is the default Collection.Route: the ServeMux pattern the
// request matched, without its method and host.
func patternRoute(r *http.Request) string {
	p := r.Pattern
	if i := strings.IndexByte(p, ' '); i >= 0 {
		p = strings.TrimLeft(p[i+1:], " \t")
	}
	if i := strings.IndexByte(p, '/'); i > 0 {
		p = p[i:]
	}
	return p
}

// observe wraps a handler of the resource so that each request is
// observed; without an observer and Server-Timing it returns h itself.
