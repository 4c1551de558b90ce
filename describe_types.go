package mongohttp

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/mongohttp/mongohttp/bsonjson"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// This file describes the documents a handler answers: from T's bson
// fields for a struct, through the mapping the encoder applies
// (docs/encoding.md), and from the policy's declared types for bson.Raw.

var (
	objectIDType   = reflect.TypeFor[bson.ObjectID]()
	timeType       = reflect.TypeFor[time.Time]()
	dateTimeType   = reflect.TypeFor[bson.DateTime]()
	decimalType    = reflect.TypeFor[bson.Decimal128]()
	binaryType     = reflect.TypeFor[bson.Binary]()
	regexType      = reflect.TypeFor[bson.Regex]()
	timestampType  = reflect.TypeFor[bson.Timestamp]()
	rawType        = reflect.TypeFor[bson.Raw]()
	rawValueType   = reflect.TypeFor[bson.RawValue]()
	javaScriptType = reflect.TypeFor[bson.JavaScript]()
	symbolType     = reflect.TypeFor[bson.Symbol]()
	durationType   = reflect.TypeFor[time.Duration]()
	marshalerType  = reflect.TypeFor[bson.Marshaler]()
	valueMarshaler = reflect.TypeFor[bson.ValueMarshaler]()
)

// documentSchema returns a reference to the schema of the documents the
// handlers of r answer under qp, named after T (a struct) or after the
// collection (bson.Raw).
func (r *Resource[T]) documentSchema(c *apiComponents, qp *QueryParser) *jsonSchema {
	enc := r.decl.Encoder
	if enc != nil && enc.Format != bsonjson.FormatPlain {
		return c.add(pascalName(r.coll.Name())+"ExtendedJSON", &jsonSchema{Type: "object",
			Description: "A document in Extended JSON v2 (" + map[bsonjson.Format]string{bsonjson.FormatRelaxed: "relaxed", bsonjson.FormatCanonical: "canonical"}[enc.Format] + ")."})
	}
	t := reflect.TypeFor[T]()
	if t == rawType {
		s := policyDocument(qp, enc)
		addRelations(c, s, qp.relations, enc)
		return c.add(pascalName(r.coll.Name()), s)
	}
	b := &typeSchemas{c: c, enc: enc}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || (len(qp.hidden) == 0 && len(qp.relations) == 0) {
		return b.schema(t)
	}
	s := b.structSchema(t)
	for _, h := range qp.hidden {
		b.hide(s, strings.Split(h, "."))
	}
	addRelations(c, s, qp.relations, enc)
	return c.add(b.name(t), s)
}

// addRelations adds to a document's schema the relations ?embed= can add
// to it, each under its name: the related document as its policy lets it
// be served (its own relations one level down), null when there is none,
// or an array of them when the local field holds an array.
func addRelations(c *apiComponents, s *jsonSchema, rels map[string]*relation, enc *bsonjson.Encoder) {
	for _, name := range sortedKeys(rels) {
		rel := rels[name]
		related := policyDocument(rel.target, enc)
		addRelations(c, related, rel.children, enc)
		ref := c.add(pascalName(rel.coll.Name()), related)
		s.Properties[name] = &jsonSchema{AnyOf: []*jsonSchema{ref, {Type: "null"}, {Type: "array", Items: nullableSchema(ref)}},
			Description: fmt.Sprintf("With ?embed=%s: the related document of %s (null when there is none), or an array of them when %s holds an array.", rel.path, rel.coll.Name(), rel.localPath)}
	}
}

// policyDocument describes the documents of a bson.Raw handler from the
// policy: each filterable field with its declared type, which a stored
// array of such values also matches; the sortable and projectable fields
// without a constraint; and any other field the collection stores, but the
// hidden ones.
func policyDocument(qp *QueryParser, enc *bsonjson.Encoder) *jsonSchema {
	root := &jsonSchema{Type: "object", Properties: map[string]*jsonSchema{}, Required: []string{"_id"}}
	for _, name := range qp.filterNames {
		s := outputSchema(qp.filter[name], enc)
		if name != "_id" {
			s = &jsonSchema{AnyOf: []*jsonSchema{s, {Type: "array", Items: outputSchema(qp.filter[name], enc)}},
				Description: fmt.Sprintf("Declared as %s field; an array of such values matches the same filters.", withArticle(qp.filter[name]))}
		}
		setSchemaPath(root, name, s)
	}
	for _, name := range slices.Concat(qp.sortNames, qp.projectNames) {
		if lookupSchemaPath(root, name) == nil {
			setSchemaPath(root, name, &jsonSchema{})
		}
	}
	// The hidden fields are not named: the document tells no more about
	// them than the query language does (an unknown name).
	return root
}

