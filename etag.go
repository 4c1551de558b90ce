package mongohttp

import (
	"errors"
	"slices"
	"strings"
)

// etagList is a parsed If-Match or If-None-Match field (RFC 9110 13.1.1,
// 13.1.2): "*", or a list of entity tags, possibly empty.
type etagList struct {
	present bool     // the request has the field, even empty
	any     bool     // "*"
	strong  []string // the strong tags, quotes included
	weak    []string // the opaque parts of the weak tags (W/"…"), quotes included
}

// maxListedETags bounds the entity tags one field may list, so that a
// header of a megabyte of `"",` costs no more than a refusal.
const maxListedETags = 64

// errMalformedETags is why a field is not an entity tag list.
var errMalformedETags = errors.New("not \"*\" or a comma-separated list of quoted entity tags")

// parseETags reads every line of a conditional field: "*" alone, or entity
// tags ("…" or W/"…", whose characters are those RFC 9110 allows) separated
// by commas and optional whitespace. Empty members are allowed, as in any
// list field; so a field can be present and name nothing, which callers
// must treat as a condition nothing satisfies, never as no condition.
func parseETags(values []string) (etagList, error) {
	l := etagList{present: len(values) > 0}
	members := 0
	for _, v := range values {
		for i := 0; ; {
			for i < len(v) && (v[i] == ' ' || v[i] == '\t' || v[i] == ',') {
				i++
			}
			if i == len(v) {
				break
			}
			if members++; members > maxListedETags {
				return l, errTooManyETags
			}
			start, weak := i, false
			switch {
			case v[i] == '*':
				l.any = true
				i++
			case strings.HasPrefix(v[i:], `W/"`):
				weak = true
				i += 2
				fallthrough
			case v[i] == '"':
				end := i + 1
				for end < len(v) && etagChar(v[end]) {
					end++
				}
				if end == len(v) || v[end] != '"' {
					return l, errMalformedETags
				}
				i = end + 1
				if weak {
					l.weak = append(l.weak, v[start+2:i])
				} else {
					l.strong = append(l.strong, v[start:i])
				}
			default:
				return l, errMalformedETags
			}
			for i < len(v) && (v[i] == ' ' || v[i] == '\t') {
				i++
			}
			if i < len(v) && v[i] != ',' {
				return l, errMalformedETags
			}
		}
	}
	if l.any && members > 1 {
		return l, errMalformedETags // "*" stands alone
	}
	return l, nil
}

// errTooManyETags refuses a list longer than maxListedETags.
var errTooManyETags = errors.New("lists too many entity tags")

// etagChar reports whether c may appear inside an entity tag's quotes
// (etagc: %x21 / %x23-7E / obs-text).
func etagChar(c byte) bool {
	return c == 0x21 || c >= 0x23 && c != 0x7f
}

// matchesStrong reports whether the list names etag by strong comparison:
// the whole tag, byte for byte, and never a weak one.
func (l etagList) matchesStrong(etag string) bool {
	return slices.Contains(l.strong, etag)
}

// etagMatches implements If-None-Match on reads (RFC 9110 13.1.2): "*" or
// a tag whose opaque part is etag's, weak or strong. A field that is not a
// valid list matches nothing: the answer is then the full one, which is
// always correct.
func etagMatches(values []string, etag string) bool {
	l, err := parseETags(values)
	if err != nil {
		return false
	}
	return l.any || l.matchesStrong(etag) || slices.Contains(l.weak, etag)
}
