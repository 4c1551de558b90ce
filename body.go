package mongohttp

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/mongohttp/mongohttp/internal/jsonlex"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// FieldError is one failing field of a 422 "validation_failed" answer.
type FieldError struct {
	// Pointer locates the field in the request body (RFC 6901), for
	// example "/profile/city" or "/tags/2".
	Pointer string `json:"pointer"`
	// Code is a stable identifier: not_writable, invalid_type,
	// invalid_value or invalid_object_id for bodies that break the write
	// policy, and the Validate hook's own codes.
	Code string `json:"code"`
	// Detail explains the failure to the client.
	Detail string `json:"detail,omitempty"`
}

// ValidationError lists the fields of a document that cannot be written.
// A Validate hook returns one to have the request answered 422
// "validation_failed" with each field in the problem's "errors" member.
type ValidationError struct {
	Fields []FieldError
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("mongohttp: validation failed:")
	for i, f := range e.Fields {
		if i > 0 {
			b.WriteByte(';')
		}
		fmt.Fprintf(&b, " %s %s", f.Pointer, f.Code)
	}
	return b.String()
}

// maxBodyErrors caps the field errors reported for one body.
const maxBodyErrors = 20

// maxBodyNesting bounds the nesting of a body, writable or not, so that
// skipping a refused value never walks an unbounded structure.
const maxBodyNesting = 32

// remove marks, in a decoded merge patch, a field the patch sets to null.
type remove struct{}

// bodyDecoder reads one JSON object into a document of writable fields
// converted to their declared types. Field problems are collected (so the
// client sees them all); syntax problems end the decoding.
type bodyDecoder struct {
	w     writeSchema
	lex   jsonlex.Lexer
	patch bool // null removes a field (RFC 7396)
	errs  []FieldError
	depth int
	// probes counts the key comparisons and look-ups of duplicate
	// detection, so that a test can check they grow linearly.
	probes int
	// at locates the value being read: its JSON pointer is built from it
	// only when a field fails, so that valid bodies build none.
	at []pointerStep
}

// pointerStep is one step of a JSON pointer: an object's key, or an
// array's index when key is "" and index ≥ 0.
type pointerStep struct {
	key   string
	index int
}

// decodeBody decodes a request body. Syntax errors are ErrInvalidBody
// (400) with the byte offset; fields that break the write policy or its
// constraints are a *ValidationError (422), returned with the fields that
// do not.
func (w writeSchema) decodeBody(data []byte, patch bool) (bson.D, error) {
	d := &bodyDecoder{w: w, lex: jsonlex.New(data, w.keys), patch: patch}
	return d.decode()
}

func (d *bodyDecoder) decode() (bson.D, error) {
	tok, err := d.token()
	if err != nil {
		return nil, err
	}
	if tok.Kind != jsonlex.ObjectStart {
		return nil, ErrInvalidBody.Detailf("the body must be a JSON object")
	}
	doc, err := d.object("")
	if err != nil {
		return nil, err
	}
	if err := d.lex.End(); err != nil {
		return nil, ErrInvalidBody.Detailf("the body has data after its JSON object, at byte %d", d.lex.Offset())
	}
	if len(d.errs) > 0 {
		// The valid part is returned too, for checks that add to the
		// errors (conflictsWithScope).
		return doc, &ValidationError{Fields: d.errs}
	}
	return doc, nil
}

// bodySyntaxError turns the lexer's error, its only kind, into the 400 answer.
func bodySyntaxError(err error) error {
	se := err.(*jsonlex.SyntaxError)
	if se.Truncated {
		return ErrInvalidBody.Detailf("the body ends before its JSON object does, at byte %d", se.Offset)
	}
	return ErrInvalidBody.Detailf("the body is not valid JSON: %s at byte %d", se.Error(), se.Offset)
}

// full reports whether the body has as many field errors as are kept.
func (d *bodyDecoder) full() bool { return len(d.errs) >= maxBodyErrors }

// fail records a field error at the value being read.
func (d *bodyDecoder) fail(code, format string, args ...any) {
	if len(d.errs) < maxBodyErrors {
		d.failAt(d.pointer(), code, format, args...)
	}
}

// failAt records a field error at pointer.
func (d *bodyDecoder) failAt(pointer, code, format string, args ...any) {
	if len(d.errs) < maxBodyErrors {
		d.errs = append(d.errs, FieldError{Pointer: pointer, Code: code, Detail: fmt.Sprintf(format, args...)})
	}
}

// pointer is the JSON pointer (RFC 6901) of the value being read.
func (d *bodyDecoder) pointer() string {
	var b strings.Builder
	for _, s := range d.at {
		b.WriteByte('/')
		if s.key == "" && s.index >= 0 {
			b.WriteString(strconv.Itoa(s.index))
		} else {
			b.WriteString(pointerEscape(s.key))
		}
	}
	return b.String()
}

