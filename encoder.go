package mongohttp

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"math/bits"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"unicode/utf8"

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
var ErrMalformedBSON = errors.New("mongohttp: malformed BSON")

// ErrMaxDepth is wrapped by the errors returned for documents nested deeper
// than Encoder.MaxDepth: test with errors.Is.
var ErrMaxDepth = errors.New("mongohttp: BSON nesting too deep")

// ErrWriterClosed is returned by a DocumentWriter used after Close.
var ErrWriterClosed = errors.New("mongohttp: document writer closed")

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
		dst, end, err := t.value(dst, byte(v.Type), 0, len(v.Value), 0)
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
	dst, _, err := t.value(dst, b[4], 6, len(b)-1, 0)
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
		typ := t.src[i]
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
func (t *transcoder) value(dst []byte, typ byte, pos, end, depth int) ([]byte, int, error) {
	src := t.src
	plain := t.format == FormatPlain
	canonical := t.format == FormatCanonical
	switch typ {
	case 0x01: // double
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

	case 0x02, 0x0D, 0x0E: // string, JavaScript, symbol
		s, next, err := t.str(pos, end)
		if err != nil {
			return dst, pos, err
		}
		if !plain {
			switch typ {
			case 0x0D:
				dst = append(dst, `{"$code":`...)
			case 0x0E:
				dst = append(dst, `{"$symbol":`...)
			}
		}
		dst = t.appendString(dst, s)
		if !plain && typ != 0x02 {
			dst = append(dst, '}')
		}
		return dst, next, nil

	case 0x03, 0x04: // document, array
		return t.document(dst, pos, end, depth+1, typ == 0x04)

	case 0x05: // binary
		n := t.length(pos, end)
		if n < 0 || n > end-pos-5 {
			return dst, pos, malformed(pos, "invalid binary length")
		}
		sub := src[pos+4]
		data := src[pos+5 : pos+5+n]
		if sub == 0x02 {
			// The old binary subtype repeats the length inside the payload.
			if n < 4 || int(int32(binary.LittleEndian.Uint32(data))) != n-4 {
				return dst, pos, malformed(pos, "invalid binary subtype 2 length")
			}
			data = data[4:]
		}
		if plain {
			if sub == 0x04 && len(data) == 16 {
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

	case 0x06: // undefined
		if plain {
			return append(dst, "null"...), pos, nil
		}
		return append(dst, `{"$undefined":true}`...), pos, nil

	case 0x07: // ObjectID
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

	case 0x08: // boolean
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

	case 0x09: // datetime
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

	case 0x0A: // null
		return append(dst, "null"...), pos, nil

	case 0x0B: // regex
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

	case 0x0C: // DBPointer
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

	case 0x0F: // code with scope: int32 total, string, document
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

	case 0x10: // int32
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

	case 0x11: // timestamp: increment in the low half, seconds in the high half
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

	case 0x12: // int64
		if err := t.fixed(pos, end, 8); err != nil {
			return dst, pos, err
		}
		v := int64(binary.LittleEndian.Uint64(src[pos:]))
		unsafeInt := v > maxSafeInteger || v < -maxSafeInteger
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

	case 0x13: // decimal128: low 64 bits first
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

	case 0xFF:
		return append(dst, `{"$minKey":1}`...), pos, nil
	case 0x7F:
		return append(dst, `{"$maxKey":1}`...), pos, nil
	}
	return dst, pos, malformed(pos-1, "unknown BSON type 0x"+string([]byte{hexDigits[typ>>4], hexDigits[typ&0xF]}))
}

// maxSafeInteger is JavaScript's Number.MAX_SAFE_INTEGER: beyond it a
// double no longer holds every integer.
const maxSafeInteger = 1<<53 - 1

// Relaxed Extended JSON writes ISO dates only for years 1970 to 9999.
const (
	minRelaxedDate = 0
	maxRelaxedDate = 253402300799999 // 9999-12-31T23:59:59.999Z
)

const hexDigits = "0123456789abcdef"

// appendHexString appends b as a quoted lowercase hex string.
func appendHexString(dst, b []byte) []byte {
	dst = append(dst, '"')
	for _, c := range b {
		dst = append(dst, hexDigits[c>>4], hexDigits[c&0xF])
	}
	return append(dst, '"')
}

// appendUUID appends the 16 bytes of b as a quoted canonical UUID.
func appendUUID(dst, b []byte) []byte {
	dst = append(dst, '"')
	for i, c := range b[:16] {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst = append(dst, '-')
		}
		dst = append(dst, hexDigits[c>>4], hexDigits[c&0xF])
	}
	return append(dst, '"')
}

// appendPlainFloat writes f as encoding/json writes a float64, and the
// non-finite values as strings.
func appendPlainFloat(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(dst, `"Infinity"`...)
	case math.IsInf(f, -1):
		return append(dst, `"-Infinity"`...)
	}
	abs := math.Abs(f)
	if abs < 1<<53 && f == math.Trunc(f) && (f != 0 || !math.Signbit(f)) {
		// Below 2^53 an integral double's shortest form is the integer.
		return strconv.AppendInt(dst, int64(f), 10)
	}
	if abs >= 1e-6 {
		if out, ok := appendShortDecimal(dst, f); ok {
			return out
		}
	}
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// Shorten e-09 to e-9, as encoding/json does.
		n := len(dst)
		if n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

// appendExtFloat writes f as the driver's Extended JSON writer does: the
// shortest 'G' form, with ".0" added to integral values so that they read
// back as doubles.
func appendExtFloat(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, "NaN"...)
	case math.IsInf(f, 1):
		return append(dst, "Infinity"...)
	case math.IsInf(f, -1):
		return append(dst, "-Infinity"...)
	}
	if math.Abs(f) < 1e6 && f == math.Trunc(f) && (f != 0 || !math.Signbit(f)) {
		// 'G' writes integers below 10^6 without exponent.
		dst = strconv.AppendInt(dst, int64(f), 10)
		return append(dst, ".0"...)
	}
	if abs := math.Abs(f); abs >= 1e-4 && abs < 1e6 {
		// 'G' writes these as 'f' does.
		if out, ok := appendShortDecimal(dst, f); ok {
			return out
		}
	}
	start := len(dst)
	dst = strconv.AppendFloat(dst, f, 'G', -1, 64)
	if !bytes.ContainsAny(dst[start:], "E.") {
		dst = append(dst, ".0"...)
	}
	return dst
}

