package mongohttp

import (
	"net/http"
	"slices"
	"strings"
)

// Methods routes a request by its method to one of several handlers, so
// that one path can serve a collection's reads and writes on any router:
//
//	mux.Handle("/posts", mongohttp.Methods{"GET": posts.Find(), "POST": posts.Insert()})
//	mux.Handle("/posts/{id}", mongohttp.Methods{
//		"GET": posts.FindOne(), "PUT": posts.Replace(), "PATCH": posts.Patch(), "DELETE": posts.Delete(),
//	})
//
// HEAD goes to the GET handler when no HEAD handler is given. Other methods
// get 405 problem+json with an Allow header listing the methods served.
type Methods map[string]http.Handler

func (m Methods) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h, ok := m[r.Method]
	if !ok && r.Method == http.MethodHead {
		h, ok = m[http.MethodGet]
	}
	if !ok {
		methodNotAllowed(w, r, m.allowed())
		return
	}
	h.ServeHTTP(w, r)
}

func (m Methods) allowed() string {
	names := make([]string, 0, len(m)+1)
	for k := range m {
		names = append(names, k)
	}
	if _, get := m[http.MethodGet]; get {
		if _, head := m[http.MethodHead]; !head {
			names = append(names, http.MethodHead)
		}
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// allowGetHead answers 405 for methods other than GET and HEAD, and
// reports whether the request may go on.
func allowGetHead(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	methodNotAllowed(w, r, "GET, HEAD")
	return false
}

// methodNotAllowed answers 405 problem+json with an Allow header: the one
// answer of every handler to a method it does not serve.
func methodNotAllowed(w http.ResponseWriter, r *http.Request, allow string) {
	w.Header().Set("Allow", allow)
	WriteError(w, r, ErrMethodNotAllowed.Detailf("method %s is not allowed; use %s", clip(r.Method), allow))
}
