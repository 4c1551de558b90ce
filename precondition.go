package mongohttp

import (
	"net/http"
	"strings"

	"github.com/mongohttp/mongohttp/internal/rawbson"
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
	ifMatch     []string // entity tags, or "*"
	ifNoneMatch bool     // If-None-Match: * (create only)
}

func (h *writer[T]) preconditions(r *http.Request) (preconditions, error) {
	var p preconditions
	for _, v := range r.Header.Values("If-Match") {
		for part := range strings.SplitSeq(v, ",") {
			if part = strings.TrimSpace(part); part != "" {
				p.ifMatch = append(p.ifMatch, part)
			}
		}
	}
	for _, v := range r.Header.Values("If-None-Match") {
		if strings.TrimSpace(v) == "*" {
			p.ifNoneMatch = true
		} else if v != "" {
			return p, ErrInvalidParameter.Detailf("If-None-Match on a write takes only \"*\" (create only)")
		}
	}
	if h.w.requireMatch && p.ifMatch == nil && !p.ifNoneMatch {
		return p, ErrPreconditionRequired.Detailf("this resource requires If-Match with the document's ETag (or If-None-Match: * to create)")
	}
	return p, nil
}

// matches reports whether the stored document satisfies If-Match. A tag
// carrying a version is compared with the stored version; a tag without
// one (a document written before versions, or by another program) with
// the ETag the document has now. Weak tags never match (RFC 9110 13.1.1).
func (h *writer[T]) matches(r *http.Request, p preconditions, stored bson.Raw) (bool, error) {
	if p.ifMatch == nil {
		return true, nil
	}
	var current string
	for _, tag := range p.ifMatch {
		if tag == "*" {
			return true, nil
		}
		if strings.HasPrefix(tag, "W/") {
			continue
		}
		if version, _, ok := strings.Cut(strings.Trim(tag, `"`), "."); ok {
			if v, ok := stored.Lookup(h.version).ObjectIDOK(); ok && v.Hex() == version {
				return true, nil
			}
			continue
		}
		if current == "" {
			shown := stored
			if len(h.hidden) > 0 {
				shown = rawbson.OmitPaths(stored, h.hidden)
			}
			var err error
			if _, current, err = h.render(r, shown); err != nil {
				return false, err
			}
		}
		if tag == current {
			return true, nil
		}
	}
	return false, nil
}

func errPrecondition() error {
	return ErrPreconditionFailed.Detailf("the document has changed since the ETag given in If-Match; read it again")
}
