package mongohttp

import (
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strings"

	"github.com/mongohttp/mongohttp/bsonjson"
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

	// From Policy.Constraints: the rules of the leaves that have any, the
	// required leaves under each object ("" is the body), and the
	// write-only leaves, sorted.
	rules     map[string]*fieldRule
	required  map[string][]requiredChild
	writeOnly []string
	// ints are the ranges of the Int fields narrower than safeInts, set
	// from the Go type of a Collection's documents.
	ints map[string]intRange
}

// requiredChild is a member of an object that is required, or holds
// required leaves: an absent one is reported at each of them.
type requiredChild struct {
	key    string
	leaves []string // the required paths at or under key
}

// writeOnlyFields lists the WriteOnly fields of constraints, sorted.
func writeOnlyFields(constraints map[string]Constraint) []string {
	var out []string
	for name, c := range constraints {
		if c.WriteOnly {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// compileWrite checks Policy.Write and Policy.Constraints: valid, visible
// paths, never _id, no path that is both a leaf and the object of another,
// and constraints on writable fields that suit their types.
func (qp *QueryParser) compileWrite(fields map[string]Type, constraints map[string]Constraint) (writeSchema, error) {
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
	return w, w.compileConstraints(constraints)
}

// compileConstraints compiles Policy.Constraints into w.
func (w *writeSchema) compileConstraints(constraints map[string]Constraint) error {
	w.writeOnly = writeOnlyFields(constraints)
	for _, name := range slices.Sorted(maps.Keys(constraints)) {
		t, ok := w.leaves[name]
		if !ok {
			return fmt.Errorf("mongohttp: Policy.Constraints: field %q is not in Policy.Write", name)
		}
		rule, err := compileConstraint(name, t, constraints[name])
		if err != nil {
			return err
		}
		if w.rules == nil {
			w.rules = map[string]*fieldRule{}
		}
		w.rules[name] = rule
		if !rule.Required {
			continue
		}
		if w.required == nil {
			w.required = map[string][]requiredChild{}
		}
		// Listed under the body and each object on the way to the leaf.
		for parent, key := "", name; ; {
			head, _, _ := strings.Cut(key, ".")
			children := w.required[parent]
			i := slices.IndexFunc(children, func(c requiredChild) bool { return c.key == head })
			if i < 0 {
				children = append(children, requiredChild{key: head})
				i = len(children) - 1
			}
			children[i].leaves = append(children[i].leaves, name)
			w.required[parent] = children
			if head == key {
				break
			}
			parent = joinDotted(parent, head)
			key = key[len(head)+1:]
		}
	}
	return nil
}

// joinDotted joins a dotted path and a key.
func joinDotted(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

// requiredUnder reports whether a required leaf is at or under path.
func (w *writeSchema) requiredUnder(path string) bool {
	if r := w.rules[path]; r != nil && r.Required {
		return true
	}
	parent, key := "", path
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		parent, key = path[:i], path[i+1:]
	}
	return slices.ContainsFunc(w.required[parent], func(c requiredChild) bool { return c.key == key })
}

func nextDot(s string, i int) int {
	j := strings.IndexByte(s[i+1:], '.')
	if j < 0 {
		return -1
	}
	return i + 1 + j
}

// intRange is the range of an Int field's writes, and the format the API
// document gives it.
type intRange struct {
	lo, hi int64
	format string // "int32", "int64", or "" for the narrower widths
}

// safeInts is the range of an Int field stored in a 64-bit integer (or in
// a document type without fields): the integers a JSON client reads
// exactly, ±(2^53−1). Larger ones would be written as sent and read back
// rounded by JavaScript's JSON.parse, so writes refuse them.
var safeInts = intRange{lo: -bsonjson.MaxSafeInteger, hi: bsonjson.MaxSafeInteger, format: "int64"}

// intRange returns the range of the Int field at path.
func (w writeSchema) intRange(path string) intRange {
	if r, ok := w.ints[path]; ok {
		return r
	}
	return safeInts
}

// intRanges returns, for the Int fields among leaves, the range of the Go
// field of t that holds them (an int32 field takes int32 values), found by
// bson names as the driver finds them. Fields t does not declare, and the
// 64-bit ones, take safeInts.
func intRanges(t reflect.Type, leaves map[string]Type) map[string]intRange {
	out := map[string]intRange{}
	for path, typ := range leaves {
		if e, _ := typ.elem(); e != Int {
			continue
		}
		ft := fieldType(t, strings.Split(path, "."))
		if ft == nil {
			continue
		}
		if _, isArray := typ.elem(); isArray && (ft.Kind() == reflect.Slice || ft.Kind() == reflect.Array) {
			ft = ft.Elem()
		}
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch ft.Kind() {
		case reflect.Int8:
			out[path] = intRange{lo: math.MinInt8, hi: math.MaxInt8}
		case reflect.Int16:
			out[path] = intRange{lo: math.MinInt16, hi: math.MaxInt16}
		case reflect.Int32:
			out[path] = intRange{lo: math.MinInt32, hi: math.MaxInt32, format: "int32"}
		case reflect.Uint8:
			out[path] = intRange{lo: 0, hi: math.MaxUint8}
		case reflect.Uint16:
			out[path] = intRange{lo: 0, hi: math.MaxUint16}
		case reflect.Uint32:
			out[path] = intRange{lo: 0, hi: math.MaxUint32, format: "int64"}
		case reflect.Uint, reflect.Uint64:
			out[path] = intRange{lo: 0, hi: bsonjson.MaxSafeInteger, format: "int64"}
		}
	}
	return out
}

// fieldType returns the type of the field of t at the bson path keys, or
// nil when t is not a struct that declares it.
func fieldType(t reflect.Type, keys []string) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct || len(keys) == 0 {
		return nil
	}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("bson"), ",")
		if strings.Contains(","+opts+",", ",inline,") {
			if ft := fieldType(f.Type, keys); ft != nil {
				return ft
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		if name != keys[0] {
			continue
		}
		if len(keys) == 1 {
			return f.Type
		}
		return fieldType(f.Type, keys[1:])
	}
	return nil
}
