package bsonjson

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"math"
	"strconv"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Format selects the JSON dialect an Encoder writes.
type Format int

const (
	// FormatPlain writes the plain JSON mapping documented on Encoder: the
	// JSON a browser or any JSON client expects, with no "$oid" or "$date"
	// wrappers. It is the default.
	FormatPlain Format = iota
	// FormatRelaxed writes relaxed Extended JSON v2: readable numbers and
	// dates, wrappers for the other BSON types.
	FormatRelaxed
	// FormatCanonical writes canonical Extended JSON v2, which keeps every
	// BSON type, so that bson.UnmarshalExtJSON gives back the same document.
	FormatCanonical
)

// String returns "plain", "relaxed" or "canonical".
func (f Format) String() string {
	switch f {
	case FormatPlain:
		return "plain"
	case FormatRelaxed:
		return "relaxed"
	case FormatCanonical:
		return "canonical"
	}
	return "Format(" + strconv.Itoa(int(f)) + ")"
}

// DefaultMaxDepth is the nesting limit used when Encoder.MaxDepth is 0.
// MongoDB documents 100 levels of nesting as its limit for stored
// documents, so every document a server returns fits, while the recursion
// (and so the stack) of the encoder stays small for hostile input.
const DefaultMaxDepth = 100

// streamFlushThreshold is the number of buffered bytes past which a
// DocumentWriter writes its buffer out to the underlying writer.
const streamFlushThreshold = 32 << 10

// maxPooledBuffer is the largest buffer kept for reuse: a huge document
// must not pin a huge buffer in the pool for ever.
const maxPooledBuffer = 1 << 20

// ErrMalformedBSON is wrapped by the errors returned for input that is not
// a well-formed BSON document: test with errors.Is.
var ErrMalformedBSON = errors.New("bsonjson: malformed BSON")

// ErrMaxDepth is wrapped by the errors returned for documents nested deeper
// than Encoder.MaxDepth: test with errors.Is.
var ErrMaxDepth = errors.New("bsonjson: BSON nesting too deep")

// ErrWriterClosed is returned by a DocumentWriter used after Close.
var ErrWriterClosed = errors.New("bsonjson: document writer closed")

