package mongohttp

import (
	"net/http"
	"slices"
	"strconv"
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
		allowed := m.allowed()
		w.Header().Set("Allow", allowed)
		WriteError(w, r, ErrMethodNotAllowed.Detailf("method %s is not allowed; use %s", strconv.Quote(clipMethod(r.Method)), allowed))
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

// clipMethod bounds a method echoed in an error detail.
func clipMethod(m string) string {
	if len(m) > 32 {
		return m[:32]
	}
	return m
}