// setSchemaPath puts s at the dotted path under root, making the documents on
// the way (or arrays of them, which dotted paths also reach).
func setSchemaPath(root *jsonSchema, path string, s *jsonSchema) {
	head, rest, nested := strings.Cut(path, ".")
	if !nested {
		root.Properties[head] = s
		return
	}
	sub := schemaObjectAt(root.Properties[head])
	if sub == nil {
		sub = &jsonSchema{Type: "object", Properties: map[string]*jsonSchema{}}
		root.Properties[head] = &jsonSchema{AnyOf: []*jsonSchema{sub, {Type: "array", Items: sub}}}
	}
	setSchemaPath(sub, rest, s)
}

// schemaObjectAt returns the object schema of a path made by setSchemaPath.
func schemaObjectAt(s *jsonSchema) *jsonSchema {
	if s == nil || len(s.AnyOf) != 2 || s.AnyOf[0].Type != "object" {
		return nil
	}
	return s.AnyOf[0]
}

func lookupSchemaPath(root *jsonSchema, path string) *jsonSchema {
	head, rest, nested := strings.Cut(path, ".")
	s := root.Properties[head]
	if !nested || s == nil {
		return s
	}
	if sub := schemaObjectAt(s); sub != nil {
		return lookupSchemaPath(sub, rest)
	}
	return s // a leaf of its own: what is under it is not described
}

// typeSchemas builds schemas of Go types as the driver marshals them and
// the encoder writes them.
type typeSchemas struct {
	c   *apiComponents
	enc *bsonjson.Encoder
}

// name is the component name of a named type.
func (b *typeSchemas) name(t reflect.Type) string {
	if n := pascalName(t.Name()); n != "" {
		return n
	}
	return "Document"
}

// schema returns the schema of t: a reference for named structs.
func (b *typeSchemas) schema(t reflect.Type) *jsonSchema {
	if s := b.special(t); s != nil {
		return s
	}
	switch t.Kind() {
	case reflect.Pointer:
		return nullableSchema(b.schema(t.Elem()))
	case reflect.Interface:
		return &jsonSchema{}
	case reflect.Bool:
		return &jsonSchema{Type: "boolean"}
	case reflect.Int8:
		return integerSchema(math.MinInt8, math.MaxInt8)
	case reflect.Int16:
		return integerSchema(math.MinInt16, math.MaxInt16)
	case reflect.Int32:
		s := integerSchema(math.MinInt32, math.MaxInt32)
		s.Format = "int32"
		return s
	case reflect.Int, reflect.Int64:
		return int64Schema(b.enc)
	case reflect.Uint8:
		return integerSchema(0, math.MaxUint8)
	case reflect.Uint16:
		return integerSchema(0, math.MaxUint16)
	case reflect.Uint32:
		return integerSchema(0, math.MaxUint32)
	case reflect.Uint, reflect.Uint64:
		s := int64Schema(b.enc)
		if s.Type == "integer" {
			s.Minimum = "0"
		}
		return s
	case reflect.Float32, reflect.Float64:
		return floatSchema()
	case reflect.String:
		return &jsonSchema{Type: "string"}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return nullableSchema(&jsonSchema{Type: "string", ContentEncoding: "base64"})
		}
		return nullableSchema(&jsonSchema{Type: "array", Items: b.schema(t.Elem())})
	case reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return &jsonSchema{Type: "string", ContentEncoding: "base64"}
		}
		return &jsonSchema{Type: "array", Items: b.schema(t.Elem()), MinItems: pointerTo(t.Len()), MaxItems: pointerTo(t.Len())}
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return &jsonSchema{}
		}
		return nullableSchema(&jsonSchema{Type: "object", AdditionalProperties: b.schema(t.Elem())})
	case reflect.Struct:
		if t.Name() == "" {
			return b.structSchema(t)
		}
		if name, ok := b.c.byType[t]; ok {
			return schemaRef(name)
		}
		name := b.c.reserve(b.name(t))
		b.c.byType[t] = name
		b.c.schemas[name] = b.structSchema(t)
		return schemaRef(name)
	}
	return &jsonSchema{} // channels, functions: the driver refuses them
}

