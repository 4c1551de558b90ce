package mongohttp

import (
	"math"
	"reflect"
	"time"

	"github.com/mongohttp/mongohttp/internal/rawbson"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// A struct field tagged omitempty is left out when it marshals to an empty
// value (0, "", false, an empty slice or map, a zero time), so decoding a
// stored {"age": 0} into T and marshalling it back would lose the field:
// answers would not show it and writes would drop it. keepEmpty puts such
// values back, so that zero values round-trip through T whatever its tags.
// A value is put back only when the source document held one that decodes
// to an empty value: a hook that emptied a field the source had filled
// (Prepare clearing a password) still removes it.

// omitTree is where keepEmpty looks in a document marshalled from a
// struct: the fields (by key) tagged omitempty, and those holding structs,
// or slices and arrays of them, whose own fields may be.
type omitTree map[string]*omitNode

type omitNode struct {
	empty bool     // the field is tagged omitempty
	sub   omitTree // its struct's tree (of each element's, for a slice); nil for none
}

// omitEmptyKeys returns the omitTree of T; nil when T is not a struct or
// no omitempty field is reachable from it. Each struct type gets one tree,
// shared wherever the type appears, so a recursive type's tree refers to
// itself; the trees hold only the fields through which an omitempty field
// is reached, so documents without any cost keepEmpty nothing.
func omitEmptyKeys[T any]() omitTree {
	root := structOf(reflect.TypeFor[T]())
	if root == nil {
		return nil
	}
	// The struct types reachable from T, and their fields.
	fields := map[reflect.Type][]bsonField{}
	var visit func(t reflect.Type)
	visit = func(t reflect.Type) {
		if _, ok := fields[t]; ok {
			return
		}
		fs, _ := structFields(t, nil, 0)
		fields[t] = fs
		for _, f := range fs {
			if inner := structOf(f.typ); inner != nil {
				visit(inner)
			}
		}
	}
	visit(root)
	// A type has omitempty fields when one of its own is tagged, or one of
	// its struct fields has: to a fixed point, for recursive types.
	has := map[reflect.Type]bool{}
	for changed := true; changed; {
		changed = false
		for t, fs := range fields {
			if has[t] {
				continue
			}
			for _, f := range fs {
				if inner := structOf(f.typ); f.omitEmpty || (inner != nil && has[inner]) {
					has[t], changed = true, true
					break
				}
			}
		}
	}
	if !has[root] {
		return nil
	}
	trees := map[reflect.Type]omitTree{}
	for t := range has {
		trees[t] = omitTree{}
	}
	for t, tree := range trees {
		for _, f := range fields[t] {
			inner := structOf(f.typ)
			if f.omitEmpty || (inner != nil && has[inner]) {
				tree[f.key] = &omitNode{empty: f.omitEmpty, sub: trees[inner]}
			}
		}
	}
	return trees[root]
}

// structOf returns the struct type a field of type t marshals as a
// document from (through pointers, and a slice's or an array's elements),
// or nil.
func structOf(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) && t.Elem().Kind() != reflect.Uint8 {
		t = t.Elem()
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
	}
	if t.Kind() != reflect.Struct || ownEncoding(t) {
		return nil
	}
	return t
}

// ownEncoding reports whether the driver encodes t otherwise than as a
// document of its fields: time.Time, the bson package's types, marshalers.
func ownEncoding(t reflect.Type) bool {
	if t.PkgPath() == "time" || t.PkgPath() == objectIDType.PkgPath() {
		return true
	}
	p := reflect.PointerTo(t)
	return t.Implements(marshalerType) || t.Implements(valueMarshaler) || p.Implements(marshalerType) || p.Implements(valueMarshaler)
}

// keepEmpty adds to doc, marshalled from T, the fields of tree that src
// (the document T was decoded from) holds with an empty value and doc
// lacks, at every depth: in documents, and in the elements of arrays that
// have as many in both.
func keepEmpty(doc, src bson.Raw, tree omitTree) bson.Raw {
	if tree == nil {
		return doc
	}
	var restore bson.D
	elems, err := src.Elements()
	if err != nil {
		return doc
	}
	for _, e := range elems {
		key := e.Key()
		node := tree[key]
		if node == nil {
			continue
		}
		have, err := doc.LookupErr(key)
		if err != nil {
			if node.empty && emptyBSON(e.Value()) {
				restore = append(restore, bson.E{Key: key, Value: e.Value()})
			}
			continue
		}
		if node.sub != nil {
			if v, changed := keepEmptyIn(have, e.Value(), node.sub); changed {
				restore = append(restore, bson.E{Key: key, Value: v})
			}
		}
	}
	if restore == nil {
		return doc
	}
	out, err := rawbson.SetFields(doc, restore)
	if err != nil {
		return doc
	}
	return out
}

// keepEmptyIn applies keepEmpty to the document have, or to each document
// of the array have, from src's; changed is false when nothing was added.
func keepEmptyIn(have, src bson.RawValue, tree omitTree) (v any, changed bool) {
	switch have.Type {
	case bson.TypeEmbeddedDocument:
		d, s := have.Document(), src.Document()
		if src.Type != bson.TypeEmbeddedDocument {
			return nil, false
		}
		out := keepEmpty(d, s, tree)
		return out, len(out) != len(d)
	case bson.TypeArray:
		if src.Type != bson.TypeArray {
			return nil, false
		}
		hv, err1 := have.Array().Values()
		sv, err2 := src.Array().Values()
		if err1 != nil || err2 != nil || len(hv) != len(sv) {
			return nil, false
		}
		out := make(bson.A, len(hv))
		for i := range hv {
			out[i] = hv[i]
			if e, ok := keepEmptyIn(hv[i], sv[i], tree); ok {
				out[i], changed = e, true
			}
		}
		return out, changed
	}
	return nil, false
}

// zeroTimeMillis is time.Time{} as a BSON date.
var zeroTimeMillis = time.Time{}.UnixMilli()

// emptyBSON reports whether v decodes to a value omitempty leaves out.
func emptyBSON(v bson.RawValue) bool {
	switch v.Type {
	case bson.TypeNull:
		return true
	case bson.TypeInt32:
		return v.Int32() == 0
	case bson.TypeInt64:
		return v.Int64() == 0
	case bson.TypeDouble:
		return v.Double() == 0 && !math.Signbit(v.Double())
	case bson.TypeString:
		return v.StringValue() == ""
	case bson.TypeBoolean:
		return !v.Boolean()
	case bson.TypeArray:
		vals, err := v.Array().Values()
		return err == nil && len(vals) == 0
	case bson.TypeEmbeddedDocument:
		elems, err := v.Document().Elements()
		return err == nil && len(elems) == 0
	case bson.TypeDateTime:
		return v.DateTime() == zeroTimeMillis
	}
	return false
}
