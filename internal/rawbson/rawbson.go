// Package rawbson edits raw BSON documents by copying elements as bytes: a
// write's document is edited on every request (server fields set, hidden
// fields left out of the answer), and going through bson.D and Marshal
// again cost more than the rest of the request's own work.
package rawbson

import (
	"errors"
	"strconv"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

var errMalformedDoc = errors.New("mongohttp: malformed BSON document")

// rawElements returns the element bytes of doc, checked to be one whole
// document.
func rawElements(doc []byte) ([]byte, error) {
	n, rest, ok := bsoncore.ReadLength(doc)
	if !ok || int(n) != len(doc) || n < 5 || doc[n-1] != 0 {
		return nil, errMalformedDoc
	}
	return rest[:len(rest)-1], nil
}

// nextElement reads one element of elems; ok is false at the end.
func nextElement(elems []byte) (bsoncore.Element, []byte, bool, error) {
	if len(elems) == 0 {
		return nil, nil, false, nil
	}
	e, rest, ok := bsoncore.ReadElement(elems)
	if !ok {
		return nil, nil, false, errMalformedDoc
	}
	return e, rest, true, nil
}

// MarshalD encodes d as bson.Marshal does, without reflection for the
// values request bodies and stored documents hold.
func MarshalD(d bson.D) (bson.Raw, error) {
	return appendD(make([]byte, 0, 64+32*len(d)), d)
}

func appendD(dst []byte, d bson.D) ([]byte, error) {
	idx, dst := bsoncore.AppendDocumentStart(dst)
	var err error
	for _, e := range d {
		if dst, err = appendElement(dst, e.Key, e.Value); err != nil {
			return nil, err
		}
	}
	return bsoncore.AppendDocumentEnd(dst, idx)
}

// appendElement appends key: v, encoding the common types directly.
func appendElement(dst []byte, key string, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return bsoncore.AppendNullElement(dst, key), nil
	case bson.D:
		dst = bsoncore.AppendHeader(dst, bsoncore.TypeEmbeddedDocument, key)
		return appendD(dst, x)
	case bson.A:
		dst = bsoncore.AppendHeader(dst, bsoncore.TypeArray, key)
		idx, dst := bsoncore.AppendArrayStart(dst)
		var err error
		var buf [20]byte
		for i, item := range x {
			if dst, err = appendElement(dst, string(strconv.AppendInt(buf[:0], int64(i), 10)), item); err != nil {
				return nil, err
			}
		}
		return bsoncore.AppendArrayEnd(dst, idx)
	case bson.RawValue:
		if x.Type == 0 {
			break // the zero RawValue: let the driver refuse it
		}
		dst = bsoncore.AppendHeader(dst, bsoncore.Type(x.Type), key)
		return append(dst, x.Value...), nil
	case float64:
		return bsoncore.AppendDoubleElement(dst, key, x), nil
	case bson.DateTime:
		return bsoncore.AppendDateTimeElement(dst, key, int64(x)), nil
	case bson.ObjectID:
		return bsoncore.AppendObjectIDElement(dst, key, x), nil
	case string:
		return bsoncore.AppendStringElement(dst, key, x), nil
	case int32:
		return bsoncore.AppendInt32Element(dst, key, x), nil
	case int64:
		return bsoncore.AppendInt64Element(dst, key, x), nil
	case bool:
		return bsoncore.AppendBooleanElement(dst, key, x), nil
	case bson.Raw:
		return bsoncore.AppendDocumentElement(dst, key, x), nil
	}
	t, data, err := bson.MarshalValue(v)
	if err != nil {
		return dst, err
	}
	dst = bsoncore.AppendHeader(dst, bsoncore.Type(t), key)
	return append(dst, data...), nil
}