// pow10 holds the powers of ten that appendShortDecimal tries, as float64
// (exact up to 10^22) and as uint64.
var (
	pow10f = [...]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8}
	pow10u = [...]uint64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8}
)

// appendShortDecimal writes a non-integral f with one to eight decimals
// exactly as strconv's shortest 'f' form would, several times faster:
// prices, coordinates and measures are mostly such numbers. It reports
// false, writing nothing, for any other f.
//
// For the smallest k whose n = round(|f|·10^k) gives back f as n/10^k
// (one correctly rounded division of two exact values), n·10^-k is a
// decimal that reads back as f, with as few digits as any can have. As
// n < 2^50, the spacing of doubles near f is below 10^-k/4, so no other
// multiple of 10^-k reads back as f: it is the one strconv picks.
func appendShortDecimal(dst []byte, f float64) ([]byte, bool) {
	abs := math.Abs(f)
	for k := 1; k < len(pow10f); k++ {
		x := abs * pow10f[k]
		if x >= 1<<50 {
			return dst, false
		}
		n := uint64(x + 0.5)
		if n == 0 || float64(n)/pow10f[k] != abs {
			continue
		}
		if n%10 == 0 {
			return dst, false // integral: callers write those themselves
		}
		if f < 0 {
			dst = append(dst, '-')
		}
		dst = strconv.AppendUint(dst, n/pow10u[k], 10)
		dst = append(dst, '.')
		frac := n % pow10u[k]
		for p := pow10u[k] / 10; p > 0; p /= 10 {
			dst = append(dst, byte('0'+frac/p%10))
		}
		return dst, true
	}
	return dst, false
}

