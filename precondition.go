package mongohttp

import (
	"errors"
	"net/http"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// versionOf returns the stored version as text, "" when there is none.
func (h *writer[T]) versionOf(stored bson.Raw) string {
	if v, ok := stored.Lookup(h.version).ObjectIDOK(); ok {
		return v.Hex()
	}
	return ""
}

// versionCondition selects the stored document only while its version is
// the one read: the check and the write are one server operation.
func (h *writer[T]) versionCondition(stored bson.Raw) bson.D {
	if v, err := stored.LookupErr(h.version); err == nil {
		return bson.D{{Key: h.version, Value: v}}
	}
	return bson.D{{Key: h.version, Value: bson.D{{Key: "$exists", Value: false}}}}
}

// preconditions are the request's If-Match and If-None-Match headers.
type preconditions struct {
	ifMatch     etagList // If-Match; ifMatch.present when the request has one, even empty
	ifNoneMatch bool     // If-None-Match: * (create only)
}

// conditional reports whether the write depends on the stored document's
// ETag: then a missing document, or one whose ETag the request does not
// name, is a 412.
func (p preconditions) conditional() bool { return p.ifMatch.present }

// preconditions reads the conditional headers of a write, failing closed:
// a header that is present is a condition, whatever it holds. A malformed
// one is a 400; one that no document can satisfy (an empty list, weak
// tags only, If-Match beside If-None-Match: *) is a 412 at once. create
// says whether the method takes If-None-Match: * (PUT).
func (h *writer[T]) preconditions(r *http.Request, create bool) (preconditions, error) {
	var p preconditions
	var err error
	if p.ifMatch, err = parseETags(r.Header.Values("If-Match")); err != nil {
		return p, errMalformedCondition("If-Match", err)
	}
	none, err := parseETags(r.Header.Values("If-None-Match"))
	switch {
	case err != nil:
		return p, errMalformedCondition("If-None-Match", err)
	case !create && (none.any || len(none.strong)+len(none.weak) > 0):
		// An empty list asks nothing of a method that takes no
		// If-None-Match, and is let through; on PUT it is refused below.
		return p, ErrInvalidParameter.Detailf("If-None-Match is not taken by %s: If-None-Match: * asks to create a document, which only PUT does", r.Method)
	case create && none.present && !none.any:
		return p, ErrInvalidParameter.Detailf("If-None-Match on a write takes only \"*\" (create only)")
	}
	p.ifNoneMatch = none.any
	switch {
	case p.ifMatch.present && p.ifNoneMatch:
		// RFC 9110 13.1.1 and 13.2.2: If-Match needs a current document,
		// If-None-Match: * needs none, so one of them fails.
		return p, ErrPreconditionFailed.Detailf("If-Match and If-None-Match: * cannot both hold: one needs an existing document, the other none")
	case p.ifMatch.present && !p.ifMatch.any && len(p.ifMatch.strong) == 0:
		if len(p.ifMatch.weak) > 0 {
			return p, ErrPreconditionFailed.Detailf("If-Match names only weak entity tags, which never match a write (RFC 9110 13.1.1); send the ETag as it was given")
		}
		return p, ErrPreconditionFailed.Detailf("If-Match names no entity tag, so no document can match it; send the ETag of a read")
	case h.w.requireMatch && !p.ifMatch.present && !p.ifNoneMatch:
		return p, ErrPreconditionRequired.Detailf("this resource requires If-Match with the document's ETag (or If-None-Match: * to create)")
	}
	return p, nil
}

func errMalformedCondition(header string, err error) error {
	if errors.Is(err, errTooManyETags) {
		return ErrInvalidParameter.Detailf("%s lists more than %d entity tags", header, maxListedETags)
	}
	return ErrInvalidParameter.Detailf("%s is malformed: it must be \"*\" or a comma-separated list of quoted entity tags, as ETag headers give them", header)
}

// matches reports whether the stored document satisfies If-Match: "*", or
// a strong tag equal, whole, to the ETag the document has now as the
// handlers of one document serve it (RFC 9110 13.1.1's strong comparison).
// An ETag begins with the stored version (see etagOf), so a list with no
// tag of that version is refused without rendering the document.
func (h *writer[T]) matches(r *http.Request, p preconditions, stored bson.Raw) (bool, error) {
	if !p.ifMatch.present || p.ifMatch.any {
		return true, nil
	}
	prefix := `"`
	if v := h.versionOf(stored); v != "" {
		prefix += v + "."
	}
	candidate := false
	for _, tag := range p.ifMatch.strong {
		candidate = candidate || strings.HasPrefix(tag, prefix)
	}
	if !candidate {
		return false, nil
	}
	// render leaves out the hidden fields, the version among them, and
	// takes the version for the ETag from stored.
	_, current, err := h.render(r, stored)
	if err != nil {
		return false, err
	}
	return p.ifMatch.matchesStrong(current), nil
}

func errPrecondition() error {
	return ErrPreconditionFailed.Detailf("If-Match names no current ETag of this document: it was written since it was read, " +
		"or the tag is another representation's (?fields=, ?embed=); read it again")
}

// errMissing answers a conditional write of a document that does not exist
// in the request's scope: If-Match, "*" included, needs a current one.
func errMissing() error {
	return ErrPreconditionFailed.Detailf("no document has this id, and If-Match needs an existing one")
}
