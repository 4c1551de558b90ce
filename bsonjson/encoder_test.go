package bsonjson

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// mustMarshal marshals v with the driver, failing the test on error.
func mustMarshal(tb testing.TB, v any) bson.Raw {
	tb.Helper()
	b, err := bson.Marshal(v)
	if err != nil {
		tb.Fatalf("bson.Marshal(%v): %v", v, err)
	}
	return b
}

func mustOID(hex string) bson.ObjectID {
	oid, err := bson.ObjectIDFromHex(hex)
	if err != nil {
		panic(err)
	}
	return oid
}

func mustDecimal(s string) bson.Decimal128 {
	d, err := bson.ParseDecimal128(s)
	if err != nil {
		panic(err)
	}
	return d
}

// rawDoc builds a BSON document from already encoded elements, so tests
// can write what the driver refuses to (malformed or unusual input).
func rawDoc(elems ...[]byte) []byte {
	n := 5
	for _, e := range elems {
		n += len(e)
	}
	b := binary.LittleEndian.AppendUint32(nil, uint32(n))
	for _, e := range elems {
		b = append(b, e...)
	}
	return append(b, 0)
}

// rawElem builds one element: type, key, value bytes.
func rawElem(typ byte, key string, value ...[]byte) []byte {
	b := append([]byte{typ}, key...)
	b = append(b, 0)
	for _, v := range value {
		b = append(b, v...)
	}
	return b
}

func le32(v int32) []byte { return binary.LittleEndian.AppendUint32(nil, uint32(v)) }

func le64(v int64) []byte { return binary.LittleEndian.AppendUint64(nil, uint64(v)) }

// rawString encodes a BSON string value.
func rawString(s string) []byte { return append(append(le32(int32(len(s)+1)), s...), 0) }

var testOID = mustOID("5f1d7a2b9c8e4a3b2c1d0e0f")

var uuidBytes = []byte{0x12, 0x3e, 0x45, 0x67, 0xe8, 0x9b, 0x12, 0xd3, 0xa4, 0x56, 0x42, 0x66, 0x14, 0x17, 0x40, 0x00}