func (d *bodyDecoder) token() (jsonlex.Token, error) {
	tok, err := d.lex.Next()
	if err != nil {
		return jsonlex.Token{}, bodySyntaxError(err)
	}
	return tok, nil
}

// enter counts one level of nesting and refuses too many.
func (d *bodyDecoder) enter() error {
	d.depth++
	if d.depth > maxBodyNesting {
		return ErrInvalidBody.Detailf("the body is nested more than %d levels deep", maxBodyNesting)
	}
	return nil
}

// object reads the members of an object whose '{' was read, at path
// prefix.
func (d *bodyDecoder) object(prefix string) (bson.D, error) {
	if err := d.enter(); err != nil {
		return nil, err
	}
	defer func() { d.depth-- }()
	out := make(bson.D, 0, 8)
	var seenBuf [smallKeySet]string
	seen := keySet{small: seenBuf[:0]}
	var required []requiredChild // the members still to be seen
	if !d.patch {
		required = d.w.required[prefix]
	}
	var presentBuf [8]bool
	present := presentBuf[:0]
	if len(required) > 0 {
		present = append(present, make([]bool, len(required))...)
	}
	for d.lex.More() {
		tok, err := d.token()
		if err != nil {
			return nil, err
		}
		key := tok.Text // the lexer returns object keys as strings
		if !seen.add(key) {
			return nil, ErrInvalidBody.Detailf("the body has key %s twice in one object, before byte %d", clip(key), d.lex.Offset())
		}
		d.probes += seen.probes
		seen.probes = 0
		// The policy bounds required, not the body.
		for i, c := range required {
			if c.key == key {
				present[i] = true
			}
		}
		path := key
		if prefix != "" {
			path = d.path(prefix, key)
		}
		d.at = append(d.at, pointerStep{key: key, index: -1})
		var v any
		switch typ, leaf := d.w.leaves[path]; {
		case key == "" || strings.HasPrefix(key, "$") || strings.ContainsAny(key, ".\x00") || !utf8.ValidString(key):
			d.fail("not_writable", "keys may not be empty, start with \"$\", or contain \".\" or NUL")
			err = d.skip()
		case leaf:
			v, err = d.leaf(path, typ)
		case d.w.objects[path]:
			v, err = d.nested(path)
		default:
			if !d.full() { // the list of names is built only for an error that is kept
				d.fail("not_writable", "field %s may not be written; writable: %s", clip(path), nameList(d.w.names))
			}
			err = d.skip()
		}
		d.at = d.at[:len(d.at)-1]
		if err != nil {
			return nil, err
		}
		if v != nil {
			out = append(out, bson.E{Key: key, Value: v})
		}
	}
	for i, c := range required {
		if !present[i] {
			for _, leaf := range c.leaves {
				d.failAt(d.pointer()+leafPointer(leaf, prefix), "required", "field %s is required", clip(leaf))
			}
		}
	}
	_, err := d.token() // '}'
	return out, err
}

// leafPointer is the JSON pointer of path relative to the object at prefix.
func leafPointer(path, prefix string) string {
	if prefix != "" {
		path = path[len(prefix)+1:]
	}
	var b strings.Builder
	for seg := range strings.SplitSeq(path, ".") {
		b.WriteByte('/')
		b.WriteString(pointerEscape(seg))
	}
	return b.String()
}

// path joins prefix and key, as the schema's own string when it has it.
func (d *bodyDecoder) path(prefix, key string) string {
	var buf [64]byte
	p := append(append(append(buf[:0], prefix...), '.'), key...)
	if s, ok := d.w.paths[string(p)]; ok { // no allocation for the look-up
		return s
	}
	return string(p)
}

// smallKeySet is how many keys of one object keySet compares one by one
// before it moves them into a map: most objects are smaller, and need no
// map, while the cost of a large one stays linear in its keys.
const smallKeySet = 16

// keySet holds the keys of one object, to refuse a key given twice.
type keySet struct {
	small  []string
	large  map[string]struct{}
	probes int // comparisons and look-ups made, for the tests of cost
}

// add adds key and reports whether it was new.
func (s *keySet) add(key string) bool {
	if s.large != nil {
		s.probes++
		if _, dup := s.large[key]; dup {
			return false
		}
		s.large[key] = struct{}{}
		return true
	}
	for _, x := range s.small {
		s.probes++
		if x == key {
			return false
		}
	}
	if len(s.small) < smallKeySet {
		s.small = append(s.small, key)
		return true
	}
	s.large = make(map[string]struct{}, 2*smallKeySet)
	for _, x := range s.small {
		s.large[x] = struct{}{}
	}
	s.large[key] = struct{}{}
	return true
}