const msPerDay = 24 * 60 * 60 * 1000

// appendISODate writes the UTC date and time of ms milliseconds since the
// Unix epoch as 2006-01-02T15:04:05.000Z, with an expanded year (a sign and
// at least six digits) outside 0000-9999. With trim, trailing zeros of the
// milliseconds are dropped, and the fraction with them when it is zero, as
// the driver writes relaxed Extended JSON dates.
func appendISODate(dst []byte, ms int64, trim bool) []byte {
	days, rem := ms/msPerDay, ms%msPerDay
	if rem < 0 {
		rem += msPerDay
		days--
	}
	year, month, day := civilFromDays(days)
	if year >= 0 && year <= 9999 {
		dst = append2(dst, int(year/100))
		dst = append2(dst, int(year%100))
	} else {
		abs := year
		if year < 0 {
			dst = append(dst, '-')
			abs = -year
		} else {
			dst = append(dst, '+')
		}
		var tmp [20]byte
		digits := strconv.AppendInt(tmp[:0], abs, 10)
		for i := len(digits); i < 6; i++ {
			dst = append(dst, '0')
		}
		dst = append(dst, digits...)
	}
	r := int(rem)
	milli := r % 1000
	dst = append(dst, '-')
	dst = append2(dst, month)
	dst = append(dst, '-')
	dst = append2(dst, day)
	dst = append(dst, 'T')
	dst = append2(dst, r/3600000)
	dst = append(dst, ':')
	dst = append2(dst, r/60000%60)
	dst = append(dst, ':')
	dst = append2(dst, r/1000%60)
	if !trim || milli != 0 {
		dst = append(dst, '.', byte('0'+milli/100), byte('0'+milli/10%10), byte('0'+milli%10))
		if trim {
			for dst[len(dst)-1] == '0' {
				dst = dst[:len(dst)-1]
			}
		}
	}
	return append(dst, 'Z')
}

// append2 appends v, 0 ≤ v < 100, as two digits.
func append2(dst []byte, v int) []byte {
	return append(dst, byte('0'+v/10), byte('0'+v%10))
}

// civilFromDays converts days since 1970-01-01 to a proleptic Gregorian
// date (Howard Hinnant's algorithm), for every day an int64 of
// milliseconds can reach.
func civilFromDays(z int64) (year int64, month, day int) {
	z += 719468
	era := z
	if era < 0 {
		era -= 146096
	}
	era /= 146097
	doe := z - era*146097                                  // [0, 146096]
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365 // [0, 399]
	doy := doe - (365*yoe + yoe/4 - yoe/100)               // [0, 365]
	mp := (5*doy + 2) / 153                                // [0, 11], March first
	day = int(doy - (153*mp+2)/5 + 1)
	month = int(mp + 3)
	if month > 12 {
		month -= 12
	}
	year = yoe + era*400
	if month <= 2 {
		year++
	}
	return year, month, day
}

// Decimal128 coefficients above 10^34-1 are non-canonical and, per the
// BSON decimal128 specification, read as zero.
const (
	maxCoefficientHi = 0x0001ed09bead87c0
	maxCoefficientLo = 0x378d8e63ffffffff
)