// SetFields returns doc with the given fields set, replacing same-named
// ones in place and appending the others; _id goes first.
func SetFields(doc bson.Raw, set bson.D) (bson.Raw, error) {
	elems, err := rawElements(doc)
	if err != nil {
		return nil, err
	}
	if len(set) > 64 {
		return nil, errors.New("mongohttp: too many fields to set")
	}
	var done uint64 // the fields of set written so far
	idx, out := bsoncore.AppendDocumentStart(make([]byte, 0, len(doc)+32*len(set)+16))
	if i := indexOfKey(set, "_id"); i >= 0 {
		if out, err = appendElement(out, "_id", set[i].Value); err != nil {
			return nil, err
		}
		done |= 1 << i
	}
	for {
		e, rest, ok, err := nextElement(elems)
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		elems = rest
		key := e.KeyBytes()
		i := indexOfKey(set, key)
		switch {
		case i < 0:
			out = append(out, e...)
		case done&(1<<i) != 0:
			// _id, already first; or a key the document holds twice
		default:
			if out, err = appendElement(out, set[i].Key, set[i].Value); err != nil {
				return nil, err
			}
			done |= 1 << i
		}
	}
	for i, s := range set {
		if done&(1<<i) == 0 {
			if out, err = appendElement(out, s.Key, s.Value); err != nil {
				return nil, err
			}
		}
	}
	return bsoncore.AppendDocumentEnd(out, idx)
}

func indexOfKey[K string | []byte](d bson.D, key K) int {
	for i, e := range d {
		if e.Key == string(key) {
			return i
		}
	}
	return -1
}

// OmitPaths returns doc without the fields at the given dotted paths. doc
// itself is returned when it holds none of them.
func OmitPaths(doc bson.Raw, paths []string) bson.Raw {
	if !holdsPath(doc, paths, "") {
		return doc
	}
	out, err := appendOmitting(nil, doc, paths, "")
	if err != nil {
		return doc
	}
	return out
}

// holdsPath reports whether doc holds a field at one of paths.
func holdsPath(doc []byte, paths []string, prefix string) bool {
	elems, err := rawElements(doc)
	if err != nil {
		return false
	}
	for {
		e, rest, ok, err := nextElement(elems)
		if err != nil || !ok {
			return false
		}
		elems = rest
		key := e.KeyBytes()
		if pathIn(prefix, key, paths) {
			return true
		}
		if e.Value().Type == bsoncore.TypeEmbeddedDocument && parentIn(prefix, key, paths) {
			if holdsPath(e.Value().Data, paths, joinPath(prefix, key)) {
				return true
			}
		}
	}
}

// appendOmitting appends doc to dst without the fields at paths.
func appendOmitting(dst []byte, doc []byte, paths []string, prefix string) ([]byte, error) {
	elems, err := rawElements(doc)
	if err != nil {
		return nil, err
	}
	idx, dst := bsoncore.AppendDocumentStart(dst)
	for {
		e, rest, ok, err := nextElement(elems)
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		elems = rest
		key := e.KeyBytes()
		switch {
		case pathIn(prefix, key, paths):
		case e.Value().Type == bsoncore.TypeEmbeddedDocument && parentIn(prefix, key, paths):
			dst = bsoncore.AppendHeader(dst, bsoncore.TypeEmbeddedDocument, string(key))
			if dst, err = appendOmitting(dst, e.Value().Data, paths, joinPath(prefix, key)); err != nil {
				return nil, err
			}
		default:
			dst = append(dst, e...)
		}
	}
	return bsoncore.AppendDocumentEnd(dst, idx)
}

func joinPath(prefix string, key []byte) string {
	if prefix == "" {
		return string(key)
	}
	return prefix + "." + string(key)
}

// pathIn reports whether prefix.key is one of paths, without building it.
func pathIn(prefix string, key []byte, paths []string) bool {
	for _, p := range paths {
		if prefix == "" {
			if p == string(key) {
				return true
			}
			continue
		}
		if len(p) == len(prefix)+1+len(key) && p[:len(prefix)] == prefix && p[len(prefix)] == '.' && p[len(prefix)+1:] == string(key) {
			return true
		}
	}
	return false
}

// parentIn reports whether one of paths lies below prefix.key.
func parentIn(prefix string, key []byte, paths []string) bool {
	for _, p := range paths {
		rest := p
		if prefix != "" {
			if len(p) <= len(prefix) || p[:len(prefix)] != prefix || p[len(prefix)] != '.' {
				continue
			}
			rest = p[len(prefix)+1:]
		}
		if len(rest) > len(key) && rest[:len(key)] == string(key) && rest[len(key)] == '.' {
			return true
		}
	}
	return false
}