// special describes the driver's own types and types that marshal
// themselves.
func (b *typeSchemas) special(t reflect.Type) *jsonSchema {
	switch t {
	case objectIDType:
		return &jsonSchema{Type: "string", Pattern: objectIDOutputPattern, Description: "An ObjectID."}
	case timeType, dateTimeType:
		return &jsonSchema{Type: "string", Format: "date-time"}
	case durationType:
		return int64Schema(b.enc)
	case decimalType:
		return &jsonSchema{Type: "string", Format: "decimal128", Examples: []any{"1.23", "1.0E+10", "NaN"}}
	case binaryType:
		return &jsonSchema{Type: "string", Description: "Base64, or a UUID for binary subtype 4."}
	case regexType:
		return &jsonSchema{Type: "string", Description: "/pattern/options"}
	case timestampType:
		return &jsonSchema{Type: "object", Required: []string{"t", "i"}, AdditionalProperties: false,
			Properties: map[string]*jsonSchema{"t": integerSchema(0, math.MaxUint32), "i": integerSchema(0, math.MaxUint32)}}
	case javaScriptType, symbolType:
		return &jsonSchema{Type: "string"}
	case rawType, rawValueType:
		return &jsonSchema{}
	}
	if t.Implements(marshalerType) || t.Implements(valueMarshaler) ||
		reflect.PointerTo(t).Implements(marshalerType) || reflect.PointerTo(t).Implements(valueMarshaler) {
		return &jsonSchema{}
	}
	return nil
}

// structSchema describes a struct's fields as the driver names them: the
// bson tag's name, else the Go name in lower case; "-" skipped, inline
// structs and maps flattened. A field the stored document lacks is left
// out of the answer, so none is required but _id.
func (b *typeSchemas) structSchema(t reflect.Type) *jsonSchema {
	s := &jsonSchema{Type: "object", Properties: map[string]*jsonSchema{}, AdditionalProperties: false}
	b.addFields(s, t)
	if _, ok := s.Properties["_id"]; ok {
		s.Required = []string{"_id"}
	}
	return s
}

func (b *typeSchemas) addFields(s *jsonSchema, t reflect.Type) {
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, inline, skip := bsonName(f)
		if skip {
			continue
		}
		if inline {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			switch ft.Kind() {
			case reflect.Struct:
				b.addFields(s, ft)
			case reflect.Map:
				s.AdditionalProperties = b.schema(ft.Elem())
			}
			continue
		}
		if _, taken := s.Properties[name]; taken {
			continue // the driver keeps the shallower field
		}
		fs := b.schema(f.Type)
		if doc := f.Tag.Get("doc"); doc != "" {
			fs = describedAs(fs, doc)
		}
		s.Properties[name] = fs
	}
}

// bsonName reads a field's bson tag as the driver does.
func bsonName(f reflect.StructField) (name string, inline, skip bool) {
	name = strings.ToLower(f.Name)
	tag, ok := f.Tag.Lookup("bson")
	if !ok && !strings.Contains(string(f.Tag), ":") && len(f.Tag) > 0 {
		tag = string(f.Tag)
	}
	if tag == "-" {
		return "", false, true
	}
	for i, part := range strings.Split(tag, ",") {
		if i == 0 && part != "" {
			name = part
		}
		if part == "inline" {
			inline = true
		}
	}
	return name, inline, false
}

// describedAs returns s with a description; a reference keeps its own
// schema and gets the description beside it, which OpenAPI 3.1 allows.
func describedAs(s *jsonSchema, doc string) *jsonSchema {
	c := *s
	c.Description = doc
	return &c
}

// nullableSchema lets s also be null, as the driver writes a nil pointer, slice
// or map.
func nullableSchema(s *jsonSchema) *jsonSchema {
	if name, ok := s.Type.(string); ok && s.Ref == "" {
		c := *s
		c.Type = []string{name, "null"}
		return &c
	}
	return &jsonSchema{AnyOf: []*jsonSchema{s, {Type: "null"}}}
}

// hide removes the field at path from s, copying the schemas on the way so
// that named components stay as they are.
func (b *typeSchemas) hide(s *jsonSchema, path []string) {
	if s == nil || s.Properties == nil {
		return
	}
	p, ok := s.Properties[path[0]]
	if !ok {
		return
	}
	if len(path) == 1 {
		delete(s.Properties, path[0])
		s.Required = slices.DeleteFunc(slices.Clone(s.Required), func(r string) bool { return r == path[0] })
		return
	}
	inner := copySchema(b.c.resolve(p))
	if len(inner.AnyOf) > 0 { // nullable: hide in the non-null branch
		for i, alt := range inner.AnyOf {
			if alt.Type != "null" {
				inner.AnyOf[i] = copySchema(b.c.resolve(alt))
				b.hide(inner.AnyOf[i], path[1:])
			}
		}
	} else {
		b.hide(inner, path[1:])
	}
	s.Properties[path[0]] = inner
}

// copySchema copies s deeply enough to change its properties.
func copySchema(s *jsonSchema) *jsonSchema {
	var c jsonSchema
	b, _ := json.Marshal(s)
	_ = json.Unmarshal(b, &c)
	return &c
}