// typeCases covers every BSON type and its edge cases. Each value is
// stored as the field "v" of a document; want* is the exact JSON of that
// field in each format. driverDiffers marks the cases where the driver's
// Extended JSON is not the reference (it does not escape DBPointer
// namespaces); elsewhere the Extended JSON must equal bson.MarshalExtJSON's
// byte for byte.
var typeCases = []struct {
	name          string
	v             any    // marshalled by the driver as {"v": v}
	raw           []byte // or the encoded element "v", when the driver cannot write it
	wantPlain     string
	wantRelaxed   string
	wantCanonical string
	driverDiffers bool
}{
	// Double.
	{name: "double/integral", v: 1.0, wantPlain: `1`, wantRelaxed: `1.0`, wantCanonical: `{"$numberDouble":"1.0"}`},
	{name: "double/fraction", v: 1.5, wantPlain: `1.5`, wantRelaxed: `1.5`, wantCanonical: `{"$numberDouble":"1.5"}`},
	{name: "double/tenth", v: 0.1, wantPlain: `0.1`, wantRelaxed: `0.1`, wantCanonical: `{"$numberDouble":"0.1"}`},
	{name: "double/negative zero", v: math.Copysign(0, -1), wantPlain: `-0`, wantRelaxed: `-0.0`, wantCanonical: `{"$numberDouble":"-0.0"}`},
	{name: "double/large integral", v: 123456789.0, wantPlain: `123456789`, wantRelaxed: `1.23456789E+08`, wantCanonical: `{"$numberDouble":"1.23456789E+08"}`},
	{name: "double/1e21", v: 1e21, wantPlain: `1e+21`, wantRelaxed: `1E+21`, wantCanonical: `{"$numberDouble":"1E+21"}`},
	{name: "double/1e-7", v: 1e-7, wantPlain: `1e-7`, wantRelaxed: `1E-07`, wantCanonical: `{"$numberDouble":"1E-07"}`},
	{name: "double/max", v: math.MaxFloat64, wantPlain: `1.7976931348623157e+308`, wantRelaxed: `1.7976931348623157E+308`, wantCanonical: `{"$numberDouble":"1.7976931348623157E+308"}`},
	{name: "double/smallest", v: math.SmallestNonzeroFloat64, wantPlain: `5e-324`, wantRelaxed: `5E-324`, wantCanonical: `{"$numberDouble":"5E-324"}`},
	{name: "double/NaN", v: math.NaN(), wantPlain: `"NaN"`, wantRelaxed: `{"$numberDouble":"NaN"}`, wantCanonical: `{"$numberDouble":"NaN"}`},
	{name: "double/+Inf", v: math.Inf(1), wantPlain: `"Infinity"`, wantRelaxed: `{"$numberDouble":"Infinity"}`, wantCanonical: `{"$numberDouble":"Infinity"}`},
	{name: "double/-Inf", v: math.Inf(-1), wantPlain: `"-Infinity"`, wantRelaxed: `{"$numberDouble":"-Infinity"}`, wantCanonical: `{"$numberDouble":"-Infinity"}`},

	// String.
	{name: "string/ascii", v: "hello", wantPlain: `"hello"`, wantRelaxed: `"hello"`, wantCanonical: `"hello"`},
	{name: "string/empty", v: "", wantPlain: `""`, wantRelaxed: `""`, wantCanonical: `""`},
	{name: "string/unicode", v: "héllo wörld €𝄞", wantPlain: `"héllo wörld €𝄞"`, wantRelaxed: `"héllo wörld €𝄞"`, wantCanonical: `"héllo wörld €𝄞"`},
	{name: "string/quotes and backslash", v: `a"b\c/d`, wantPlain: `"a\"b\\c/d"`, wantRelaxed: `"a\"b\\c/d"`, wantCanonical: `"a\"b\\c/d"`},
	{name: "string/control characters", v: "\x00\x01\x1f\n\r\t\b\f\x7f", wantPlain: `"\u0000\u0001\u001f\n\r\t\b\f` + "\x7f" + `"`, wantRelaxed: `"\u0000\u0001\u001f\n\r\t\b\f` + "\x7f" + `"`, wantCanonical: `"\u0000\u0001\u001f\n\r\t\b\f` + "\x7f" + `"`},
	{name: "string/invalid UTF-8", v: "a\xffb\xc3(c\xed\xa0\x80", wantPlain: `"a\ufffdb\ufffd(c\ufffd\ufffd\ufffd"`, wantRelaxed: `"a\ufffdb\ufffd(c\ufffd\ufffd\ufffd"`, wantCanonical: `"a\ufffdb\ufffd(c\ufffd\ufffd\ufffd"`},
	{name: "string/line separators", v: "a\u2028b\u2029c", wantPlain: `"a\u2028b\u2029c"`, wantRelaxed: `"a\u2028b\u2029c"`, wantCanonical: `"a\u2028b\u2029c"`},
	{name: "string/html unescaped by default", v: "<a href='x'>&</a>", wantPlain: `"<a href='x'>&</a>"`, wantRelaxed: `"<a href='x'>&</a>"`, wantCanonical: `"<a href='x'>&</a>"`},
	{name: "string/long with escapes past 8 bytes", v: "abcdefghijklmnop\"qrstuvwxyz\n0123456789é", wantPlain: `"abcdefghijklmnop\"qrstuvwxyz\n0123456789é"`, wantRelaxed: `"abcdefghijklmnop\"qrstuvwxyz\n0123456789é"`, wantCanonical: `"abcdefghijklmnop\"qrstuvwxyz\n0123456789é"`},
	{name: "string/embedded NUL", v: "a\x00b", wantPlain: `"a\u0000b"`, wantRelaxed: `"a\u0000b"`, wantCanonical: `"a\u0000b"`},

	// Embedded document and array.
	{name: "document/order kept", v: bson.D{{Key: "z", Value: int32(1)}, {Key: "a", Value: int32(2)}, {Key: "m", Value: int32(3)}}, wantPlain: `{"z":1,"a":2,"m":3}`, wantRelaxed: `{"z":1,"a":2,"m":3}`, wantCanonical: `{"z":{"$numberInt":"1"},"a":{"$numberInt":"2"},"m":{"$numberInt":"3"}}`},
	{name: "document/empty", v: bson.D{}, wantPlain: `{}`, wantRelaxed: `{}`, wantCanonical: `{}`},
	{name: "document/nested", v: bson.D{{Key: "a", Value: bson.D{{Key: "b", Value: bson.D{{Key: "c", Value: "d"}}}}}}, wantPlain: `{"a":{"b":{"c":"d"}}}`, wantRelaxed: `{"a":{"b":{"c":"d"}}}`, wantCanonical: `{"a":{"b":{"c":"d"}}}`},
	{name: "document/escaped keys", v: bson.D{{Key: "a\"b", Value: true}, {Key: "é\n", Value: false}, {Key: "", Value: nil}}, wantPlain: `{"a\"b":true,"é\n":false,"":null}`, wantRelaxed: `{"a\"b":true,"é\n":false,"":null}`, wantCanonical: `{"a\"b":true,"é\n":false,"":null}`},
	{name: "document/dollar keys as stored", v: bson.D{{Key: "$ref", Value: "users"}, {Key: "$id", Value: testOID}}, wantPlain: `{"$ref":"users","$id":"5f1d7a2b9c8e4a3b2c1d0e0f"}`, wantRelaxed: `{"$ref":"users","$id":{"$oid":"5f1d7a2b9c8e4a3b2c1d0e0f"}}`, wantCanonical: `{"$ref":"users","$id":{"$oid":"5f1d7a2b9c8e4a3b2c1d0e0f"}}`},
	{name: "document/duplicate keys as stored", raw: rawElem(0x03, "v", rawDoc(rawElem(0x10, "a", le32(1)), rawElem(0x10, "a", le32(2)))), wantPlain: `{"a":1,"a":2}`, wantRelaxed: `{"a":1,"a":2}`, wantCanonical: `{"a":{"$numberInt":"1"},"a":{"$numberInt":"2"}}`},
	{name: "array/mixed", v: bson.A{int32(1), "x", bson.D{{Key: "b", Value: nil}}, bson.A{}}, wantPlain: `[1,"x",{"b":null},[]]`, wantRelaxed: `[1,"x",{"b":null},[]]`, wantCanonical: `[{"$numberInt":"1"},"x",{"b":null},[]]`},
	{name: "array/empty", v: bson.A{}, wantPlain: `[]`, wantRelaxed: `[]`, wantCanonical: `[]`},
	{name: "array/keys not checked", raw: rawElem(0x04, "v", rawDoc(rawElem(0x10, "7", le32(1)), rawElem(0x10, "x", le32(2)))), wantPlain: `[1,2]`, wantRelaxed: `[1,2]`, wantCanonical: `[{"$numberInt":"1"},{"$numberInt":"2"}]`},

	// Binary.
	{name: "binary/generic", v: bson.Binary{Subtype: 0, Data: []byte("hello")}, wantPlain: `"aGVsbG8="`, wantRelaxed: `{"$binary":{"base64":"aGVsbG8=","subType":"00"}}`, wantCanonical: `{"$binary":{"base64":"aGVsbG8=","subType":"00"}}`},
	{name: "binary/empty", v: bson.Binary{Subtype: 0, Data: []byte{}}, wantPlain: `""`, wantRelaxed: `{"$binary":{"base64":"","subType":"00"}}`, wantCanonical: `{"$binary":{"base64":"","subType":"00"}}`},
	{name: "binary/uuid", v: bson.Binary{Subtype: 4, Data: uuidBytes}, wantPlain: `"123e4567-e89b-12d3-a456-426614174000"`, wantRelaxed: `{"$binary":{"base64":"Ej5FZ+ibEtOkVkJmFBdAAA==","subType":"04"}}`, wantCanonical: `{"$binary":{"base64":"Ej5FZ+ibEtOkVkJmFBdAAA==","subType":"04"}}`},
	{name: "binary/uuid of wrong length", v: bson.Binary{Subtype: 4, Data: []byte{1, 2, 3}}, wantPlain: `"AQID"`, wantRelaxed: `{"$binary":{"base64":"AQID","subType":"04"}}`, wantCanonical: `{"$binary":{"base64":"AQID","subType":"04"}}`},
	{name: "binary/legacy uuid", v: bson.Binary{Subtype: 3, Data: uuidBytes}, wantPlain: `"Ej5FZ+ibEtOkVkJmFBdAAA=="`, wantRelaxed: `{"$binary":{"base64":"Ej5FZ+ibEtOkVkJmFBdAAA==","subType":"03"}}`, wantCanonical: `{"$binary":{"base64":"Ej5FZ+ibEtOkVkJmFBdAAA==","subType":"03"}}`},
	{name: "binary/old subtype 2", v: bson.Binary{Subtype: 2, Data: []byte("hi")}, wantPlain: `"aGk="`, wantRelaxed: `{"$binary":{"base64":"aGk=","subType":"02"}}`, wantCanonical: `{"$binary":{"base64":"aGk=","subType":"02"}}`},
	{name: "binary/user defined", v: bson.Binary{Subtype: 0x80, Data: []byte{0xff, 0xfe}}, wantPlain: `"//4="`, wantRelaxed: `{"$binary":{"base64":"//4=","subType":"80"}}`, wantCanonical: `{"$binary":{"base64":"//4=","subType":"80"}}`},

	// Undefined, ObjectID, boolean, null.
	{name: "undefined", v: bson.Undefined{}, wantPlain: `null`, wantRelaxed: `{"$undefined":true}`, wantCanonical: `{"$undefined":true}`},
	{name: "objectid", v: testOID, wantPlain: `"5f1d7a2b9c8e4a3b2c1d0e0f"`, wantRelaxed: `{"$oid":"5f1d7a2b9c8e4a3b2c1d0e0f"}`, wantCanonical: `{"$oid":"5f1d7a2b9c8e4a3b2c1d0e0f"}`},
	{name: "boolean/true", v: true, wantPlain: `true`, wantRelaxed: `true`, wantCanonical: `true`},
	{name: "boolean/false", v: false, wantPlain: `false`, wantRelaxed: `false`, wantCanonical: `false`},
	{name: "null", v: nil, wantPlain: `null`, wantRelaxed: `null`, wantCanonical: `null`},

	// Datetime.
	{name: "datetime/2024", v: bson.DateTime(1704067200000), wantPlain: `"2024-01-01T00:00:00.000Z"`, wantRelaxed: `{"$date":"2024-01-01T00:00:00Z"}`, wantCanonical: `{"$date":{"$numberLong":"1704067200000"}}`},
	{name: "datetime/milliseconds", v: bson.DateTime(1704067200123), wantPlain: `"2024-01-01T00:00:00.123Z"`, wantRelaxed: `{"$date":"2024-01-01T00:00:00.123Z"}`, wantCanonical: `{"$date":{"$numberLong":"1704067200123"}}`},
	{name: "datetime/half second", v: bson.DateTime(1704067200500), wantPlain: `"2024-01-01T00:00:00.500Z"`, wantRelaxed: `{"$date":"2024-01-01T00:00:00.5Z"}`, wantCanonical: `{"$date":{"$numberLong":"1704067200500"}}`},
	{name: "datetime/leap day", v: bson.DateTime(951782400000), wantPlain: `"2000-02-29T00:00:00.000Z"`, wantRelaxed: `{"$date":"2000-02-29T00:00:00Z"}`, wantCanonical: `{"$date":{"$numberLong":"951782400000"}}`},
	{name: "datetime/epoch", v: bson.DateTime(0), wantPlain: `"1970-01-01T00:00:00.000Z"`, wantRelaxed: `{"$date":"1970-01-01T00:00:00Z"}`, wantCanonical: `{"$date":{"$numberLong":"0"}}`},
	{name: "datetime/before epoch", v: bson.DateTime(-1), wantPlain: `"1969-12-31T23:59:59.999Z"`, wantRelaxed: `{"$date":{"$numberLong":"-1"}}`, wantCanonical: `{"$date":{"$numberLong":"-1"}}`},
	{name: "datetime/year 9999", v: bson.DateTime(253402300799999), wantPlain: `"9999-12-31T23:59:59.999Z"`, wantRelaxed: `{"$date":"9999-12-31T23:59:59.999Z"}`, wantCanonical: `{"$date":{"$numberLong":"253402300799999"}}`},
	{name: "datetime/year 10000", v: bson.DateTime(253402300800000), wantPlain: `"+010000-01-01T00:00:00.000Z"`, wantRelaxed: `{"$date":{"$numberLong":"253402300800000"}}`, wantCanonical: `{"$date":{"$numberLong":"253402300800000"}}`},
	{name: "datetime/year 0", v: bson.DateTime(-62167219200000), wantPlain: `"0000-01-01T00:00:00.000Z"`, wantRelaxed: `{"$date":{"$numberLong":"-62167219200000"}}`, wantCanonical: `{"$date":{"$numberLong":"-62167219200000"}}`},
	{name: "datetime/year -1", v: bson.DateTime(-62167219200001), wantPlain: `"-000001-12-31T23:59:59.999Z"`, wantRelaxed: `{"$date":{"$numberLong":"-62167219200001"}}`, wantCanonical: `{"$date":{"$numberLong":"-62167219200001"}}`},
	{name: "datetime/max", v: bson.DateTime(math.MaxInt64), wantPlain: `"+292278994-08-17T07:12:55.807Z"`, wantRelaxed: `{"$date":{"$numberLong":"9223372036854775807"}}`, wantCanonical: `{"$date":{"$numberLong":"9223372036854775807"}}`},
	{name: "datetime/min", v: bson.DateTime(math.MinInt64), wantPlain: `"-292275055-05-16T16:47:04.192Z"`, wantRelaxed: `{"$date":{"$numberLong":"-9223372036854775808"}}`, wantCanonical: `{"$date":{"$numberLong":"-9223372036854775808"}}`},

	// Regex.
	{name: "regex", v: bson.Regex{Pattern: `^a/b\d"$`, Options: "im"}, wantPlain: `"/^a/b\\d\"$/im"`, wantRelaxed: `{"$regularExpression":{"pattern":"^a/b\\d\"$","options":"im"}}`, wantCanonical: `{"$regularExpression":{"pattern":"^a/b\\d\"$","options":"im"}}`},
	{name: "regex/unsorted options", raw: rawElem(0x0B, "v", []byte("a\x00xmi\x00")), wantPlain: `"/a/xmi"`, wantRelaxed: `{"$regularExpression":{"pattern":"a","options":"imx"}}`, wantCanonical: `{"$regularExpression":{"pattern":"a","options":"imx"}}`},
	{name: "regex/empty", v: bson.Regex{}, wantPlain: `"//"`, wantRelaxed: `{"$regularExpression":{"pattern":"","options":""}}`, wantCanonical: `{"$regularExpression":{"pattern":"","options":""}}`},

	// Deprecated types.
	{name: "dbpointer", v: bson.DBPointer{DB: "db.users", Pointer: testOID}, wantPlain: `{"$ref":"db.users","$id":"5f1d7a2b9c8e4a3b2c1d0e0f"}`, wantRelaxed: `{"$dbPointer":{"$ref":"db.users","$id":{"$oid":"5f1d7a2b9c8e4a3b2c1d0e0f"}}}`, wantCanonical: `{"$dbPointer":{"$ref":"db.users","$id":{"$oid":"5f1d7a2b9c8e4a3b2c1d0e0f"}}}`},
	{name: "dbpointer/escaped namespace", v: bson.DBPointer{DB: `d"b`, Pointer: testOID}, wantPlain: `{"$ref":"d\"b","$id":"5f1d7a2b9c8e4a3b2c1d0e0f"}`, wantRelaxed: `{"$dbPointer":{"$ref":"d\"b","$id":{"$oid":"5f1d7a2b9c8e4a3b2c1d0e0f"}}}`, wantCanonical: `{"$dbPointer":{"$ref":"d\"b","$id":{"$oid":"5f1d7a2b9c8e4a3b2c1d0e0f"}}}`, driverDiffers: true},
	{name: "javascript", v: bson.JavaScript(`function() { return "x"; }`), wantPlain: `"function() { return \"x\"; }"`, wantRelaxed: `{"$code":"function() { return \"x\"; }"}`, wantCanonical: `{"$code":"function() { return \"x\"; }"}`},
	{name: "symbol", v: bson.Symbol("sym"), wantPlain: `"sym"`, wantRelaxed: `{"$symbol":"sym"}`, wantCanonical: `{"$symbol":"sym"}`},
	{name: "code with scope", v: bson.CodeWithScope{Code: "x + y", Scope: bson.D{{Key: "x", Value: int32(1)}, {Key: "y", Value: bson.A{int64(2)}}}}, wantPlain: `{"code":"x + y","scope":{"x":1,"y":[2]}}`, wantRelaxed: `{"$code":"x + y","$scope":{"x":1,"y":[2]}}`, wantCanonical: `{"$code":"x + y","$scope":{"x":{"$numberInt":"1"},"y":[{"$numberLong":"2"}]}}`},
	{name: "code with scope/empty", v: bson.CodeWithScope{Code: "", Scope: bson.D{}}, wantPlain: `{"code":"","scope":{}}`, wantRelaxed: `{"$code":"","$scope":{}}`, wantCanonical: `{"$code":"","$scope":{}}`},

	// Int32.
	{name: "int32", v: int32(42), wantPlain: `42`, wantRelaxed: `42`, wantCanonical: `{"$numberInt":"42"}`},
	{name: "int32/min", v: int32(math.MinInt32), wantPlain: `-2147483648`, wantRelaxed: `-2147483648`, wantCanonical: `{"$numberInt":"-2147483648"}`},
	{name: "int32/max", v: int32(math.MaxInt32), wantPlain: `2147483647`, wantRelaxed: `2147483647`, wantCanonical: `{"$numberInt":"2147483647"}`},

	// Timestamp.
	{name: "timestamp", v: bson.Timestamp{T: 1700000000, I: 7}, wantPlain: `{"t":1700000000,"i":7}`, wantRelaxed: `{"$timestamp":{"t":1700000000,"i":7}}`, wantCanonical: `{"$timestamp":{"t":1700000000,"i":7}}`},
	{name: "timestamp/max", v: bson.Timestamp{T: math.MaxUint32, I: math.MaxUint32}, wantPlain: `{"t":4294967295,"i":4294967295}`, wantRelaxed: `{"$timestamp":{"t":4294967295,"i":4294967295}}`, wantCanonical: `{"$timestamp":{"t":4294967295,"i":4294967295}}`},

	// Int64.
	{name: "int64", v: int64(42), wantPlain: `42`, wantRelaxed: `42`, wantCanonical: `{"$numberLong":"42"}`},
	{name: "int64/beyond 2^53", v: int64(1<<53 + 1), wantPlain: `9007199254740993`, wantRelaxed: `9007199254740993`, wantCanonical: `{"$numberLong":"9007199254740993"}`},
	{name: "int64/min", v: int64(math.MinInt64), wantPlain: `-9223372036854775808`, wantRelaxed: `-9223372036854775808`, wantCanonical: `{"$numberLong":"-9223372036854775808"}`},

	// Decimal128.
	{name: "decimal/simple", v: mustDecimal("1.23"), wantPlain: `"1.23"`, wantRelaxed: `{"$numberDecimal":"1.23"}`, wantCanonical: `{"$numberDecimal":"1.23"}`},
	{name: "decimal/trailing zeros kept", v: mustDecimal("1.50"), wantPlain: `"1.50"`, wantRelaxed: `{"$numberDecimal":"1.50"}`, wantCanonical: `{"$numberDecimal":"1.50"}`},
	{name: "decimal/negative zero", v: mustDecimal("-0"), wantPlain: `"-0"`, wantRelaxed: `{"$numberDecimal":"-0"}`, wantCanonical: `{"$numberDecimal":"-0"}`},
	{name: "decimal/exponent", v: mustDecimal("1.0E+10"), wantPlain: `"1.0E+10"`, wantRelaxed: `{"$numberDecimal":"1.0E+10"}`, wantCanonical: `{"$numberDecimal":"1.0E+10"}`},
	{name: "decimal/small", v: mustDecimal("0.000001"), wantPlain: `"0.000001"`, wantRelaxed: `{"$numberDecimal":"0.000001"}`, wantCanonical: `{"$numberDecimal":"0.000001"}`},
	{name: "decimal/smaller", v: mustDecimal("1E-7"), wantPlain: `"1E-7"`, wantRelaxed: `{"$numberDecimal":"1E-7"}`, wantCanonical: `{"$numberDecimal":"1E-7"}`},
	{name: "decimal/34 digits", v: mustDecimal("9999999999999999999999999999999999"), wantPlain: `"9999999999999999999999999999999999"`, wantRelaxed: `{"$numberDecimal":"9999999999999999999999999999999999"}`, wantCanonical: `{"$numberDecimal":"9999999999999999999999999999999999"}`},
	{name: "decimal/NaN", v: mustDecimal("NaN"), wantPlain: `"NaN"`, wantRelaxed: `{"$numberDecimal":"NaN"}`, wantCanonical: `{"$numberDecimal":"NaN"}`},
	{name: "decimal/Infinity", v: mustDecimal("Infinity"), wantPlain: `"Infinity"`, wantRelaxed: `{"$numberDecimal":"Infinity"}`, wantCanonical: `{"$numberDecimal":"Infinity"}`},
	{name: "decimal/-Infinity", v: mustDecimal("-Infinity"), wantPlain: `"-Infinity"`, wantRelaxed: `{"$numberDecimal":"-Infinity"}`, wantCanonical: `{"$numberDecimal":"-Infinity"}`},
	{name: "decimal/non-canonical is zero", v: bson.NewDecimal128(0x3041ed09bead87c0, 0x378d8e6400000000), wantPlain: `"0"`, wantRelaxed: `{"$numberDecimal":"0"}`, wantCanonical: `{"$numberDecimal":"0"}`, driverDiffers: true},

	// MinKey and MaxKey.
	{name: "minkey", v: bson.MinKey{}, wantPlain: `{"$minKey":1}`, wantRelaxed: `{"$minKey":1}`, wantCanonical: `{"$minKey":1}`},
	{name: "maxkey", v: bson.MaxKey{}, wantPlain: `{"$maxKey":1}`, wantRelaxed: `{"$maxKey":1}`, wantCanonical: `{"$maxKey":1}`},
}