// appendDecimal128 writes the decimal128 value with the high and low 64
// bits hi and lo as the specification's to-string algorithm does
// ("1.23", "1.0E+10", "-0", "NaN", "-Infinity"), without allocating.
func appendDecimal128(dst []byte, hi, lo uint64) []byte {
	neg := hi>>63 == 1
	switch hi >> 58 & 0x1F {
	case 0x1F:
		return append(dst, "NaN"...)
	case 0x1E:
		if neg {
			return append(dst, "-Infinity"...)
		}
		return append(dst, "Infinity"...)
	}
	var exp int
	var ch, cl uint64
	if hi>>61&3 == 3 {
		// The coefficient would be at least 2^113: out of range, so zero.
		exp = int(hi >> 47 & 0x3FFF)
	} else {
		exp = int(hi >> 49 & 0x3FFF)
		ch, cl = hi&(1<<49-1), lo
		if ch > maxCoefficientHi || ch == maxCoefficientHi && cl > maxCoefficientLo {
			ch, cl = 0, 0
		}
	}
	exp -= 6176

	// The coefficient's digits, 19 at a time from the right.
	var buf [40]byte
	i := len(buf)
	for {
		var chunk uint64
		ch, chunk = ch/1e19, ch%1e19
		cl, chunk = bits.Div64(chunk, cl, 1e19)
		for j := 0; j < 19; j++ {
			i--
			buf[i] = byte('0' + chunk%10)
			chunk /= 10
		}
		if ch == 0 && cl == 0 {
			break
		}
	}
	for i < len(buf)-1 && buf[i] == '0' {
		i++
	}
	digits := buf[i:]
	n := len(digits)

	if neg {
		dst = append(dst, '-')
	}
	adjusted := exp + n - 1
	switch {
	case exp > 0 || adjusted < -6:
		dst = append(dst, digits[0])
		if n > 1 {
			dst = append(dst, '.')
			dst = append(dst, digits[1:]...)
		}
		dst = append(dst, 'E')
		if adjusted >= 0 {
			dst = append(dst, '+')
		}
		dst = strconv.AppendInt(dst, int64(adjusted), 10)
	case exp == 0:
		dst = append(dst, digits...)
	default:
		point := n + exp
		if point > 0 {
			dst = append(dst, digits[:point]...)
			dst = append(dst, '.')
			dst = append(dst, digits[point:]...)
		} else {
			dst = append(dst, "0."...)
			for ; point < 0; point++ {
				dst = append(dst, '0')
			}
			dst = append(dst, digits...)
		}
	}
	return dst
}

// appendString appends s as a quoted JSON string.
func (t *transcoder) appendString(dst, s []byte) []byte {
	dst = append(dst, '"')
	dst = t.appendEscaped(dst, s)
	return append(dst, '"')
}

// Bit tricks to test eight bytes at once (see "Bit Twiddling Hacks").
const (
	lsbs = 0x0101010101010101
	msbs = 0x8080808080808080
)

// special returns, for the eight bytes of w, a mask with the high bit of
// the lowest byte that is not copied as it is into a JSON string set: a
// control character, '"', '\\' or a non-ASCII byte (checked as UTF-8).
// Higher bits may be set falsely by borrows, never lower ones, and the
// usual "& ^x" terms are left out because every byte they exclude has its
// high bit set and so is caught by the "| w" term anyway.
func special(w uint64) uint64 {
	return ((w - lsbs*0x20) | ((w ^ lsbs*'"') - lsbs) | ((w ^ lsbs*'\\') - lsbs) | w) & msbs
}

// specialHTML is special that also catches '<', '>' and '&'.
func specialHTML(w uint64) uint64 {
	return special(w) | (((w^lsbs*'<')-lsbs)|((w^lsbs*'>')-lsbs)|((w^lsbs*'&')-lsbs))&msbs
}

// safeASCII[b] is true for the bytes written unescaped: ASCII but for
// control characters, '"' and '\\'. htmlSafeASCII also excludes <, > and
// &. Bytes from 0x80 up are false: they are checked as UTF-8.
var safeASCII, htmlSafeASCII = func() (safe, html [256]bool) {
	for b := 0x20; b < utf8.RuneSelf; b++ {
		safe[b] = b != '"' && b != '\\'
		html[b] = safe[b] && b != '<' && b != '>' && b != '&'
	}
	return safe, html
}()

// safeBytes returns the table of bytes copied unescaped.
func (t *transcoder) safeBytes() *[256]bool {
	if t.html {
		return &htmlSafeASCII
	}
	return &safeASCII
}