// nested reads the value of an object that holds writable fields.
func (d *bodyDecoder) nested(path string) (any, error) {
	tok, err := d.token()
	if err != nil {
		return nil, err
	}
	switch {
	case tok.Kind == jsonlex.ObjectStart:
		return d.object(path)
	case tok.Kind == jsonlex.Null && d.patch:
		return d.removal(path), nil
	}
	d.fail("invalid_type", "field %s takes an object", clip(path))
	return nil, d.skipAfter(tok)
}

// removal is a merge patch's null at path: remove{}, or nil and a field
// error when it would remove a required field.
func (d *bodyDecoder) removal(path string) any {
	if d.w.requiredUnder(path) {
		d.fail("required", "field %s is required: it cannot be removed", clip(path))
		return nil
	}
	return remove{}
}

// leaf reads the value of a writable field and converts it to typ. It
// returns nil (and records a field error) for a value it refuses.
func (d *bodyDecoder) leaf(path string, typ Type) (any, error) {
	tok, err := d.token()
	if err != nil {
		return nil, err
	}
	if tok.Kind == jsonlex.Null && d.patch {
		return d.removal(path), nil
	}
	elem, isArray := typ.elem()
	if !isArray {
		return d.scalar(path, typ, tok)
	}
	if tok.Kind != jsonlex.ArrayStart {
		d.fail("invalid_type", "field %s takes an array of %s", clip(path), elem)
		return nil, d.skipAfter(tok)
	}
	if err := d.enter(); err != nil {
		return nil, err
	}
	defer func() { d.depth-- }()
	arr := bson.A{}
	ok := true
	for i := 0; d.lex.More(); i++ {
		tok, err := d.token()
		if err != nil {
			return nil, err
		}
		d.at = append(d.at, pointerStep{index: i})
		v, err := d.scalar(path, elem, tok)
		d.at = d.at[:len(d.at)-1]
		if err != nil {
			return nil, err
		}
		ok = ok && v != nil
		arr = append(arr, v)
	}
	if _, err := d.token(); err != nil { // ']'
		return nil, err
	}
	if !ok {
		return nil, nil
	}
	return arr, nil
}

// scalar converts one JSON value, whose first token is tok, to typ, and
// checks it against the field's constraints.
func (d *bodyDecoder) scalar(path string, typ Type, tok jsonlex.Token) (any, error) {
	v, err := d.convert(path, typ, tok)
	if v != nil && err == nil && d.w.rules != nil {
		if r := d.w.rules[path]; r != nil {
			r.check(d, path, v)
		}
	}
	return v, err
}

// convert converts one JSON value, whose first token is tok, to typ.
func (d *bodyDecoder) convert(path string, typ Type, tok jsonlex.Token) (any, error) {
	bad := func(code string) (any, error) {
		d.fail(code, "field %s takes %s", clip(path), typ.expects())
		return nil, d.skipAfter(tok)
	}
	if tok.Kind == jsonlex.ObjectStart && (typ == ObjectID || typ == Date) {
		return d.wrapped(path, typ)
	}
	switch tok.Kind {
	case jsonlex.String:
		v := tok.Text
		switch typ {
		case String:
			if strings.IndexByte(v, 0) >= 0 {
				d.fail("invalid_value", "field %s may not contain a NUL byte", clip(path))
				return nil, nil
			}
			return v, nil
		case Date:
			if t, err := parseDate(v); err == nil {
				return t, nil
			}
			return bad("invalid_value")
		case ObjectID:
			if id, err := bson.ObjectIDFromHex(v); err == nil {
				return id, nil
			}
			return bad("invalid_object_id")
		}
	case jsonlex.Number:
		switch typ {
		case Int:
			n, ok := parseIntNumber(tok.Text)
			if !ok {
				return bad("invalid_value")
			}
			if r := d.w.intRange(path); n < r.lo || n > r.hi {
				d.fail("invalid_value", "field %s takes an integer from %d to %d", clip(path), r.lo, r.hi)
				return nil, nil
			}
			if n >= math.MinInt32 && n <= math.MaxInt32 {
				return int32(n), nil
			}
			return n, nil
		case Float:
			// As a filter's number: never one a double rounds to a
			// whole number it is not (see readsAsSent).
			if f, err := strconv.ParseFloat(tok.Text, 64); err == nil && finite(f) && readsAsSent(tok.Text) {
				return f, nil
			}
			return bad("invalid_value")
		}
	case jsonlex.True, jsonlex.False:
		if typ == Bool {
			return tok.Kind == jsonlex.True, nil
		}
	}
	return bad("invalid_type")
}