// Encoder turns BSON documents into JSON. It transcodes the raw bytes
// (bson.Raw, cursor.Current, SingleResult.Raw) directly into a byte slice:
// no maps, no bson.RawValue, and no allocation once the destination buffer
// has grown. Field order is kept exactly as stored, duplicate keys included.
//
// The zero value, and a nil *Encoder, write plain JSON with the defaults
// documented on each field. An Encoder holds configuration only and is safe
// for concurrent use.
//
// # Plain JSON mapping (FormatPlain)
//
//	BSON type            JSON
//	-------------------  ---------------------------------------------------------------
//	double               number, written as encoding/json writes a float64: 1, 1.5,
//	                     1e+21, 1e-7, -0; NaN, +Inf, -Inf as the strings "NaN",
//	                     "Infinity", "-Infinity"
//	string               string
//	document             object, fields in stored order
//	array                array (the index keys are not checked)
//	binary               base64 string (standard alphabet, padded); subtype 4 (UUID)
//	                     of 16 bytes as "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
//	                     subtype 2 as the base64 of its payload
//	undefined            null
//	ObjectID             "5f1d7a2b9c8e4a3b2c1d0e0f" (24 lowercase hex digits)
//	boolean              true, false
//	datetime             "2024-01-01T00:00:00.000Z": RFC 3339, UTC, milliseconds;
//	                     years outside 0000-9999 as JavaScript's toISOString writes
//	                     them: a sign and at least six digits, "+010000-01-01T00:00:00.000Z",
//	                     "-000001-12-31T23:59:59.999Z"
//	null                 null
//	regex                "/pattern/options"
//	DBPointer            {"$ref":"namespace","$id":"hex"} (the shape of a DBRef)
//	JavaScript           string (the code)
//	symbol               string
//	code with scope      {"code":"…","scope":{…}}
//	int32                number
//	timestamp            {"t":seconds,"i":increment}
//	int64                number; with Int64AsString, values outside the safe integers
//	                     of JavaScript, ±(2^53-1), as a string: "9007199254740993"
//	decimal128           string: "1.23", "1.0E+10", "NaN", "Infinity", "-Infinity"
//	MinKey, MaxKey       {"$minKey":1}, {"$maxKey":1}
//
// Strings (keys too) are written as valid UTF-8 JSON: invalid bytes become
// U+FFFD, control characters are escaped (\n, \t, \u0000…), U+2028 and
// U+2029 are escaped as encoding/json does, and with EscapeHTML so are <,
// > and &.
//
// # Extended JSON (FormatRelaxed, FormatCanonical)
//
// Output is Extended JSON v2 as bson.MarshalExtJSON writes it, byte for
// byte, except that a DBPointer namespace is escaped (the driver writes it
// unescaped) and that a non-canonical decimal128 (coefficient above
// 10^34-1) is written as the zero the BSON specification reads it as.
// bson.UnmarshalExtJSON reads canonical output back to the same document
// (NaN payloads aside); relaxed output also gives up the int32/int64
// distinction. Neither dialect can carry strings that are not UTF-8, and
// documents whose keys spell type wrappers ({"$oid": …}) read back as
// those types: limits of Extended JSON itself.
//
// # Typed values
//
// AppendValue and DocumentWriter.WriteValue marshal a Go value to BSON with
// the driver's default registry and then transcode it, so a struct is
// written exactly as the document it came from would be: the same keys, in
// struct field order, and the same value formats (bson.ObjectID as hex,
// time.Time as the millisecond UTC date above). Because the value goes
// through the BSON marshaller, bson struct tags name the fields, as they do
// when the driver decodes the document (`bson:"name"`, `bson:",omitempty"`,
// `bson:",inline"`, `bson:"-"`); json tags are ignored, and a field without
// a bson tag is named by its Go name in lower case (CreatedAt → createdat).
// A time.Time keeps only milliseconds, as it does in MongoDB.
//
// # Errors
//
// Malformed input never panics: the Append methods return an error wrapping
// ErrMalformedBSON, or ErrMaxDepth for nesting beyond MaxDepth. On error dst
// may hold partial output: keep len(dst) before the call and truncate back
// to it (DocumentWriter does this for you).
type Encoder struct {
	// Format selects the JSON dialect. Default is FormatPlain, which is
	// also used for values other than the three Format constants.
	Format Format

	// Int64AsString writes int64 values outside ±(2^53-1), which a
	// JavaScript number cannot hold exactly, as JSON strings in FormatPlain.
	// In FormatRelaxed such values are written {"$numberLong":"…"} instead,
	// which still reads back as the same int64. Int32 and double values are
	// never affected. Default is false.
	Int64AsString bool

	// EscapeHTML escapes <, > and & in strings as \u003c, \u003e and
	// \u0026, for JSON embedded in HTML. Default is false.
	EscapeHTML bool

	// MaxDepth is the deepest nesting accepted, counting the top-level
	// document as 1 and each embedded document, array or code-with-scope
	// scope as one more. Default (0 or less) is DefaultMaxDepth, 100.
	MaxDepth int
}

// AppendDocument transcodes the BSON document doc to JSON, appending it to
// dst, and returns the extended buffer. doc must be exactly one document
// (trailing bytes are an error). On error dst may hold partial output:
// truncate it back to its length before the call.
func (e *Encoder) AppendDocument(dst []byte, doc []byte) ([]byte, error) {
	t := e.transcoder(doc)
	dst, end, err := t.document(dst, 0, len(doc), 1, false)
	if err != nil {
		return dst, err
	}
	if end != len(doc) {
		return dst, malformed(end, "trailing bytes after the document")
	}
	return dst, nil
}