// appendEscaped appends the contents of a JSON string holding s: valid
// UTF-8, with invalid bytes replaced by U+FFFD and the same escapes as
// encoding/json.
func (t *transcoder) appendEscaped(dst, s []byte) []byte {
	safe := t.safeBytes()
	start, i := 0, 0
	for i < len(s) {
		// Skip eight plain bytes at a time, then land on the first byte
		// that is not.
		for i+8 <= len(s) {
			w := binary.LittleEndian.Uint64(s[i:])
			m := special(w)
			if t.html {
				m = specialHTML(w)
			}
			if m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				break
			}
			i += 8
		}
		if i >= len(s) {
			break
		}
		b := s[i]
		if safe[b] {
			i++
			continue
		}
		if b < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		// U+2028 and U+2029 are valid JSON but end lines in JavaScript.
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(dst, s[start:]...)
}

// appendSortedOptions writes regular expression options in alphabetical
// order, as Extended JSON requires.
func (t *transcoder) appendSortedOptions(dst, options []byte) []byte {
	var small [16]byte
	if len(options) <= len(small) {
		sorted := small[:len(options)]
		copy(sorted, options)
		ascii := true
		for _, c := range sorted {
			ascii = ascii && c < utf8.RuneSelf
		}
		if ascii {
			// Insertion sort: options are a handful of letters.
			for i := 1; i < len(sorted); i++ {
				for j := i; j > 0 && sorted[j] < sorted[j-1]; j-- {
					sorted[j], sorted[j-1] = sorted[j-1], sorted[j]
				}
			}
			return t.appendString(dst, sorted)
		}
	}
	runes := []rune(string(options))
	sort.Slice(runes, func(i, j int) bool { return runes[i] < runes[j] })
	return t.appendString(dst, []byte(string(runes)))
}

// DocumentWriter streams a sequence of documents to an io.Writer as one
// JSON array (NewArrayWriter) or as NDJSON (NewNDJSONWriter), one document
// at a time, through a bounded buffer: whenever the buffer holds more than
// 32 KiB it is written out, so memory stays flat however many documents
// pass. Nothing reaches the writer before that, or before Flush or Close,
// so a handler that fails before its first documents can still answer with
// an error status.
//
// A document that fails to encode leaves no trace in the output: the
// buffer is truncated back to where the document began and the error is
// returned; the writer stays usable. An error from the underlying writer
// is sticky: every later call returns it.
//
// Create one with Encoder.NewArrayWriter or Encoder.NewNDJSONWriter. A
// DocumentWriter is not safe for concurrent use. Close it when done, to
// finish the output and return its buffer to a pool; a writer abandoned
// without Close (say, to answer an error instead) is simply collected.
type DocumentWriter struct {
	enc    Encoder
	w      io.Writer
	bufp   *[]byte // pooled buffer; nil after Close
	buf    []byte
	ndjson bool
	n      int
	peak   int // largest len(buf) seen, for tests of the bound
	closed bool
	err    error
}

var streamBufPool = sync.Pool{New: func() any {
	b := make([]byte, 0, streamFlushThreshold+8<<10)
	return &b
}}

// NewArrayWriter returns a DocumentWriter that writes the documents as
// one JSON array: "[", the documents separated by ",", and "]" on Close
// ("[]" when there were none).
func (e *Encoder) NewArrayWriter(w io.Writer) *DocumentWriter {
	return e.newDocumentWriter(w, false)
}

// NewNDJSONWriter returns a DocumentWriter that writes newline-delimited
// JSON (application/x-ndjson): each document on its own line, ended by
// "\n". Nothing is written for an empty sequence.
func (e *Encoder) NewNDJSONWriter(w io.Writer) *DocumentWriter {
	return e.newDocumentWriter(w, true)
}

func (e *Encoder) newDocumentWriter(w io.Writer, ndjson bool) *DocumentWriter {
	dw := &DocumentWriter{w: w, ndjson: ndjson}
	if e != nil {
		dw.enc = *e
	}
	dw.bufp = streamBufPool.Get().(*[]byte)
	dw.buf = (*dw.bufp)[:0]
	return dw
}