// parseIntNumber reads a JSON number whose value is exactly an integer
// that fits in an int64: 42, -7, 1e3, 3.0, 9007199254740993.0. It works on
// the decimal text, not through a double, so that 1.5, 1e-400 (which a
// double rounds to 0) and 9007199254740993.5 are not integers, and
// 9007199254740993.0 is not read as …992.
func parseIntNumber(n string) (int64, bool) {
	if i, err := strconv.ParseInt(n, 10, 64); err == nil {
		return i, true
	}
	neg := strings.HasPrefix(n, "-")
	n = strings.TrimPrefix(n, "-")
	mant, exp, hasExp := strings.Cut(n, "e")
	if !hasExp {
		mant, exp, hasExp = strings.Cut(n, "E")
	}
	whole, frac, _ := strings.Cut(mant, ".")
	e := 0
	if hasExp {
		x, err := strconv.Atoi(exp) // "+5", "-400"
		if err != nil {
			// Too many digits for an int: an integer only if every digit
			// is 0, a case not worth a path of its own.
			return 0, false
		}
		e = x
	}
	digits := strings.TrimLeft(whole+frac, "0")
	e -= len(frac)
	if digits == "" {
		return 0, whole+frac != "" && !strings.ContainsFunc(whole+frac, notDigit)
	}
	for strings.HasSuffix(digits, "0") {
		digits, e = digits[:len(digits)-1], e+1
	}
	if e < 0 || len(digits)+e > 19 || strings.ContainsFunc(digits, notDigit) {
		return 0, false
	}
	text := digits + strings.Repeat("0", e)
	if neg {
		text = "-" + text
	}
	i, err := strconv.ParseInt(text, 10, 64)
	return i, err == nil
}

func notDigit(r rune) bool { return r < '0' || r > '9' }

// wrapped reads {"$oid": "…"} or {"$date": …}, whose '{' was read.
func (d *bodyDecoder) wrapped(path string, typ Type) (any, error) {
	if err := d.enter(); err != nil {
		return nil, err
	}
	defer func() { d.depth-- }()
	want := "$oid"
	if typ == Date {
		want = "$date"
	}
	code := "invalid_value"
	if typ == ObjectID {
		code = "invalid_object_id"
	}
	var out any
	n := 0
	for d.lex.More() {
		key, err := d.token()
		if err != nil {
			return nil, err
		}
		n++
		v, err := d.token()
		if err != nil {
			return nil, err
		}
		if key.Text != want || n > 1 {
			out = nil
			if err := d.skipAfter(v); err != nil {
				return nil, err
			}
			continue
		}
		switch v.Kind {
		case jsonlex.String:
			if typ == ObjectID {
				if id, err := bson.ObjectIDFromHex(v.Text); err == nil {
					out = id
				}
			} else if t, err := parseDate(v.Text); err == nil {
				out = t
			}
		case jsonlex.Number:
			if ms, ok := parseIntNumber(v.Text); ok && typ == Date && checkDateRange(bson.DateTime(ms)) == nil {
				out = bson.DateTime(ms)
			}
		default:
			if err := d.skipAfter(v); err != nil {
				return nil, err
			}
		}
	}
	if _, err := d.token(); err != nil { // '}'
		return nil, err
	}
	if out == nil || n != 1 {
		d.fail(code, "field %s takes %s", clip(path), typ.expects())
	}
	return out, nil
}

// skip reads and drops one whole value.
func (d *bodyDecoder) skip() error {
	tok, err := d.token()
	if err != nil {
		return err
	}
	return d.skipAfter(tok)
}

// skipAfter drops the rest of a value whose first token was tok.
func (d *bodyDecoder) skipAfter(tok jsonlex.Token) error {
	if !tok.Opens() {
		return nil
	}
	if err := d.enter(); err != nil {
		return err
	}
	base := d.depth
	for d.depth >= base {
		t, err := d.token()
		if err != nil {
			return err
		}
		switch t.Kind {
		case jsonlex.ObjectStart, jsonlex.ArrayStart:
			if err := d.enter(); err != nil {
				return err
			}
		case jsonlex.ObjectEnd, jsonlex.ArrayEnd:
			d.depth--
		}
	}
	return nil
}

// pointerEscape escapes a key for a JSON pointer (RFC 6901), clipped as
// every echoed input is.
func pointerEscape(key string) string {
	if len(key) > 64 {
		key = key[:64]
		for len(key) > 0 && !utf8.ValidString(key) {
			key = key[:len(key)-1]
		}
	}
	if !strings.ContainsAny(key, "~/") {
		return key // the common case: no copy
	}
	return pointerReplacer.Replace(key)
}

// pointerReplacer is built once: a Replacer is costly to make.
var pointerReplacer = strings.NewReplacer("~", "~0", "/", "~1")