// AppendValue appends the JSON for v: a struct, map, bson.D, slice or any
// value the driver's BSON marshaller accepts, encoded so that the result is
// identical to transcoding the same data stored as BSON (see "Typed values"
// on Encoder). A bson.Raw is transcoded directly, and so is a bson.RawValue.
// Errors from the marshaller are returned as they are; on error dst may hold
// partial output.
func (e *Encoder) AppendValue(dst []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		// The driver has no encoder for an untyped nil.
		return append(dst, "null"...), nil
	case bson.Raw:
		return e.AppendDocument(dst, v)
	case bson.RawValue:
		t := e.transcoder(v.Value)
		dst, end, err := t.value(dst, v.Type, 0, len(v.Value), 0)
		if err == nil && end != len(v.Value) {
			err = malformed(end, "trailing bytes after the value")
		}
		return dst, err
	}

	vs := valueStatePool.Get().(*valueState)
	if err := vs.marshal(v); err != nil {
		// The driver's writer may be left mid-document: drop it.
		return dst, err
	}
	// vs.sink.b is {int32 length, type, "" key NUL, value, NUL}.
	b := vs.sink.b
	t := e.transcoder(b)
	dst, _, err := t.value(dst, bson.Type(b[4]), 6, len(b)-1, 0)
	if cap(vs.sink.b) <= maxPooledBuffer {
		valueStatePool.Put(vs)
	}
	return dst, err
}

// valueState holds the driver objects that marshal typed values, reused
// through valueStatePool so that a typed value costs only what the driver's
// codecs allocate.
type valueState struct {
	sink sliceWriter
	vw   bson.ValueWriter
	enc  *bson.Encoder
}

var valueStatePool = sync.Pool{New: func() any {
	vs := new(valueState)
	vs.vw = bson.NewDocumentWriter(&vs.sink)
	vs.enc = bson.NewEncoder(vs.vw)
	return vs
}}

// marshal writes v as the single element of a document with an empty key.
// Wrapping makes any value work (a slice, a string, nil), not only those
// that marshal to a document, and costs three bytes.
func (vs *valueState) marshal(v any) error {
	vs.sink.b = vs.sink.b[:0]
	dw, err := vs.vw.WriteDocument()
	if err != nil {
		return err
	}
	ew, err := dw.WriteDocumentElement("")
	if err != nil {
		return err
	}
	vs.enc.Reset(ew)
	if err := vs.enc.Encode(v); err != nil {
		return err
	}
	if err := dw.WriteDocumentEnd(); err != nil {
		return err
	}
	if len(vs.sink.b) < 7 {
		return malformed(0, "marshaller wrote no value")
	}
	return nil
}

// sliceWriter is an io.Writer that appends to a byte slice.
type sliceWriter struct{ b []byte }

func (s *sliceWriter) Write(p []byte) (int, error) {
	s.b = append(s.b, p...)
	return len(p), nil
}

// bsonError reports malformed input and where it was found.
type bsonError struct {
	off int
	msg string
	err error // ErrMalformedBSON or ErrMaxDepth
}

func (e *bsonError) Error() string {
	return e.err.Error() + ": " + e.msg + " at byte " + strconv.Itoa(e.off)
}

func (e *bsonError) Unwrap() error { return e.err }

func malformed(off int, msg string) error {
	return &bsonError{off: off, msg: msg, err: ErrMalformedBSON}
}

// transcoder is the state of one transcoding: the options, flattened, and
// the source bytes, which are read by index so errors can name offsets.
type transcoder struct {
	src      []byte
	format   Format
	int64Str bool
	html     bool
	maxDepth int
}

func (e *Encoder) transcoder(src []byte) transcoder {
	t := transcoder{src: src, maxDepth: DefaultMaxDepth}
	if e != nil {
		if e.Format == FormatRelaxed || e.Format == FormatCanonical {
			t.format = e.Format
		}
		t.int64Str = e.Int64AsString
		t.html = e.EscapeHTML
		if e.MaxDepth > 0 {
			t.maxDepth = e.MaxDepth
		}
	}
	return t
}

// length reads the little-endian int32 at src[pos:] as an int, or returns
// -1 when fewer than four bytes remain before end.
func (t *transcoder) length(pos, end int) int {
	if end-pos < 4 {
		return -1
	}
	return int(int32(binary.LittleEndian.Uint32(t.src[pos:])))
}

