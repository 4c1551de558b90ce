package mongohttp

import (
	"github.com/mongohttp/mongohttp/internal/rawbson"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// overlay adds to doc the fields of m that T does not know (known is the
// set of keys T writes; nil when T keeps every key), so that decoding into
// a struct loses no stored field it has no place for.
func overlay(doc, m bson.Raw, known map[string]bool) bson.Raw {
	if known == nil {
		return doc
	}
	elems, err := m.Elements()
	if err != nil {
		return doc
	}
	var extra bson.D
	for _, e := range elems {
		if !known[e.Key()] {
			if _, err := doc.LookupErr(e.Key()); err != nil {
				extra = append(extra, bson.E{Key: e.Key(), Value: e.Value()})
			}
		}
	}
	if len(extra) == 0 {
		return doc
	}
	out, err := rawbson.SetFields(doc, extra)
	if err != nil {
		return doc
	}
	return out
}

func indexOf(d bson.D, key string) int {
	for i, e := range d {
		if e.Key == key {
			return i
		}
	}
	return -1
}

// mergeInto applies a decoded body to doc (RFC 7396): objects merge field
// by field, other values replace, remove{} deletes. A removed object loses
// only its writable fields, so a client cannot delete what it cannot write.
func (h *writer[T]) mergeInto(doc bson.D, patch bson.D, prefix string) bson.D {
	for _, p := range patch {
		path := p.Key
		if prefix != "" {
			path = prefix + "." + p.Key
		}
		i := indexOf(doc, p.Key)
		switch v := p.Value.(type) {
		case remove:
			if i < 0 {
				continue
			}
			if h.parser.write.objects[path] {
				if sub, ok := asDoc(doc[i].Value); ok {
					doc[i].Value = h.stripWritable(sub, path)
					if len(doc[i].Value.(bson.D)) > 0 {
						continue
					}
				}
			}
			doc = append(doc[:i], doc[i+1:]...)
		case bson.D:
			var sub bson.D
			if i >= 0 {
				sub, _ = asDoc(doc[i].Value)
			}
			merged := h.mergeInto(sub, v, path)
			if i >= 0 {
				doc[i].Value = merged
			} else {
				doc = append(doc, bson.E{Key: p.Key, Value: merged})
			}
		default:
			if i >= 0 {
				doc[i].Value = v
			} else {
				doc = append(doc, p)
			}
		}
	}
	return doc
}

// stripWritable removes the writable fields of doc (at path prefix), and
// objects left empty by it: what a replacement keeps of the stored
// document is what clients cannot write.
func (h *writer[T]) stripWritable(doc bson.D, prefix string) bson.D {
	out := doc[:0:0]
	for _, e := range doc {
		path := e.Key
		if prefix != "" {
			path = prefix + "." + e.Key
		}
		if _, ok := h.parser.write.leaves[path]; ok {
			continue
		}
		if h.parser.write.objects[path] {
			if sub, ok := asDoc(e.Value); ok {
				if sub = h.stripWritable(sub, path); len(sub) == 0 {
					continue
				}
				e.Value = sub
			}
		}
		out = append(out, e)
	}
	return out
}

// asDoc returns v as a bson.D if it is a document, decoding a raw one.
func asDoc(v any) (bson.D, bool) {
	switch d := v.(type) {
	case bson.D:
		return d, true
	case bson.RawValue:
		if raw, ok := d.DocumentOK(); ok {
			return toD(raw), true
		}
	case bson.Raw:
		return toD(d), true
	}
	return nil, false
}

// toD turns a raw document into a bson.D whose values stay raw, so that
// every stored value keeps its exact BSON type.
func toD(raw bson.Raw) bson.D {
	elems, err := raw.Elements()
	if err != nil {
		return nil
	}
	d := make(bson.D, len(elems))
	for i, e := range elems {
		d[i] = bson.E{Key: e.Key(), Value: e.Value()}
	}
	return d
}

// conflictsWithScope reports the body fields that contradict the scope.
func conflictsWithScope(body, fixed bson.D) []FieldError {
	var errs []FieldError
	for _, f := range fixed {
		if i := indexOf(body, f.Key); i >= 0 && !sameBSON(body[i].Value, f.Value) {
			errs = append(errs, FieldError{Pointer: "/" + pointerEscape(f.Key), Code: "conflicts_with_scope",
				Detail: "this field is set by the request's scope and cannot take another value"})
		}
	}
	return errs
}

func sameBSON(a, b any) bool {
	ra, err1 := bson.Marshal(bson.D{{Key: "v", Value: a}})
	rb, err2 := bson.Marshal(bson.D{{Key: "v", Value: b}})
	return err1 == nil && err2 == nil && string(ra) == string(rb)
}
