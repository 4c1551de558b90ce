package mongohttp

import (
	"fmt"
	"slices"
	"strings"
)

// writeSchema is the compiled Policy.Write: the writable leaves with their
// types, and the objects that contain them.
type writeSchema struct {
	leaves  map[string]Type // "profile.city" → String
	objects map[string]bool // "profile": an object with writable fields inside
	names   []string        // the leaves, sorted, for error details
}

// compileWrite checks Policy.Write: valid, visible paths, never _id, and no
// path that is both a leaf and the object of another.
func (qp *QueryParser) compileWrite(fields map[string]Type) (writeSchema, error) {
	w := writeSchema{leaves: map[string]Type{}, objects: map[string]bool{}}
	for name, t := range fields {
		if err := qp.checkVisible("Write", name); err != nil {
			return w, err
		}
		if name == "_id" || strings.HasPrefix(name, "_id.") {
			return w, fmt.Errorf("mongohttp: Policy.Write: _id cannot be written; it comes from the path or the server")
		}
		if e, isArray := t.elem(); !e.scalar() || (!isArray && t != e) {
			return w, fmt.Errorf("mongohttp: Policy.Write: field %q has invalid type %v", name, t)
		}
		w.leaves[name] = t
		w.names = append(w.names, name)
		for i := strings.IndexByte(name, '.'); i >= 0; i = nextDot(name, i) {
			w.objects[name[:i]] = true
		}
	}
	slices.Sort(w.names)
	for name := range w.leaves {
		if w.objects[name] {
			return w, fmt.Errorf("mongohttp: Policy.Write: field %q is listed and has fields listed inside it; list only the innermost fields", name)
		}
	}
	return w, nil
}

func nextDot(s string, i int) int {
	j := strings.IndexByte(s[i+1:], '.')
	if j < 0 {
		return -1
	}
	return i + 1 + j
}