// document transcodes the document or array starting at pos, which must
// end by end, and returns the position after it.
func (t *transcoder) document(dst []byte, pos, end, depth int, array bool) ([]byte, int, error) {
	if depth > t.maxDepth {
		return dst, pos, &bsonError{off: pos, msg: "nesting deeper than " + strconv.Itoa(t.maxDepth) + " levels", err: ErrMaxDepth}
	}
	n := t.length(pos, end)
	if n < 5 || n > end-pos {
		return dst, pos, malformed(pos, "invalid document length")
	}
	last := pos + n - 1 // the terminating NUL
	if t.src[last] != 0 {
		return dst, pos, malformed(last, "document not terminated by NUL")
	}
	open, shut := byte('{'), byte('}')
	if array {
		open, shut = '[', ']'
	}
	dst = append(dst, open)
	i := pos + 4
	safe := t.safeBytes()
	for first := true; i < last; first = false {
		typ := bson.Type(t.src[i])
		// Keys are mostly short and plain: scan for the NUL over bytes
		// that need no escaping, and search and escape in full only when
		// the scan stops on anything else.
		j := i + 1
		for j < last && safe[t.src[j]] {
			j++
		}
		plainKey := j < last && t.src[j] == 0
		if !plainKey {
			k := bytes.IndexByte(t.src[j:last], 0)
			if k < 0 {
				return dst, i, malformed(i, "unterminated key")
			}
			j += k
		}
		if !first {
			dst = append(dst, ',')
		}
		switch {
		case array:
		case plainKey:
			dst = append(dst, '"')
			dst = append(dst, t.src[i+1:j]...)
			dst = append(dst, '"', ':')
		default:
			dst = t.appendString(dst, t.src[i+1:j])
			dst = append(dst, ':')
		}
		var err error
		dst, i, err = t.value(dst, typ, j+1, last, depth)
		if err != nil {
			return dst, i, err
		}
	}
	return append(dst, shut), last + 1, nil
}

// str reads a BSON string (int32 length including the NUL, bytes, NUL) at
// pos and returns its bytes and the position after it.
func (t *transcoder) str(pos, end int) ([]byte, int, error) {
	n := t.length(pos, end)
	if n < 1 || n > end-pos-4 {
		return nil, pos, malformed(pos, "invalid string length")
	}
	stop := pos + 4 + n - 1
	if t.src[stop] != 0 {
		return nil, pos, malformed(stop, "string not terminated by NUL")
	}
	return t.src[pos+4 : stop], stop + 1, nil
}

// cstr reads a NUL-terminated string at pos.
func (t *transcoder) cstr(pos, end int) ([]byte, int, error) {
	k := bytes.IndexByte(t.src[pos:end], 0)
	if k < 0 {
		return nil, pos, malformed(pos, "unterminated C string")
	}
	return t.src[pos : pos+k], pos + k + 1, nil
}

// fixed checks that n bytes are available at pos.
func (t *transcoder) fixed(pos, end, n int) error {
	if end-pos < n {
		return malformed(pos, "value truncated")
	}
	return nil
}

