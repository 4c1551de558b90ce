package mongohttp

import (
	"reflect"
	"strings"
)

// This file reads what marshalling a struct T writes, from its bson tags
// as the driver reads them: the write policy's known keys (knownKeys), and
// the omitempty fields whose zero values keepEmpty puts back (zero.go).

// bsonField is a top-level key that marshalling a struct writes, whether
// its field is tagged omitempty, and the field's type.
type bsonField struct {
	key       string
	omitEmpty bool
	typ       reflect.Type
}

// bsonFields returns the top-level keys that marshalling a T writes, read
// from its bson tags as the driver reads them (the lower-cased field name
// when a tag gives none), inline structs included; and whether T keeps
// any other key (it is a map, bson.D, bson.Raw, or a struct with an
// inline map).
func bsonFields[T any]() (fields []bsonField, anyKey bool) {
	t := reflect.TypeFor[T]()
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil, true
	}
	return structFields(t, nil, 0)
}

func structFields(t reflect.Type, fields []bsonField, depth int) ([]bsonField, bool) {
	anyKey := false
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("bson"), ",")
		if name == "-" && opts == "" {
			continue
		}
		opts = "," + opts + ","
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if strings.Contains(opts, ",inline,") {
			switch ft.Kind() {
			case reflect.Struct:
				if depth < 8 {
					var inlineAny bool
					fields, inlineAny = structFields(ft, fields, depth+1)
					anyKey = anyKey || inlineAny
				}
				continue
			case reflect.Map:
				anyKey = true
				continue
			}
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields = append(fields, bsonField{key: name, omitEmpty: strings.Contains(opts, ",omitempty,"), typ: f.Type})
	}
	return fields, anyKey
}

// knownKeys returns the top-level keys that marshalling a T writes, or nil
// when T keeps any key.
func knownKeys[T any]() map[string]bool {
	fields, anyKey := bsonFields[T]()
	if anyKey {
		return nil
	}
	keys := map[string]bool{}
	for _, f := range fields {
		keys[f.key] = true
	}
	return keys
}