// WriteDocument writes one raw BSON document (bson.Raw, cursor.Current).
// The bytes are not retained, so cursor.Current may be passed as it is.
func (dw *DocumentWriter) WriteDocument(doc []byte) error {
	return dw.write(doc, nil, true)
}

// WriteValue writes one typed value, encoded as Encoder.AppendValue does.
func (dw *DocumentWriter) WriteValue(v any) error {
	return dw.write(nil, v, false)
}

func (dw *DocumentWriter) write(doc []byte, v any, raw bool) error {
	if dw.closed {
		return ErrWriterClosed
	}
	if dw.err != nil {
		return dw.err
	}
	mark := len(dw.buf)
	switch {
	case dw.ndjson:
	case dw.n == 0:
		dw.buf = append(dw.buf, '[')
	default:
		dw.buf = append(dw.buf, ',')
	}
	var err error
	if raw {
		dw.buf, err = dw.enc.AppendDocument(dw.buf, doc)
	} else {
		dw.buf, err = dw.enc.AppendValue(dw.buf, v)
	}
	if err != nil {
		dw.buf = dw.buf[:mark]
		return err
	}
	if dw.ndjson {
		dw.buf = append(dw.buf, '\n')
	}
	dw.n++
	if len(dw.buf) > dw.peak {
		dw.peak = len(dw.buf)
	}
	if len(dw.buf) > streamFlushThreshold {
		return dw.writeOut()
	}
	return nil
}

// writeOut writes the buffer to w and empties it.
func (dw *DocumentWriter) writeOut() error {
	if len(dw.buf) == 0 || dw.err != nil {
		return dw.err
	}
	_, err := dw.w.Write(dw.buf)
	dw.buf = dw.buf[:0]
	if err != nil {
		dw.err = err
	}
	return err
}

// Count returns the number of documents written so far.
func (dw *DocumentWriter) Count() int { return dw.n }

// Flush writes the buffered bytes to the underlying writer and then
// flushes it if it can be flushed (an http.ResponseWriter, through
// http.ResponseController, or a writer with a FlushError() error or
// Flush() method), so that an HTTP client receives the documents now.
// Writing out past the threshold does not flush: it leaves the batching of
// network writes to net/http.
func (dw *DocumentWriter) Flush() error {
	if dw.closed {
		return ErrWriterClosed
	}
	return dw.flush()
}

func (dw *DocumentWriter) flush() error {
	if err := dw.writeOut(); err != nil {
		return err
	}
	if err := flushWriter(dw.w); err != nil {
		dw.err = err
		return err
	}
	return nil
}

// flushWriter flushes w if it can be flushed. An http.ResponseWriter goes
// through http.ResponseController, which finds the flusher behind
// middleware wrappers that implement Unwrap.
func flushWriter(w io.Writer) error {
	switch f := w.(type) {
	case http.ResponseWriter:
		err := http.NewResponseController(f).Flush()
		if errors.Is(err, http.ErrNotSupported) {
			return nil
		}
		return err
	case interface{ FlushError() error }:
		return f.FlushError()
	case http.Flusher:
		f.Flush()
	}
	return nil
}

// Close ends the output (the closing "]" of an array), flushes it, and
// returns the buffer to its pool. It does not close the underlying writer.
// Close is idempotent: later calls return the first call's result.
func (dw *DocumentWriter) Close() error {
	if dw.closed {
		return dw.err
	}
	dw.closed = true
	if dw.err == nil && !dw.ndjson {
		if dw.n == 0 {
			dw.buf = append(dw.buf, '[', ']')
		} else {
			dw.buf = append(dw.buf, ']')
		}
	}
	err := dw.flush()
	if dw.bufp != nil && cap(dw.buf) <= maxPooledBuffer {
		*dw.bufp = dw.buf[:0]
		streamBufPool.Put(dw.bufp)
	}
	dw.bufp, dw.buf = nil, nil
	return err
}
