package mongohttp

import (
	"math"
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

// omitEmptyKeys returns the top-level keys of T's fields tagged omitempty,
// inline structs included; nil when there are none or T is not a struct.
func omitEmptyKeys[T any]() map[string]bool {
	fields, _ := bsonFields[T]()
	var keys map[string]bool
	for _, f := range fields {
		if f.omitEmpty {
			if keys == nil {
				keys = map[string]bool{}
			}
			keys[f.key] = true
		}
	}
	return keys
}

// keepEmpty adds to doc, marshalled from T, the fields of keys that src
// (the document T was decoded from) holds with an empty value and doc
// lacks.
func keepEmpty(doc, src bson.Raw, keys map[string]bool) bson.Raw {
	if keys == nil {
		return doc
	}
	var restore bson.D
	elems, err := src.Elements()
	if err != nil {
		return doc
	}
	for _, e := range elems {
		key := e.Key()
		if !keys[key] || !emptyBSON(e.Value()) {
			continue
		}
		if _, err := doc.LookupErr(key); err != nil {
			restore = append(restore, bson.E{Key: key, Value: e.Value()})
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