// typeCaseDoc returns the document {"v": …} of a type case.
func typeCaseDoc(tb testing.TB, i int) bson.Raw {
	tc := typeCases[i]
	if tc.raw != nil {
		return rawDoc(tc.raw)
	}
	return mustMarshal(tb, bson.D{{Key: "v", Value: tc.v}})
}

func TestEncoderTypes(t *testing.T) {
	for i, tc := range typeCases {
		doc := typeCaseDoc(t, i)
		for _, f := range []struct {
			format Format
			want   string
		}{
			{FormatPlain, tc.wantPlain},
			{FormatRelaxed, tc.wantRelaxed},
			{FormatCanonical, tc.wantCanonical},
		} {
			t.Run(tc.name+"/"+f.format.String(), func(t *testing.T) {
				enc := &Encoder{Format: f.format}
				got, err := enc.AppendDocument([]byte("prefix"), doc)
				if err != nil {
					t.Fatalf("AppendDocument: %v", err)
				}
				if !bytes.HasPrefix(got, []byte("prefix")) {
					t.Fatalf("dst prefix lost: %q", got)
				}
				got = got[len("prefix"):]
				want := `{"v":` + f.want + `}`
				if string(got) != want {
					t.Errorf("got  %s\nwant %s", got, want)
				}
				if !json.Valid(got) {
					t.Errorf("not valid JSON: %s", got)
				}
				if f.format == FormatPlain || tc.driverDiffers {
					return
				}
				driver, err := bson.MarshalExtJSON(doc, f.format == FormatCanonical, false)
				if err != nil {
					t.Fatalf("MarshalExtJSON: %v", err)
				}
				if !bytes.Equal(got, driver) {
					t.Errorf("differs from the driver\ngot    %s\ndriver %s", got, driver)
				}
			})
		}
	}
}

// TestEncoderTypesRoundTrip reads the canonical output of every type case
// back with the driver and expects the same document.
func TestEncoderTypesRoundTrip(t *testing.T) {
	for i, tc := range typeCases {
		doc := typeCaseDoc(t, i)
		if !extJSONKeeps(doc) {
			continue // invalid UTF-8: no JSON dialect carries it
		}
		t.Run(tc.name, func(t *testing.T) {
			out, err := (&Encoder{Format: FormatCanonical}).AppendDocument(nil, doc)
			if err != nil {
				t.Fatal(err)
			}
			var back bson.Raw
			if err := bson.UnmarshalExtJSON(out, true, &back); err != nil {
				t.Fatalf("UnmarshalExtJSON(%s): %v", out, err)
			}
			if msg := sameDocument(doc, back, false); msg != "" {
				t.Errorf("round trip of %s: %s", out, msg)
			}
		})
	}
}

