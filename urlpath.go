package mongohttp

import (
	"net/http"
	"strings"
)

// canonicalPath returns an escaped path in the one spelling of its
// meaning (RFC 3986 6.2.2): an escaped unreserved character is written as
// itself, and the hex digits of the other escapes in upper case. So
// /pos%74s and /%70osts give /posts, while %2F, which means something else
// than a "/", stays escaped, and so does %2E: an escaped ".." is a name to
// a router that does not clean paths, but would be a step up in a URL. The
// headers built from a request's path (Location, Link, a problem's
// instance) use it, so that an odd spelling of a path is not echoed back
// and does not name another resource.
func canonicalPath(p string) string {
	i := strings.IndexByte(p, '%')
	if i < 0 {
		return p
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(p))
	b.WriteString(p[:i])
	for ; i < len(p); i++ {
		c := p[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
			// A "%" that starts no escape is itself escaped, so that it
			// cannot join the digits an unescape leaves after it ("%%370"
			// would otherwise become "%70", and then "p").
			b.WriteString("%25")
			continue
		}
		d := unhex(p[i+1])<<4 | unhex(p[i+2])
		if unreserved(d) && d != '.' {
			b.WriteByte(d)
		} else {
			b.WriteByte('%')
			b.WriteByte(hex[d>>4])
			b.WriteByte(hex[d&15])
		}
		i += 2
	}
	return b.String()
}

// requestPath is the request's escaped path in canonical form.
func requestPath(r *http.Request) string {
	return canonicalPath(r.URL.EscapedPath())
}

func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}
