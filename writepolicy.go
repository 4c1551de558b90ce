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

	// The strings of the keys and paths above, by themselves: a body's
	// keys are matched against them instead of each being allocated.
	keys  map[string]string // "profile", "city"
	paths map[string]string // "profile.city", "profile"
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
			return w, fmt.Errorf("Policy.Write: _id cannot be written; it comes from the path or the server")
		}
		if e, isArray := t.elem(); !e.scalar() || (!isArray && t != e) {
			return w, fmt.Errorf("Policy.Write: field %q has invalid type %v", name, t)
		}
		w.leaves[name] = t
		w.names = append(w.names, name)
		for i := strings.IndexByte(name, '.'); i >= 0; i = nextDot(name, i) {
			w.objects[name[:i]] = true
		}
	}
	slices.Sort(w.names)
	w.keys, w.paths = map[string]string{}, map[string]string{}
	for name := range w.leaves {
		w.paths[name] = name
		for key := range strings.SplitSeq(name, ".") {
			w.keys[key] = key
		}
	}
	for name := range w.objects {
		w.paths[name] = name
	}
	for name := range w.leaves {
		if w.objects[name] {
			return w, fmt.Errorf("Policy.Write: field %q is listed and has fields listed inside it; list only the innermost fields", name)
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