func TestEncoderOptions(t *testing.T) {
	const big = int64(1 << 53)
	doc := mustMarshal(t, bson.D{
		{Key: "safe", Value: big - 1},
		{Key: "unsafe", Value: big},
		{Key: "negsafe", Value: -(big - 1)},
		{Key: "negunsafe", Value: -big},
		{Key: "i32", Value: int32(math.MaxInt32)},
		{Key: "f", Value: 1e300},
	})
	html := mustMarshal(t, bson.D{{Key: "<k>", Value: "a<b>&c\u2028"}, {Key: "r", Value: bson.Regex{Pattern: "<", Options: ""}}})
	cases := []struct {
		name string
		enc  *Encoder
		doc  []byte
		want string
	}{
		{"int64 numbers by default", nil, doc,
			`{"safe":9007199254740991,"unsafe":9007199254740992,"negsafe":-9007199254740991,"negunsafe":-9007199254740992,"i32":2147483647,"f":1e+300}`},
		{"unknown format writes plain JSON", &Encoder{Format: Format(9)}, doc,
			`{"safe":9007199254740991,"unsafe":9007199254740992,"negsafe":-9007199254740991,"negunsafe":-9007199254740992,"i32":2147483647,"f":1e+300}`},
		{"int64 as string beyond 2^53-1", &Encoder{Int64AsString: true}, doc,
			`{"safe":9007199254740991,"unsafe":"9007199254740992","negsafe":-9007199254740991,"negunsafe":"-9007199254740992","i32":2147483647,"f":1e+300}`},
		{"relaxed int64 as numberLong beyond 2^53-1", &Encoder{Format: FormatRelaxed, Int64AsString: true}, doc,
			`{"safe":9007199254740991,"unsafe":{"$numberLong":"9007199254740992"},"negsafe":-9007199254740991,"negunsafe":{"$numberLong":"-9007199254740992"},"i32":2147483647,"f":1E+300}`},
		{"canonical ignores Int64AsString", &Encoder{Format: FormatCanonical, Int64AsString: true}, mustMarshal(t, bson.D{{Key: "a", Value: big}}),
			`{"a":{"$numberLong":"9007199254740992"}}`},
		{"html unescaped by default", &Encoder{}, html,
			`{"<k>":"a<b>&c\u2028","r":"/</"}`},
		{"html escaped", &Encoder{EscapeHTML: true}, html,
			`{"\u003ck\u003e":"a\u003cb\u003e\u0026c\u2028","r":"/\u003c/"}`},
		{"html escaped in extended JSON", &Encoder{Format: FormatCanonical, EscapeHTML: true}, html,
			`{"\u003ck\u003e":"a\u003cb\u003e\u0026c\u2028","r":{"$regularExpression":{"pattern":"\u003c","options":""}}}`},
		{"html escaped past 8 bytes", &Encoder{EscapeHTML: true}, mustMarshal(t, bson.D{{Key: "s", Value: "abcdefgh&ijklmnop"}}),
			`{"s":"abcdefgh\u0026ijklmnop"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.enc.AppendDocument(nil, tc.doc)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestFormatString(t *testing.T) {
	for f, want := range map[Format]string{FormatPlain: "plain", FormatRelaxed: "relaxed", FormatCanonical: "canonical", Format(9): "Format(9)"} {
		if got := f.String(); got != want {
			t.Errorf("Format(%d).String() = %q, want %q", int(f), got, want)
		}
	}
}

// TestEncoderEscapingMatchesEncodingJSON compares string escaping with
// encoding/json, HTML escaping on and off.
func TestEncoderEscapingMatchesEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", "Z", " ", "\"", "\\", "/", "<", ">", "&", "\n", "\x00", "\x1f", "\x7f", "é", "€", "𝄞", "\u2028", "\u2029", "\xff", "\xc3", "\xed\xa0\x80", "\xf4\x90\x80\x80"}
	for i := 0; i < 2000; i++ {
		var sb strings.Builder
		for n := rng.IntN(40); n > 0; n-- {
			sb.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		checkEscaping(t, sb.String())
	}
}

func checkEscaping(t *testing.T, s string) {
	t.Helper()
	for _, html := range []bool{false, true} {
		var want bytes.Buffer
		je := json.NewEncoder(&want)
		je.SetEscapeHTML(html)
		if err := je.Encode(s); err != nil {
			t.Fatal(err)
		}
		tr := transcoder{html: html}
		got := tr.appendString(nil, []byte(s))
		if string(got) != strings.TrimSuffix(want.String(), "\n") {
			t.Fatalf("escaping %q (html %v): got %s, encoding/json %s", s, html, got, want.String())
		}
	}
}

// TestEncoderFloatsMatchEncodingJSON compares plain doubles with what
// encoding/json writes for a float64, and Extended JSON doubles with the
// driver's.
func TestEncoderFloatsMatchEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	values := []float64{0, 1, -1, 0.1, 1e20, 1e21, 1e-6, 1e-7, 123456789, 1.5e300, -2.5e-300, math.MaxFloat64, math.SmallestNonzeroFloat64, 1 << 53, 1<<53 + 2}
	for i := 0; i < 5000; i++ {
		values = append(values, math.Float64frombits(rng.Uint64()), rng.NormFloat64()*math.Pow(10, float64(rng.IntN(60)-30)),
			float64(rng.Int64N(1<<55)-1<<54), float64(rng.IntN(2e6)-1e6), math.Trunc(rng.NormFloat64()*1e20))
	}
	for i := 0; i < 5000; i++ {
		// Short decimals (prices, coordinates) of every size, and their
		// neighbours.
		d := float64(rng.Int64N(1<<(10+rng.IntN(45)))) / math.Pow(10, float64(1+rng.IntN(10)))
		values = append(values, d, -d, math.Nextafter(d, 0), math.Nextafter(d, math.Inf(1)))
	}
	values = append(values, 1<<53-1, -(1<<53 - 1), 1<<53+2, 999999, 1e6, -1e6, math.Copysign(0, -1),
		0.1, 0.2, 0.3, math.Nextafter(0.3, 1), 19.99, -0.1357, 51.5074, 1e-6, 1e-4, 0.0001, 999999.99999999, 1125899906842.6245, 0.00001234, 123456.7)
	for _, f := range values {
		checkDouble(t, f)
	}
}

func TestAppendShortDecimal(t *testing.T) {
	cases := []struct {
		f    float64
		want string // "" when the fast path must decline
	}{
		{19.99, "19.99"},
		{-0.1357, "-0.1357"},
		{math.Nextafter(0.3, 1), ""}, // 0.30000000000000004: seventeen digits
		{1.0 / 3, ""},
		{0.5, "0.5"},
		{0.00000001, "0.00000001"},
		{0.000000001, ""}, // nine decimals
		{123456789.125, "123456789.125"},
		{1 << 50, ""}, // too large for the exactness argument
		{1e-300, ""},
		{40, ""}, // integral: not this function's job
	}
	for _, tc := range cases {
		got, ok := appendShortDecimal(nil, tc.f)
		if ok != (tc.want != "") || string(got) != tc.want {
			t.Errorf("%v: got %q, %v; want %q", tc.f, got, ok, tc.want)
		}
	}
}

// checkDouble compares the plain JSON of f with encoding/json's and its
// Extended JSON with the driver's.
func checkDouble(t *testing.T, f float64) {
	t.Helper()
	if !math.IsNaN(f) && !math.IsInf(f, 0) {
		want, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendPlainFloat(nil, f); string(got) != string(want) {
			t.Fatalf("%v: got %s, encoding/json %s", f, got, want)
		}
	}
	doc := mustMarshal(t, bson.D{{Key: "v", Value: f}})
	for _, canonical := range []bool{false, true} {
		format := FormatRelaxed
		if canonical {
			format = FormatCanonical
		}
		got, err := (&Encoder{Format: format}).AppendDocument(nil, doc)
		if err != nil {
			t.Fatal(err)
		}
		driver, err := bson.MarshalExtJSON(doc, canonical, false)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, driver) {
			t.Fatalf("%v: got %s, driver %s", f, got, driver)
		}
	}
}

// TestEncoderDatesMatchTime compares dates with the time package over
// years 0 to 9999 and the expanded form beyond.
func TestEncoderDatesMatchTime(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const lo, hi = -62167219200000, 253402300799999 // years 0 and 9999
	values := []int64{lo, hi, 0, -1, 1, 951782400000, 4107542400000}
	for i := 0; i < 20000; i++ {
		values = append(values, lo+rng.Int64N(hi-lo+1))
	}
	for _, ms := range values {
		want := time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z")
		if got := appendISODate(nil, ms, false); string(got) != want {
			t.Fatalf("%d: got %s, time %s", ms, got, want)
		}
		trimmed := time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.999Z07:00")
		if got := appendISODate(nil, ms, true); string(got) != trimmed {
			t.Fatalf("%d trimmed: got %s, time %s", ms, got, trimmed)
		}
	}
	for i := 0; i < 20000; i++ {
		ms := int64(rng.Uint64())
		if got, want := string(appendISODate(nil, ms, false)), isoDate(ms); got != want {
			t.Fatalf("%d: got %s, want %s", ms, got, want)
		}
	}
}

// isoDate formats ms with the time package, the year expanded as
// JavaScript's toISOString does outside 0000-9999.
func isoDate(ms int64) string {
	tm := time.UnixMilli(ms).UTC()
	var year string
	switch y := tm.Year(); {
	case y >= 0 && y <= 9999:
		year = fmt.Sprintf("%04d", y)
	case y < 0:
		year = fmt.Sprintf("-%06d", -y)
	default:
		year = fmt.Sprintf("+%06d", y)
	}
	return year + tm.Format("-01-02T15:04:05.000Z")
}

// TestEncoderDecimalMatchesDriver compares decimal128 formatting with the
// driver's Decimal128.String for canonical values.
func TestEncoderDecimalMatchesDriver(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	strs := []string{"0", "-0", "1", "-1", "0.1", "1.00", "123.456", "1E+3", "1.000E+3", "0E-10", "0E+10", "-0.0000001", "0.000001", "0.0000001",
		"1234567890123456789012345678901234", "9.999999999999999999999999999999999E+6144", "1E-6176", "-1E-6176", "NaN", "Infinity", "-Infinity"}
	var values [][2]uint64
	for _, s := range strs {
		h, l := mustDecimal(s).GetBytes()
		values = append(values, [2]uint64{h, l})
	}
	for i := 0; i < 20000; i++ {
		// Random coefficients of every size with random exponents.
		h := rng.Uint64() >> (15 + rng.IntN(49)) & (1<<49 - 1)
		l := rng.Uint64() >> rng.IntN(64)
		exp := uint64(rng.IntN(12288))
		values = append(values, [2]uint64{h | exp<<49 | uint64(rng.IntN(2))<<63, l})
	}
	for _, v := range values {
		if !canonicalCoefficient(v[0], v[1]) {
			continue
		}
		want := bson.NewDecimal128(v[0], v[1]).String()
		if got := appendDecimal128(nil, v[0], v[1]); string(got) != want {
			t.Fatalf("%#x %#x: got %s, driver %s", v[0], v[1], got, want)
		}
	}
	// Non-canonical encodings read as zero with their exponent.
	for _, tc := range []struct {
		h, l uint64
		want string
	}{
		{0x3041ed09bead87c0, 0x378d8e6400000000, "0"}, // 10^34, exponent 0
		{0x6c11800000000000, 0, "0E+3"},               // 11-form, exponent 3
		{0xec11800000000000, 0, "-0E+3"},              // same, negative
		{0x3041ffffffffffff, 0xffffffffffffffff, "0"}, // 2^113-1
		{0x7e00000000000000, 0, "NaN"},                // signalling NaN
		{0xfc00000000000000, 0, "NaN"},                // negative NaN
		{0x3040000000000000 | 0x0001ed09bead87c0, 0x378d8e63ffffffff, "9999999999999999999999999999999999"},
	} {
		if got := appendDecimal128(nil, tc.h, tc.l); string(got) != tc.want {
			t.Errorf("%#x %#x: got %s, want %s", tc.h, tc.l, got, tc.want)
		}
	}
}

// canonicalCoefficient reports whether the decimal128 bits hold a
// coefficient within 10^34-1, where the driver's String is the reference.
func canonicalCoefficient(h, l uint64) bool {
	if h>>58&0x1F >= 0x1E {
		return true // NaN, Infinity
	}
	if h>>61&3 == 3 {
		return false
	}
	ch := h & (1<<49 - 1)
	return ch < maxCoefficientHi || ch == maxCoefficientHi && l <= maxCoefficientLo
}

func TestEncoderMalformed(t *testing.T) {
	valid := rawDoc(rawElem(0x10, "a", le32(1)))
	cases := []struct {
		name string
		doc  []byte
	}{
		{"nil", nil},
		{"empty", []byte{}},
		{"short length", []byte{5, 0, 0}},
		{"length only", []byte{5, 0, 0, 0}},
		{"length below minimum", []byte{4, 0, 0, 0, 0}},
		{"negative length", []byte{0xff, 0xff, 0xff, 0xff, 0}},
		{"length beyond input", append(le32(100), 0)},
		{"trailing bytes", append(append([]byte{}, valid...), 0)},
		{"missing terminator", func() []byte { b := append([]byte{}, valid...); b[len(b)-1] = 1; return b }()},
		{"unknown type", rawDoc(rawElem(0x14, "a"))},
		{"type zero inside", rawDoc(rawElem(0x00, "a"))},
		{"unterminated key", append(le32(7), 0x10, 'a', 'b')},
		{"value swallows terminator", append(le32(11), append(rawElem(0x10, "a", []byte{1, 0, 0}), 0)...)},
		{"double truncated", rawDoc(rawElem(0x01, "a", []byte{1, 2, 3}))},
		{"string zero length", rawDoc(rawElem(0x02, "a", le32(0)))},
		{"string negative length", rawDoc(rawElem(0x02, "a", le32(-5), []byte("abc\x00")))},
		{"string too long", rawDoc(rawElem(0x02, "a", le32(50), []byte("abc\x00")))},
		{"string without NUL", rawDoc(rawElem(0x02, "a", le32(4), []byte("abcd")))},
		{"string length field truncated", rawDoc(rawElem(0x02, "a", []byte{1, 0}))},
		{"embedded document overflows parent", rawDoc(rawElem(0x03, "a", le32(40), []byte{0}))},
		{"embedded document too short", rawDoc(rawElem(0x03, "a", le32(4)))},
		{"embedded document without NUL", rawDoc(rawElem(0x03, "a", le32(5), []byte{1}))},
		{"array with bad element", rawDoc(rawElem(0x04, "a", rawDoc(rawElem(0x08, "0", []byte{2}))))},
		{"binary negative length", rawDoc(rawElem(0x05, "a", le32(-1), []byte{0}))},
		{"binary too long", rawDoc(rawElem(0x05, "a", le32(10), []byte{0, 1, 2}))},
		{"binary missing subtype", rawDoc(rawElem(0x05, "a", le32(0)))},
		{"binary subtype 2 inner length mismatch", rawDoc(rawElem(0x05, "a", le32(6), []byte{2}, le32(1), []byte("hi")))},
		{"binary subtype 2 too short", rawDoc(rawElem(0x05, "a", le32(2), []byte{2}, []byte("hi")))},
		{"objectid truncated", rawDoc(rawElem(0x07, "a", make([]byte, 11)))},
		{"boolean 2", rawDoc(rawElem(0x08, "a", []byte{2}))},
		{"boolean missing", rawDoc(rawElem(0x08, "a"))},
		{"datetime truncated", rawDoc(rawElem(0x09, "a", make([]byte, 7)))},
		{"regex unterminated pattern", append(le32(8), 0x0B, 'a', 0, 'x')},
		{"regex unterminated options", rawDoc(rawElem(0x0B, "a", []byte("x\x00i")))},
		{"dbpointer truncated", rawDoc(rawElem(0x0C, "a", rawString("ns"), make([]byte, 11)))},
		{"javascript truncated", rawDoc(rawElem(0x0D, "a", le32(9), []byte("x")))},
		{"symbol bad length", rawDoc(rawElem(0x0E, "a", le32(-1)))},
		{"code with scope too short", rawDoc(rawElem(0x0F, "a", le32(13), rawString(""), rawDoc()[:4]))},
		{"code with scope length mismatch", rawDoc(rawElem(0x0F, "a", le32(20), rawString("x"), rawDoc(), []byte{0}))},
		{"code with scope string overflows", rawDoc(rawElem(0x0F, "a", le32(15), le32(20), []byte("x\x00"), rawDoc()))},
		{"code with scope bad scope", rawDoc(rawElem(0x0F, "a", le32(16), rawString("x"), le32(6), []byte{0x10}))},
		{"int32 truncated", rawDoc(rawElem(0x10, "a", []byte{1}))},
		{"timestamp truncated", rawDoc(rawElem(0x11, "a", make([]byte, 4)))},
		{"int64 truncated", rawDoc(rawElem(0x12, "a", make([]byte, 7)))},
		{"decimal truncated", rawDoc(rawElem(0x13, "a", make([]byte, 15)))},
	}
	for _, tc := range cases {
		for _, format := range []Format{FormatPlain, FormatRelaxed, FormatCanonical} {
			t.Run(tc.name+"/"+format.String(), func(t *testing.T) {
				out, err := (&Encoder{Format: format}).AppendDocument(nil, tc.doc)
				if !errors.Is(err, ErrMalformedBSON) {
					t.Fatalf("err = %v, want ErrMalformedBSON (output %q)", err, out)
				}
				if errors.Is(err, ErrMaxDepth) {
					t.Errorf("err %v is also ErrMaxDepth", err)
				}
				if !strings.Contains(err.Error(), " at byte ") {
					t.Errorf("error %q does not say where", err)
				}
			})
		}
	}
	// The control document itself is fine.
	if _, err := (*Encoder)(nil).AppendDocument(nil, valid); err != nil {
		t.Fatalf("valid control document: %v", err)
	}
}

// nested returns a document of depth levels: {"a":{"a":…{}}}, with arrays
// or code-with-scope scopes every few levels.
func nested(depth int) []byte {
	doc := rawDoc()
	for d := 2; d <= depth; d++ {
		switch d % 3 {
		case 0:
			doc = rawDoc(rawElem(0x04, "a", doc))
		case 1:
			code := rawString("c")
			doc = rawDoc(rawElem(0x0F, "a", le32(int32(4+len(code)+len(doc))), code, doc))
		default:
			doc = rawDoc(rawElem(0x03, "a", doc))
		}
	}
	return doc
}

func TestEncoderMaxDepth(t *testing.T) {
	cases := []struct {
		name    string
		enc     *Encoder
		depth   int
		wantErr bool
	}{
		{"default accepts 100", nil, 100, false},
		{"default refuses 101", nil, 101, true},
		{"zero means default", &Encoder{MaxDepth: 0}, 100, false},
		{"negative means default", &Encoder{MaxDepth: -1}, 101, true},
		{"custom 3 accepts 3", &Encoder{MaxDepth: 3}, 3, false},
		{"custom 3 refuses 4", &Encoder{MaxDepth: 3}, 4, true},
		{"custom 1 accepts flat", &Encoder{MaxDepth: 1}, 1, false},
		{"custom 1 refuses nesting", &Encoder{MaxDepth: 1}, 2, true},
		{"deep input refused without exhausting the stack", &Encoder{MaxDepth: 1000}, 100000, true},
		{"large limit accepts deep input", &Encoder{MaxDepth: 5000}, 5000, false},
		{"large limit refuses one more", &Encoder{MaxDepth: 5000}, 5001, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			doc := deepHeaders(tc.depth)
			if tc.depth <= 100 {
				doc = nested(tc.depth) // with arrays and scopes among the levels
			}
			for _, format := range []Format{FormatPlain, FormatCanonical} {
				enc := Encoder{Format: format}
				if tc.enc != nil {
					enc.MaxDepth = tc.enc.MaxDepth
				}
				out, err := enc.AppendDocument(nil, doc)
				if tc.wantErr {
					if !errors.Is(err, ErrMaxDepth) || errors.Is(err, ErrMalformedBSON) {
						t.Fatalf("err = %v, want ErrMaxDepth only", err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("depth %d: %v", tc.depth, err)
				}
				if !json.Valid(out) {
					t.Fatalf("invalid JSON")
				}
			}
		})
	}
}

// deepHeaders builds depth nested documents {"a":{"a":…}} directly.
func deepHeaders(depth int) []byte {
	// Level i (from 0) starts at 7*i: length, type 3, "a", NUL; the
	// innermost is an empty document, followed by one NUL per outer level.
	n := 8*(depth-1) + 5
	b := make([]byte, 0, n)
	for i := 0; i < depth-1; i++ {
		b = binary.LittleEndian.AppendUint32(b, uint32(n-8*i))
		b = append(b, 0x03, 'a', 0)
	}
	b = append(b, 5, 0, 0, 0, 0)
	for i := 0; i < depth-1; i++ {
		b = append(b, 0)
	}
	return b
}

// benchUser is a realistic document: a user with an address, tags and
// recent orders.
type benchUser struct {
	ID        bson.ObjectID   `bson:"_id" json:"_id"`
	Email     string          `bson:"email" json:"email"`
	Name      string          `bson:"name" json:"name"`
	Age       int32           `bson:"age" json:"age"`
	Active    bool            `bson:"active" json:"active"`
	Score     float64         `bson:"score" json:"score"`
	Balance   bson.Decimal128 `bson:"balance" json:"balance"`
	Visits    int64           `bson:"visits" json:"visits"`
	CreatedAt time.Time       `bson:"createdAt" json:"createdAt"`
	UpdatedAt time.Time       `bson:"updatedAt" json:"updatedAt"`
	Tags      []string        `bson:"tags" json:"tags"`
	Address   benchAddress    `bson:"address" json:"address"`
	Orders    []benchOrder    `bson:"orders" json:"orders"`
	Bio       string          `bson:"bio" json:"bio"`
}

type benchAddress struct {
	Street  string    `bson:"street" json:"street"`
	City    string    `bson:"city" json:"city"`
	Zip     string    `bson:"zip" json:"zip"`
	Country string    `bson:"country" json:"country"`
	Geo     []float64 `bson:"geo" json:"geo"`
}

type benchOrder struct {
	ID      bson.ObjectID `bson:"_id" json:"_id"`
	SKU     string        `bson:"sku" json:"sku"`
	Title   string        `bson:"title" json:"title"`
	Qty     int32         `bson:"qty" json:"qty"`
	Price   float64       `bson:"price" json:"price"`
	Shipped bool          `bson:"shipped" json:"shipped"`
	At      time.Time     `bson:"at" json:"at"`
}

// benchDocument returns a user with the given number of orders, as a
// struct and as BSON.
func benchDocument(tb testing.TB, orders int) (benchUser, bson.Raw) {
	base := time.Date(2024, 3, 14, 15, 9, 26, 535e6, time.UTC)
	u := benchUser{
		ID:        testOID,
		Email:     "ada.lovelace@example.com",
		Name:      "Ada Lovelace",
		Age:       36,
		Active:    true,
		Score:     98.6,
		Balance:   mustDecimal("1234.56"),
		Visits:    1 << 40,
		CreatedAt: base,
		UpdatedAt: base.Add(1234567 * time.Millisecond),
		Tags:      []string{"mathematics", "engines", "poetry", "analysis"},
		Address:   benchAddress{"12 St James's Square", "London", "SW1Y 4JH", "GB", []float64{-0.1357, 51.5074}},
		Bio: "Augusta Ada King, Countess of Lovelace, was an English mathematician and writer, chiefly known for her " +
			"work on Charles Babbage's proposed mechanical general-purpose computer, the Analytical Engine. \"The engine\" she wrote, " +
			"might act upon other things besides number.",
	}
	for i := 0; i < orders; i++ {
		u.Orders = append(u.Orders, benchOrder{
			ID:      mustOID(fmt.Sprintf("65f3%020x", i)),
			SKU:     fmt.Sprintf("SKU-%05d", 1000+i*7),
			Title:   fmt.Sprintf("Notes on the Analytical Engine, volume %d", i+1),
			Qty:     int32(1 + i%4),
			Price:   19.99 + float64(i),
			Shipped: i%2 == 0,
			At:      base.Add(time.Duration(i) * time.Hour),
		})
	}
	return u, mustMarshal(tb, u)
}

func TestBenchDocumentSizes(t *testing.T) {
	for _, tc := range []struct {
		orders   int
		min, max int
	}{{3, 900, 1200}, {105, 15000, 17500}} {
		_, raw := benchDocument(t, tc.orders)
		if len(raw) < tc.min || len(raw) > tc.max {
			t.Errorf("%d orders: %d bytes, want %d-%d", tc.orders, len(raw), tc.min, tc.max)
		}
	}
}

// TestAppendValueMatchesRaw decodes documents into typed values and
// expects the typed encoding to equal the raw one, in every format.
func TestAppendValueMatchesRaw(t *testing.T) {
	_, userRaw := benchDocument(t, 3)
	type tagged struct {
		ID      bson.ObjectID  `bson:"_id"`
		Renamed string         `bson:"display_name" json:"ignored"`
		Empty   string         `bson:"empty,omitempty"`
		When    time.Time      `bson:"when"`
		Ptr     *int64         `bson:"ptr"`
		Any     any            `bson:"any"`
		Nested  map[string]int `bson:"nested"`
		Lower   int32
	}
	taggedRaw := mustMarshal(t, bson.D{
		{Key: "_id", Value: testOID},
		{Key: "display_name", Value: "x<y"},
		{Key: "when", Value: bson.DateTime(1704067200123)},
		{Key: "ptr", Value: nil},
		{Key: "any", Value: bson.A{1.5, "s", bson.D{{Key: "k", Value: int64(1 << 60)}}}},
		{Key: "nested", Value: bson.D{{Key: "one", Value: int32(1)}}},
		{Key: "lower", Value: int32(7)},
	})
	var allTypes bson.D
	for i := range typeCases {
		if typeCases[i].raw != nil {
			continue // the driver would rewrite what it cannot write
		}
		doc := typeCaseDoc(t, i)
		allTypes = append(allTypes, bson.E{Key: typeCases[i].name, Value: doc.Lookup("v")})
	}
	allTypesRaw := mustMarshal(t, allTypes)

	cases := []struct {
		name string
		raw  bson.Raw
		into func() any // a pointer to decode into
	}{
		{"struct", userRaw, func() any { return new(benchUser) }},
		{"tagged struct", taggedRaw, func() any { return new(tagged) }},
		{"bson.D of every type", allTypesRaw, func() any { return new(bson.D) }},
		{"bson.Raw", allTypesRaw, func() any { return new(bson.Raw) }},
		{"map of one field", mustMarshal(t, bson.D{{Key: "a", Value: int64(1)}}), func() any { return new(map[string]any) }},
	}
	for _, tc := range cases {
		for _, format := range []Format{FormatPlain, FormatRelaxed, FormatCanonical} {
			t.Run(tc.name+"/"+format.String(), func(t *testing.T) {
				ptr := tc.into()
				if err := bson.Unmarshal(tc.raw, ptr); err != nil {
					t.Fatal(err)
				}
				enc := &Encoder{Format: format, Int64AsString: true}
				want, err := enc.AppendDocument(nil, tc.raw)
				if err != nil {
					t.Fatal(err)
				}
				for _, v := range []any{ptr, derefAny(ptr)} {
					got, err := enc.AppendValue(nil, v)
					if err != nil {
						t.Fatalf("AppendValue(%T): %v", v, err)
					}
					if !bytes.Equal(got, want) {
						t.Errorf("AppendValue(%T)\ngot  %s\nraw  %s", v, got, want)
					}
				}
			})
		}
	}
}

// derefAny returns the value a pointer points to, as an any.
func derefAny(p any) any { return reflect.ValueOf(p).Elem().Interface() }

func TestAppendValue(t *testing.T) {
	oid := testOID
	cases := []struct {
		name string
		v    any
		want string
	}{
		{"nil", nil, `null`},
		{"nil pointer", (*benchUser)(nil), `null`},
		{"slice", []int32{1, 2, 3}, `[1,2,3]`},
		{"bson.A", bson.A{"a", oid}, `["a","5f1d7a2b9c8e4a3b2c1d0e0f"]`},
		{"string", "hé\"", `"hé\""`},
		{"int", 7, `7`},
		{"time", time.Date(2024, 1, 2, 3, 4, 5, 678901234, time.FixedZone("x", 3600)), `"2024-01-02T02:04:05.678Z"`},
		{"objectid", oid, `"5f1d7a2b9c8e4a3b2c1d0e0f"`},
		{"raw value", bson.RawValue{Type: bson.TypeInt64, Value: le64(5)}, `5`},
		{"bson.M one key", bson.M{"k": bson.D{{Key: "z", Value: 1}, {Key: "a", Value: 2}}}, `{"k":{"z":1,"a":2}}`},
		{"struct slice", []struct {
			A int `bson:"a"`
		}{{1}, {2}}, `[{"a":1},{"a":2}]`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := (*Encoder)(nil).AppendValue([]byte("x"), tc.v)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != "x"+tc.want {
				t.Errorf("got %s, want x%s", got, tc.want)
			}
		})
	}

	t.Run("marshaller error", func(t *testing.T) {
		_, err := (*Encoder)(nil).AppendValue(nil, make(chan int))
		if err == nil {
			t.Fatal("no error for a channel")
		}
		// The pool must still work after a failed marshal.
		got, err := (*Encoder)(nil).AppendValue(nil, bson.D{{Key: "a", Value: 1}})
		if err != nil || string(got) != `{"a":1}` {
			t.Fatalf("after an error: %s, %v", got, err)
		}
	})
	t.Run("malformed raw value", func(t *testing.T) {
		for _, rv := range []bson.RawValue{
			{Type: bson.TypeInt64, Value: le64(5)[:7]},
			{Type: bson.TypeInt32, Value: le64(5)},
			{Type: 0x42, Value: nil},
		} {
			if _, err := (*Encoder)(nil).AppendValue(nil, rv); !errors.Is(err, ErrMalformedBSON) {
				t.Errorf("%v: err = %v, want ErrMalformedBSON", rv, err)
			}
		}
	})
}

// TestEncoderAllocs checks the steady state of the raw path: no
// allocation per document once dst has grown, in every format.
func TestEncoderAllocs(t *testing.T) {
	_, doc := benchDocument(t, 3)
	var all bson.D
	for i := range typeCases {
		all = append(all, bson.E{Key: typeCases[i].name, Value: typeCaseDoc(t, i).Lookup("v")})
	}
	docs := map[string][]byte{"user": doc, "every type": mustMarshal(t, all)}
	for name, doc := range docs {
		for _, enc := range []*Encoder{nil, {Format: FormatRelaxed}, {Format: FormatCanonical}, {EscapeHTML: true, Int64AsString: true}} {
			t.Run(fmt.Sprintf("%s/%+v", name, enc), func(t *testing.T) {
				buf := make([]byte, 0, 64<<10)
				allocs := testing.AllocsPerRun(100, func() {
					var err error
					buf, err = enc.AppendDocument(buf[:0], doc)
					if err != nil {
						t.Fatal(err)
					}
				})
				if allocs != 0 {
					t.Errorf("%v allocations per document, want 0", allocs)
				}
			})
		}
	}
}

// TestEncoderConcurrent shares one Encoder between goroutines, raw and
// typed, which the race detector checks (the pools are shared too).
func TestEncoderConcurrent(t *testing.T) {
	user, doc := benchDocument(t, 3)
	enc := &Encoder{Int64AsString: true}
	want, err := enc.AppendDocument(nil, doc)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		go func() {
			var buf []byte
			for i := 0; i < 200; i++ {
				var err error
				if i%2 == 0 {
					buf, err = enc.AppendDocument(buf[:0], doc)
				} else {
					buf, err = enc.AppendValue(buf[:0], &user)
				}
				if err == nil && !bytes.Equal(buf, want) {
					err = fmt.Errorf("iteration %d: got %s", i, buf)
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for g := 0; g < 8; g++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// flushRecorder records writes and flushes.
type flushRecorder struct {
	bytes.Buffer
	writes, flushes int
	failAfter       int // fail writes after this many; 0 never
}

func (f *flushRecorder) Write(p []byte) (int, error) {
	f.writes++
	if f.failAfter > 0 && f.writes > f.failAfter {
		return 0, errBrokenPipe
	}
	return f.Buffer.Write(p)
}

func (f *flushRecorder) Flush() { f.flushes++ }

var errBrokenPipe = errors.New("broken pipe")

func TestDocumentWriter(t *testing.T) {
	a := mustMarshal(t, bson.D{{Key: "a", Value: int32(1)}})
	b := mustMarshal(t, bson.D{{Key: "b", Value: testOID}})
	bad := []byte{1, 2, 3}
	type op struct {
		doc   []byte // raw document, or
		value any    // a typed value when doc is nil
		fails bool
	}
	cases := []struct {
		name   string
		ndjson bool
		ops    []op
		want   string
		count  int
	}{
		{"array empty", false, nil, `[]`, 0},
		{"array one", false, []op{{doc: a}}, `[{"a":1}]`, 1},
		{"array two", false, []op{{doc: a}, {doc: b}}, `[{"a":1},{"b":"5f1d7a2b9c8e4a3b2c1d0e0f"}]`, 2},
		{"array typed", false, []op{{value: bson.D{{Key: "t", Value: true}}}, {doc: a}}, `[{"t":true},{"a":1}]`, 2},
		{"array first fails", false, []op{{doc: bad, fails: true}, {doc: a}}, `[{"a":1}]`, 1},
		{"array only failures", false, []op{{doc: bad, fails: true}, {value: make(chan int), fails: true}}, `[]`, 0},
		{"array middle fails", false, []op{{doc: a}, {doc: nested(101), fails: true}, {doc: b}}, `[{"a":1},{"b":"5f1d7a2b9c8e4a3b2c1d0e0f"}]`, 2},
		{"array partial document removed", false, []op{{doc: a}, {doc: rawDoc(rawElem(0x10, "x", le32(1)), rawElem(0x08, "y", []byte{9})), fails: true}}, `[{"a":1}]`, 1},
		{"ndjson empty", true, nil, ``, 0},
		{"ndjson two", true, []op{{doc: a}, {doc: b}}, "{\"a\":1}\n{\"b\":\"5f1d7a2b9c8e4a3b2c1d0e0f\"}\n", 2},
		{"ndjson failure removed", true, []op{{doc: a}, {doc: bad, fails: true}, {value: bson.D{{Key: "c", Value: nil}}}}, "{\"a\":1}\n{\"c\":null}\n", 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out flushRecorder
			var dw *DocumentWriter
			if tc.ndjson {
				dw = (*Encoder)(nil).NewNDJSONWriter(&out)
			} else {
				dw = (*Encoder)(nil).NewArrayWriter(&out)
			}
			for i, o := range tc.ops {
				var err error
				if o.doc != nil {
					err = dw.WriteDocument(o.doc)
				} else {
					err = dw.WriteValue(o.value)
				}
				if (err != nil) != o.fails {
					t.Fatalf("op %d: err = %v, want failure %v", i, err, o.fails)
				}
			}
			if out.Len() != 0 || out.writes != 0 {
				t.Fatalf("wrote %q before Close", out.String())
			}
			if dw.Count() != tc.count {
				t.Errorf("Count = %d, want %d", dw.Count(), tc.count)
			}
			if err := dw.Close(); err != nil {
				t.Fatal(err)
			}
			if out.String() != tc.want {
				t.Errorf("got %q, want %q", out.String(), tc.want)
			}
			if out.flushes != 1 {
				t.Errorf("%d flushes on Close, want 1", out.flushes)
			}
			if tc.ndjson {
				checkNDJSON(t, out.Bytes(), tc.count)
			} else if !json.Valid(out.Bytes()) {
				t.Errorf("invalid JSON array %q", out.String())
			}
			// Close is idempotent and the writer refuses more work.
			if err := dw.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
			if err := dw.WriteDocument(a); !errors.Is(err, ErrWriterClosed) {
				t.Errorf("WriteDocument after Close: %v", err)
			}
			if err := dw.Flush(); !errors.Is(err, ErrWriterClosed) {
				t.Errorf("Flush after Close: %v", err)
			}
			if out.String() != tc.want || out.flushes != 1 {
				t.Errorf("output changed after Close: %q, %d flushes", out.String(), out.flushes)
			}
		})
	}
}

func checkNDJSON(t *testing.T, b []byte, n int) {
	t.Helper()
	lines := bytes.Split(b, []byte("\n"))
	if len(lines) != n+1 || len(lines[n]) != 0 {
		t.Fatalf("%d lines in %q, want %d each ended by a newline", len(lines)-1, b, n)
	}
	for _, l := range lines[:n] {
		if !json.Valid(l) {
			t.Errorf("invalid line %q", l)
		}
	}
}

func TestDocumentWriterFlush(t *testing.T) {
	a := mustMarshal(t, bson.D{{Key: "a", Value: int32(1)}})

	t.Run("explicit flush reaches an http.ResponseWriter", func(t *testing.T) {
		rec := httptest.NewRecorder()
		dw := (*Encoder)(nil).NewNDJSONWriter(rec)
		if err := dw.WriteDocument(a); err != nil {
			t.Fatal(err)
		}
		if rec.Body.Len() != 0 || rec.Flushed {
			t.Fatal("wrote before Flush")
		}
		if err := dw.Flush(); err != nil {
			t.Fatal(err)
		}
		if rec.Body.String() != "{\"a\":1}\n" || !rec.Flushed {
			t.Fatalf("after Flush: %q, flushed %v", rec.Body.String(), rec.Flushed)
		}
		if err := dw.Close(); err != nil {
			t.Fatal(err)
		}
		if rec.Body.String() != "{\"a\":1}\n" {
			t.Fatalf("after Close: %q", rec.Body.String())
		}
	})

	t.Run("flush reaches a wrapped http.ResponseWriter", func(t *testing.T) {
		rec := httptest.NewRecorder()
		dw := (*Encoder)(nil).NewArrayWriter(wrappedWriter{rec})
		if err := dw.WriteDocument(a); err != nil {
			t.Fatal(err)
		}
		if err := dw.Flush(); err != nil {
			t.Fatal(err)
		}
		if rec.Body.String() != `[{"a":1}` || !rec.Flushed {
			t.Fatalf("after Flush: %q, flushed %v", rec.Body.String(), rec.Flushed)
		}
		if err := dw.Close(); err != nil || rec.Body.String() != `[{"a":1}]` {
			t.Fatalf("after Close: %q, %v", rec.Body.String(), err)
		}
	})

	t.Run("a writer that cannot flush", func(t *testing.T) {
		var out bytes.Buffer
		dw := (*Encoder)(nil).NewArrayWriter(struct{ io.Writer }{&out})
		if err := dw.WriteDocument(a); err != nil {
			t.Fatal(err)
		}
		if err := dw.Flush(); err != nil || out.String() != `[{"a":1}` {
			t.Fatalf("after Flush: %q, %v", out.String(), err)
		}
		if err := dw.Close(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("writes out past the threshold", func(t *testing.T) {
		var out flushRecorder
		dw := (*Encoder)(nil).NewArrayWriter(&out)
		for out.writes == 0 {
			if err := dw.WriteDocument(a); err != nil {
				t.Fatal(err)
			}
			if dw.Count() > 10000 {
				t.Fatal("never wrote out")
			}
		}
		if out.Len() <= streamFlushThreshold || out.Len() > streamFlushThreshold+len(`,{"a":1}`) {
			t.Errorf("first write of %d bytes, want just over %d", out.Len(), streamFlushThreshold)
		}
		if out.flushes != 0 {
			t.Errorf("threshold write-outs flushed %d times, want 0", out.flushes)
		}
		n := dw.Count()
		if err := dw.Close(); err != nil {
			t.Fatal(err)
		}
		var docs []map[string]int
		if err := json.Unmarshal(out.Bytes(), &docs); err != nil || len(docs) != n {
			t.Fatalf("%d documents decoded, want %d (%v)", len(docs), n, err)
		}
	})

	t.Run("write errors are sticky", func(t *testing.T) {
		out := flushRecorder{failAfter: 1}
		dw := (*Encoder)(nil).NewNDJSONWriter(&out)
		_ = dw.WriteDocument(a)
		if err := dw.Flush(); err != nil {
			t.Fatal(err)
		}
		_ = dw.WriteDocument(a)
		if err := dw.Flush(); !errors.Is(err, errBrokenPipe) {
			t.Fatalf("Flush: %v, want the write error", err)
		}
		if err := dw.WriteDocument(a); !errors.Is(err, errBrokenPipe) {
			t.Errorf("WriteDocument after a failed write: %v", err)
		}
		if err := dw.Close(); !errors.Is(err, errBrokenPipe) {
			t.Errorf("Close: %v", err)
		}
		if err := dw.Close(); !errors.Is(err, errBrokenPipe) {
			t.Errorf("second Close: %v", err)
		}
		if out.String() != "{\"a\":1}\n" {
			t.Errorf("output %q", out.String())
		}
	})

	t.Run("encoder settings apply", func(t *testing.T) {
		var out bytes.Buffer
		dw := (&Encoder{Format: FormatCanonical}).NewArrayWriter(&out)
		if err := dw.WriteDocument(a); err != nil {
			t.Fatal(err)
		}
		if err := dw.Close(); err != nil {
			t.Fatal(err)
		}
		if want := `[{"a":{"$numberInt":"1"}}]`; out.String() != want {
			t.Errorf("got %s, want %s", out.String(), want)
		}
	})
}

// wrappedWriter is middleware's http.ResponseWriter: it hides the
// flusher but unwraps to it.
type wrappedWriter struct{ rw http.ResponseWriter }

func (w wrappedWriter) Header() http.Header         { return w.rw.Header() }
func (w wrappedWriter) Write(p []byte) (int, error) { return w.rw.Write(p) }
func (w wrappedWriter) WriteHeader(code int)        { w.rw.WriteHeader(code) }
func (w wrappedWriter) Unwrap() http.ResponseWriter { return w.rw }

// countingWriter counts bytes and the largest single write.
type countingWriter struct{ n, largest int }

func (c *countingWriter) Write(p []byte) (int, error) {
	c.n += len(p)
	c.largest = max(c.largest, len(p))
	return len(p), nil
}

// TestDocumentWriterBounded writes 100,000 documents and checks that the
// buffer never holds more than the threshold plus one document, and that
// writing a document allocates nothing.
func TestDocumentWriterBounded(t *testing.T) {
	_, doc := benchDocument(t, 3)
	one, err := (*Encoder)(nil).AppendDocument(nil, doc)
	if err != nil {
		t.Fatal(err)
	}
	for _, ndjson := range []bool{false, true} {
		t.Run(fmt.Sprintf("ndjson=%v", ndjson), func(t *testing.T) {
			var cw countingWriter
			dw := (*Encoder)(nil).NewArrayWriter(&cw)
			if ndjson {
				dw = (*Encoder)(nil).NewNDJSONWriter(&cw)
			}
			const n = 100000
			for i := 0; i < n; i++ {
				if err := dw.WriteDocument(doc); err != nil {
					t.Fatal(err)
				}
			}
			bound := streamFlushThreshold + len(one) + 1
			if dw.peak > bound {
				t.Errorf("buffer peaked at %d bytes, bound %d", dw.peak, bound)
			}
			if cap(dw.buf) > 2*bound {
				t.Errorf("buffer capacity %d, want at most %d", cap(dw.buf), 2*bound)
			}
			if cw.largest > bound {
				t.Errorf("largest write %d bytes, bound %d", cw.largest, bound)
			}
			allocs := testing.AllocsPerRun(1000, func() {
				if err := dw.WriteDocument(doc); err != nil {
					t.Fatal(err)
				}
			})
			if allocs != 0 {
				t.Errorf("%v allocations per WriteDocument, want 0", allocs)
			}
			total := n + 1001 // AllocsPerRun runs once more to warm up
			if err := dw.Close(); err != nil {
				t.Fatal(err)
			}
			if dw.Count() != total {
				t.Errorf("Count = %d, want %d", dw.Count(), total)
			}
			want := total * (len(one) + 1)
			if !ndjson {
				want++ // the brackets replace one separator
			}
			if cw.n != want {
				t.Errorf("wrote %d bytes, want %d", cw.n, want)
			}
		})
	}
}

// sameDocument compares two BSON documents by value and returns "" when
// they are the same. Array keys are not compared, NaN equals NaN (of any
// payload), decimals compare by canonical value, and regex options
// compare as sets of sorted letters: the differences Extended JSON does
// not keep.
func sameDocument(a, b []byte, array bool) string {
	ea, err := bson.Raw(a).Elements()
	if err != nil {
		return "first: " + err.Error()
	}
	eb, err := bson.Raw(b).Elements()
	if err != nil {
		return "second: " + err.Error()
	}
	if len(ea) != len(eb) {
		return fmt.Sprintf("%d elements vs %d", len(ea), len(eb))
	}
	for i := range ea {
		ka, kb := ea[i].Key(), eb[i].Key()
		if !array && ka != kb {
			return fmt.Sprintf("key %q vs %q", ka, kb)
		}
		va, vb := ea[i].Value(), eb[i].Value()
		if va.Type != vb.Type {
			return fmt.Sprintf("%q: type %v vs %v", ka, va.Type, vb.Type)
		}
		if msg := sameValue(va, vb); msg != "" {
			return fmt.Sprintf("%q: %s", ka, msg)
		}
	}
	return ""
}

func sameValue(va, vb bson.RawValue) string {
	switch va.Type {
	case bson.TypeDouble:
		fa, fb := va.Double(), vb.Double()
		if math.IsNaN(fa) && math.IsNaN(fb) || math.Float64bits(fa) == math.Float64bits(fb) {
			return ""
		}
		return fmt.Sprintf("%v vs %v", fa, fb)
	case bson.TypeEmbeddedDocument:
		return sameDocument(va.Value, vb.Value, false)
	case bson.TypeArray:
		return sameDocument(va.Value, vb.Value, true)
	case bson.TypeCodeWithScope:
		ca, sa := va.CodeWithScope()
		cb, sb := vb.CodeWithScope()
		if ca != cb {
			return fmt.Sprintf("code %q vs %q", ca, cb)
		}
		return sameDocument(sa, sb, false)
	case bson.TypeRegex:
		pa, oa := va.Regex()
		pb, ob := vb.Regex()
		if pa != pb || sortedString(oa) != sortedString(ob) {
			return fmt.Sprintf("/%s/%s vs /%s/%s", pa, oa, pb, ob)
		}
		return ""
	case bson.TypeDecimal128:
		ha, la := canonicalDecimal(va.Decimal128().GetBytes())
		hb, lb := canonicalDecimal(vb.Decimal128().GetBytes())
		if ha != hb || la != lb {
			return fmt.Sprintf("decimal %v vs %v", va.Decimal128(), vb.Decimal128())
		}
		return ""
	}
	if !bytes.Equal(va.Value, vb.Value) {
		return fmt.Sprintf("%v vs %v", va, vb)
	}
	return ""
}

func sortedString(s string) string {
	r := []rune(s)
	sort.Slice(r, func(i, j int) bool { return r[i] < r[j] })
	return string(r)
}

// canonicalDecimal maps decimal128 bits to a canonical encoding of the
// same value: one NaN, and zero for out-of-range coefficients.
func canonicalDecimal(h, l uint64) (uint64, uint64) {
	switch h >> 58 & 0x1F {
	case 0x1F:
		return 0x7c00000000000000, 0
	case 0x1E:
		return h & (1<<63 | 0x1F<<58), 0
	}
	sign := h & (1 << 63)
	if h>>61&3 == 3 {
		return sign | (h>>47&0x3FFF)<<49, 0
	}
	if !canonicalCoefficient(h, l) {
		return h &^ (1<<49 - 1), 0
	}
	return h, l
}

// extJSONKeeps reports whether Extended JSON can carry doc without loss:
// every string is UTF-8 and no key starts with '$' (such keys may spell a
// type wrapper). Malformed input is reported as not kept.
func extJSONKeeps(doc []byte) bool {
	elems, err := bson.Raw(doc).Elements()
	if err != nil {
		return false
	}
	for _, e := range elems {
		k := e.Key()
		if strings.HasPrefix(k, "$") || !utf8.ValidString(k) {
			return false
		}
		v := e.Value()
		switch v.Type {
		case bson.TypeString, bson.TypeJavaScript, bson.TypeSymbol:
			if !utf8.Valid(v.Value[4 : len(v.Value)-1]) {
				return false
			}
		case bson.TypeEmbeddedDocument, bson.TypeArray:
			if !extJSONKeeps(v.Value) {
				return false
			}
		case bson.TypeCodeWithScope:
			code, scope := v.CodeWithScope()
			if !utf8.ValidString(code) || !extJSONKeeps(scope) {
				return false
			}
		case bson.TypeRegex:
			p, o := v.Regex()
			if !utf8.ValidString(p) || !utf8.ValidString(o) {
				return false
			}
		case bson.TypeDBPointer:
			ns, _ := v.DBPointer()
			if !utf8.ValidString(ns) {
				return false
			}
		}
	}
	return true
}

// driverValid reports whether the driver reads doc into a bson.D and
// writes it back byte for byte: a definition of valid BSON independent of
// this encoder.
func driverValid(doc []byte) bool {
	var d bson.D
	if err := bson.Unmarshal(doc, &d); err != nil {
		return false
	}
	again, err := bson.Marshal(d)
	return err == nil && bytes.Equal(again, doc)
}

// fuzzSeeds are the documents every fuzz target starts from, beyond the
// committed corpus: every type case, the benchmark document, and some
// malformed ones.
func fuzzSeeds(tb testing.TB) [][]byte {
	var seeds [][]byte
	for i := range typeCases {
		seeds = append(seeds, typeCaseDoc(tb, i))
	}
	_, user := benchDocument(tb, 3)
	seeds = append(seeds, user, nested(8), rawDoc(), []byte{}, []byte{5, 0, 0, 0}, rawDoc(rawElem(0x08, "b", []byte{2})))
	return seeds
}

// FuzzEncodeDocument feeds arbitrary bytes to every format: the encoder
// must return valid JSON or an error wrapping ErrMalformedBSON or
// ErrMaxDepth, never panic, and keep dst's prefix. Input the driver reads
// and writes back unchanged must be accepted.
func FuzzEncodeDocument(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	encoders := []*Encoder{nil, {Format: FormatRelaxed}, {Format: FormatCanonical}, {EscapeHTML: true, Int64AsString: true, MaxDepth: 4}, {Format: FormatRelaxed, Int64AsString: true, EscapeHTML: true}}
	f.Fuzz(func(t *testing.T, data []byte) {
		valid := -1 // driverValid, computed on the first error only: it is slow
		for _, enc := range encoders {
			out, err := enc.AppendDocument([]byte("[1,"), data)
			if !bytes.HasPrefix(out, []byte("[1,")) {
				t.Fatalf("%+v: prefix lost: %q", enc, out)
			}
			if err != nil {
				if !errors.Is(err, ErrMalformedBSON) && !errors.Is(err, ErrMaxDepth) {
					t.Fatalf("%+v: error %v wraps neither sentinel", enc, err)
				}
				if valid < 0 {
					valid = 0
					if driverValid(data) {
						valid = 1
					}
				}
				if valid == 1 && !errors.Is(err, ErrMaxDepth) {
					t.Fatalf("%+v: driver-valid document %q refused: %v", enc, data, err)
				}
				continue
			}
			if !json.Valid(out[3:]) {
				t.Fatalf("%+v: invalid JSON %q from %q", enc, out[3:], data)
			}
		}
	})
}

// FuzzExtJSONRoundTrip checks that the Extended JSON of any document the
// encoder accepts reads back with bson.UnmarshalExtJSON as the same
// document (canonical), and that relaxed output is stable through a round
// trip.
func FuzzExtJSONRoundTrip(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	canonical := &Encoder{Format: FormatCanonical}
	relaxed := &Encoder{Format: FormatRelaxed}
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := canonical.AppendDocument(nil, data)
		if err != nil {
			if driverValid(data) && !errors.Is(err, ErrMaxDepth) {
				t.Fatalf("driver-valid document refused: %v", err)
			}
			return
		}
		if !extJSONKeeps(data) {
			return // outside what Extended JSON can carry; FuzzEncodeDocument covers it
		}
		var back bson.Raw
		if err := bson.UnmarshalExtJSON(out, true, &back); err != nil {
			t.Fatalf("UnmarshalExtJSON(%s): %v", out, err)
		}
		if msg := sameDocument(data, back, false); msg != "" {
			t.Fatalf("canonical round trip of %q through %s: %s", data, out, msg)
		}

		rel, err := relaxed.AppendDocument(nil, data)
		if err != nil {
			t.Fatalf("relaxed refused what canonical accepted: %v", err)
		}
		var relBack bson.Raw
		if err := bson.UnmarshalExtJSON(rel, false, &relBack); err != nil {
			t.Fatalf("UnmarshalExtJSON(%s): %v", rel, err)
		}
		again, err := relaxed.AppendDocument(nil, relBack)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, rel) {
			t.Fatalf("relaxed round trip changed\n%s\nto\n%s", rel, again)
		}
	})
}

// FuzzDecimal128 compares decimal128 formatting with the driver's for
// canonical values and checks the result parses back to the same value.
func FuzzDecimal128(f *testing.F) {
	for _, s := range []string{"0", "-0", "1.23", "1E+3", "1.0E-10", "NaN", "-Infinity", "9999999999999999999999999999999999"} {
		h, l := mustDecimal(s).GetBytes()
		f.Add(h, l)
	}
	f.Add(uint64(0x6c11800000000000), uint64(0))
	f.Fuzz(func(t *testing.T, h, l uint64) {
		got := string(appendDecimal128(nil, h, l))
		if canonicalCoefficient(h, l) {
			if want := bson.NewDecimal128(h, l).String(); got != want {
				t.Fatalf("%#x %#x: got %s, driver %s", h, l, got, want)
			}
		}
		d, err := bson.ParseDecimal128(got)
		if err != nil {
			t.Fatalf("%#x %#x: %s does not parse: %v", h, l, got, err)
		}
		ph, pl := canonicalDecimal(d.GetBytes())
		wh, wl := canonicalDecimal(h, l)
		if ph != wh || pl != wl {
			t.Fatalf("%#x %#x: %s parses as %#x %#x", h, l, got, ph, pl)
		}
	})
}

// FuzzDateTime compares dates with the time package for any int64.
func FuzzDateTime(f *testing.F) {
	for _, ms := range []int64{0, -1, 1704067200123, 253402300800000, -62167219200001, math.MaxInt64, math.MinInt64} {
		f.Add(ms)
	}
	f.Fuzz(func(t *testing.T, ms int64) {
		if got, want := string(appendISODate(nil, ms, false)), isoDate(ms); got != want {
			t.Fatalf("%d: got %s, want %s", ms, got, want)
		}
	})
}

// FuzzDouble compares doubles with encoding/json (plain) and the driver
// (Extended JSON).
func FuzzDouble(f *testing.F) {
	for _, v := range []float64{0, 1, -1.5, 19.99, math.Nextafter(0.3, 1), 1e21, 1e-7, 123456.7, math.MaxFloat64, math.NaN()} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v float64) {
		checkDouble(t, v)
	})
}

// FuzzEscapeString compares string escaping with encoding/json.
func FuzzEscapeString(f *testing.F) {
	for _, s := range []string{"", "plain", "a\"b\\c", "\x00\x1f\n", "<&>", "é€𝄞", "\u2028\u2029", "\xff\xc3(", "abcdefgh\x01ijklmnop"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkEscaping(t, s)
	})
}

// Benchmarks compare this encoder with the usual ways of serving MongoDB
// documents as JSON, on the same document:
//
//	go test -run '^$' -bench Encode -benchmem -count 5 .
func BenchmarkEncode(b *testing.B) {
	for _, size := range []struct {
		name   string
		orders int
	}{{"1KB", 3}, {"16KB", 105}} {
		user, doc := benchDocument(b, size.orders)
		b.Run(size.name, func(b *testing.B) {
			for _, enc := range []struct {
				name string
				enc  *Encoder
			}{
				{"mongohttp-plain", nil},
				{"mongohttp-relaxed", &Encoder{Format: FormatRelaxed}},
				{"mongohttp-canonical", &Encoder{Format: FormatCanonical}},
			} {
				b.Run(enc.name, func(b *testing.B) {
					b.SetBytes(int64(len(doc)))
					b.ReportAllocs()
					buf := make([]byte, 0, 4*len(doc)) // the steady state of a reused buffer
					for b.Loop() {
						var err error
						buf, err = enc.enc.AppendDocument(buf[:0], doc)
						if err != nil {
							b.Fatal(err)
						}
					}
				})
			}
			b.Run("mongohttp-typed", func(b *testing.B) {
				b.SetBytes(int64(len(doc)))
				b.ReportAllocs()
				buf := make([]byte, 0, 4*len(doc))
				for b.Loop() {
					var err error
					buf, err = (*Encoder)(nil).AppendValue(buf[:0], &user)
					if err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("marshalExtJSON-relaxed", func(b *testing.B) {
				b.SetBytes(int64(len(doc)))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := bson.MarshalExtJSON(doc, false, false); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("bsonM-json", func(b *testing.B) {
				b.SetBytes(int64(len(doc)))
				b.ReportAllocs()
				for b.Loop() {
					var m bson.M
					if err := bson.Unmarshal(doc, &m); err != nil {
						b.Fatal(err)
					}
					if _, err := json.Marshal(m); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("struct-json", func(b *testing.B) {
				b.SetBytes(int64(len(doc)))
				b.ReportAllocs()
				for b.Loop() {
					var u benchUser
					if err := bson.Unmarshal(doc, &u); err != nil {
						b.Fatal(err)
					}
					if _, err := json.Marshal(&u); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// BenchmarkDocumentWriter measures streaming documents as NDJSON.
func BenchmarkDocumentWriter(b *testing.B) {
	_, doc := benchDocument(b, 3)
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	dw := (*Encoder)(nil).NewNDJSONWriter(io.Discard)
	defer dw.Close()
	for b.Loop() {
		if err := dw.WriteDocument(doc); err != nil {
			b.Fatal(err)
		}
	}
}