// value transcodes one value of BSON type typ starting at pos and returns
// the position after it. depth is that of the enclosing document.
func (t *transcoder) value(dst []byte, typ bson.Type, pos, end, depth int) ([]byte, int, error) {
	src := t.src
	plain := t.format == FormatPlain
	canonical := t.format == FormatCanonical
	switch typ {
	case bson.TypeDouble:
		if err := t.fixed(pos, end, 8); err != nil {
			return dst, pos, err
		}
		f := math.Float64frombits(binary.LittleEndian.Uint64(src[pos:]))
		switch {
		case plain:
			dst = appendPlainFloat(dst, f)
		case canonical || math.IsNaN(f) || math.IsInf(f, 0):
			dst = append(dst, `{"$numberDouble":"`...)
			dst = appendExtFloat(dst, f)
			dst = append(dst, `"}`...)
		default:
			dst = appendExtFloat(dst, f)
		}
		return dst, pos + 8, nil

	case bson.TypeString, bson.TypeJavaScript, bson.TypeSymbol:
		s, next, err := t.str(pos, end)
		if err != nil {
			return dst, pos, err
		}
		if !plain {
			switch typ {
			case bson.TypeJavaScript:
				dst = append(dst, `{"$code":`...)
			case bson.TypeSymbol:
				dst = append(dst, `{"$symbol":`...)
			}
		}
		dst = t.appendString(dst, s)
		if !plain && typ != bson.TypeString {
			dst = append(dst, '}')
		}
		return dst, next, nil

	case bson.TypeEmbeddedDocument, bson.TypeArray:
		return t.document(dst, pos, end, depth+1, typ == bson.TypeArray)

	case bson.TypeBinary:
		n := t.length(pos, end)
		if n < 0 || n > end-pos-5 {
			return dst, pos, malformed(pos, "invalid binary length")
		}
		sub := src[pos+4]
		data := src[pos+5 : pos+5+n]
		if sub == bson.TypeBinaryBinaryOld {
			// The old binary subtype repeats the length inside the payload.
			if n < 4 || int(int32(binary.LittleEndian.Uint32(data))) != n-4 {
				return dst, pos, malformed(pos, "invalid binary subtype 2 length")
			}
			data = data[4:]
		}
		if plain {
			if sub == bson.TypeBinaryUUID && len(data) == 16 {
				dst = appendUUID(dst, data)
			} else {
				dst = append(dst, '"')
				dst = base64.StdEncoding.AppendEncode(dst, data)
				dst = append(dst, '"')
			}
		} else {
			dst = append(dst, `{"$binary":{"base64":"`...)
			dst = base64.StdEncoding.AppendEncode(dst, data)
			dst = append(dst, `","subType":"`...)
			dst = append(dst, hexDigits[sub>>4], hexDigits[sub&0xF])
			dst = append(dst, `"}}`...)
		}
		return dst, pos + 5 + n, nil

	case bson.TypeUndefined:
		if plain {
			return append(dst, "null"...), pos, nil
		}
		return append(dst, `{"$undefined":true}`...), pos, nil

	case bson.TypeObjectID:
		if err := t.fixed(pos, end, 12); err != nil {
			return dst, pos, err
		}
		if plain {
			dst = appendHexString(dst, src[pos:pos+12])
		} else {
			dst = append(dst, `{"$oid":`...)
			dst = appendHexString(dst, src[pos:pos+12])
			dst = append(dst, '}')
		}
		return dst, pos + 12, nil

	case bson.TypeBoolean:
		if err := t.fixed(pos, end, 1); err != nil {
			return dst, pos, err
		}
		switch src[pos] {
		case 0:
			dst = append(dst, "false"...)
		case 1:
			dst = append(dst, "true"...)
		default:
			return dst, pos, malformed(pos, "invalid boolean")
		}
		return dst, pos + 1, nil

	case bson.TypeDateTime:
		if err := t.fixed(pos, end, 8); err != nil {
			return dst, pos, err
		}
		ms := int64(binary.LittleEndian.Uint64(src[pos:]))
		switch {
		case plain:
			dst = append(dst, '"')
			dst = appendISODate(dst, ms, false)
			dst = append(dst, '"')
		case !canonical && ms >= minRelaxedDate && ms <= maxRelaxedDate:
			dst = append(dst, `{"$date":"`...)
			dst = appendISODate(dst, ms, true)
			dst = append(dst, `"}`...)
		default:
			dst = append(dst, `{"$date":{"$numberLong":"`...)
			dst = strconv.AppendInt(dst, ms, 10)
			dst = append(dst, `"}}`...)
		}
		return dst, pos + 8, nil

	case bson.TypeNull:
		return append(dst, "null"...), pos, nil

	case bson.TypeRegex:
		pattern, next, err := t.cstr(pos, end)
		if err != nil {
			return dst, pos, err
		}
		options, next, err := t.cstr(next, end)
		if err != nil {
			return dst, pos, err
		}
		if plain {
			dst = append(dst, `"/`...)
			dst = t.appendEscaped(dst, pattern)
			dst = append(dst, '/')
			dst = t.appendEscaped(dst, options)
			dst = append(dst, '"')
		} else {
			dst = append(dst, `{"$regularExpression":{"pattern":`...)
			dst = t.appendString(dst, pattern)
			dst = append(dst, `,"options":`...)
			dst = t.appendSortedOptions(dst, options)
			dst = append(dst, `}}`...)
		}
		return dst, next, nil

	case bson.TypeDBPointer:
		ns, next, err := t.str(pos, end)
		if err != nil {
			return dst, pos, err
		}
		if err := t.fixed(next, end, 12); err != nil {
			return dst, pos, err
		}
		if plain {
			dst = append(dst, `{"$ref":`...)
			dst = t.appendString(dst, ns)
			dst = append(dst, `,"$id":`...)
			dst = appendHexString(dst, src[next:next+12])
			dst = append(dst, '}')
		} else {
			dst = append(dst, `{"$dbPointer":{"$ref":`...)
			dst = t.appendString(dst, ns)
			dst = append(dst, `,"$id":{"$oid":`...)
			dst = appendHexString(dst, src[next:next+12])
			dst = append(dst, `}}}`...)
		}
		return dst, next + 12, nil

	case bson.TypeCodeWithScope: // int32 total, string, document
		n := t.length(pos, end)
		if n < 14 || n > end-pos {
			return dst, pos, malformed(pos, "invalid code with scope length")
		}
		stop := pos + n
		code, next, err := t.str(pos+4, stop)
		if err != nil {
			return dst, pos, err
		}
		if plain {
			dst = append(dst, `{"code":`...)
		} else {
			dst = append(dst, `{"$code":`...)
		}
		dst = t.appendString(dst, code)
		if plain {
			dst = append(dst, `,"scope":`...)
		} else {
			dst = append(dst, `,"$scope":`...)
		}
		dst, next, err = t.document(dst, next, stop, depth+1, false)
		if err != nil {
			return dst, next, err
		}
		if next != stop {
			return dst, next, malformed(next, "code with scope length mismatch")
		}
		return append(dst, '}'), stop, nil

	case bson.TypeInt32:
		if err := t.fixed(pos, end, 4); err != nil {
			return dst, pos, err
		}
		v := int64(int32(binary.LittleEndian.Uint32(src[pos:])))
		if canonical {
			dst = append(dst, `{"$numberInt":"`...)
			dst = strconv.AppendInt(dst, v, 10)
			dst = append(dst, `"}`...)
		} else {
			dst = strconv.AppendInt(dst, v, 10)
		}
		return dst, pos + 4, nil

	case bson.TypeTimestamp: // increment in the low half, seconds in the high half
		if err := t.fixed(pos, end, 8); err != nil {
			return dst, pos, err
		}
		inc := uint64(binary.LittleEndian.Uint32(src[pos:]))
		sec := uint64(binary.LittleEndian.Uint32(src[pos+4:]))
		if plain {
			dst = append(dst, `{"t":`...)
		} else {
			dst = append(dst, `{"$timestamp":{"t":`...)
		}
		dst = strconv.AppendUint(dst, sec, 10)
		dst = append(dst, `,"i":`...)
		dst = strconv.AppendUint(dst, inc, 10)
		dst = append(dst, '}')
		if !plain {
			dst = append(dst, '}')
		}
		return dst, pos + 8, nil

	case bson.TypeInt64:
		if err := t.fixed(pos, end, 8); err != nil {
			return dst, pos, err
		}
		v := int64(binary.LittleEndian.Uint64(src[pos:]))
		unsafeInt := v > MaxSafeInteger || v < -MaxSafeInteger
		switch {
		case canonical || (t.int64Str && unsafeInt && !plain):
			dst = append(dst, `{"$numberLong":"`...)
			dst = strconv.AppendInt(dst, v, 10)
			dst = append(dst, `"}`...)
		case t.int64Str && unsafeInt:
			dst = append(dst, '"')
			dst = strconv.AppendInt(dst, v, 10)
			dst = append(dst, '"')
		default:
			dst = strconv.AppendInt(dst, v, 10)
		}
		return dst, pos + 8, nil

	case bson.TypeDecimal128: // low 64 bits first
		if err := t.fixed(pos, end, 16); err != nil {
			return dst, pos, err
		}
		lo := binary.LittleEndian.Uint64(src[pos:])
		hi := binary.LittleEndian.Uint64(src[pos+8:])
		if plain {
			dst = append(dst, '"')
		} else {
			dst = append(dst, `{"$numberDecimal":"`...)
		}
		dst = appendDecimal128(dst, hi, lo)
		dst = append(dst, '"')
		if !plain {
			dst = append(dst, '}')
		}
		return dst, pos + 16, nil

	case bson.TypeMinKey:
		return append(dst, `{"$minKey":1}`...), pos, nil
	case bson.TypeMaxKey:
		return append(dst, `{"$maxKey":1}`...), pos, nil
	}
	return dst, pos, malformed(pos-1, "unknown BSON type 0x"+string([]byte{hexDigits[typ>>4], hexDigits[typ&0xF]}))
}
