package mongohttp

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
	"unsafe"

	"github.com/mongohttp/mongohttp/internal/jsonlex"
	"github.com/mongohttp/mongohttp/internal/rawbson"
	"go.mongodb.org/mongo-driver/v2/bson"
)

func bodyTestSchema(t testing.TB) writeSchema {
	t.Helper()
	qp, err := NewQueryParser(Policy{
		Hidden: []string{"secret"},
		Write: map[string]Type{
			"title": String, "n": Int, "f": Float, "ok": Bool, "when": Date, "ref": ObjectID,
			"tags": ArrayOf(String), "ids": ArrayOf(ObjectID), "a.b.c": String, "a.x": Int,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return qp.write
}

func TestDecodeBody(t *testing.T) {
	w := bodyTestSchema(t)
	oid := "65f0a1b2c3d4e5f6a7b8c9d0"
	tests := []struct {
		name  string
		body  string
		patch bool
		want  string // Extended JSON of the document, or "" for an error
		code  string // the error's code, or the first field error's code
	}{
		{"types", `{"title":"x","n":3,"f":1.5,"ok":true,"when":"2024-05-01","ref":"` + oid + `"}`, false,
			`{"title":"x","n":{"$numberInt":"3"},"f":{"$numberDouble":"1.5"},"ok":true,"when":{"$date":{"$numberLong":"1714521600000"}},"ref":{"$oid":"` + oid + `"}}`, ""},
		{"big int is int64", `{"n":9007199254740991}`, false, `{"n":{"$numberLong":"9007199254740991"}}`, ""},
		{"exact past a double", `{"n":-9007199254740.9910e3}`, false, `{"n":{"$numberLong":"-9007199254740991"}}`, ""},
		{"exponent", `{"n":12E+2}`, false, `{"n":{"$numberInt":"1200"}}`, ""},
		{"zero with a tiny exponent", `{"n":0.0e-400}`, false, `{"n":{"$numberInt":"0"}}`, ""},
		{"beyond the safe integers", `{"n":9007199254740993}`, false, "", "invalid_value"},
		{"beyond the safe integers, as a fraction", `{"n":9007199254740992.0}`, false, "", "invalid_value"},
		{"underflow", `{"n":1e-400}`, false, "", "invalid_value"},
		{"float underflow", `{"f":1e-400}`, false, "", "invalid_value"},
		{"float rounded to a whole number", `{"f":2.00000000000000001}`, false, "", "invalid_value"},
		{"float as a double holds it", `{"f":0.30000000000000004}`, false, `{"f":{"$numberDouble":"0.30000000000000004"}}`, ""},
		{"smallest float", `{"f":5e-324}`, false, `{"f":{"$numberDouble":"5E-324"}}`, ""},
		{"fraction a double rounds", `{"n":1.0000000000000000001}`, false, "", "invalid_value"},
		{"huge exponent", `{"n":1e999999999999999999999}`, false, "", "invalid_value"},
		{"integral float is int", `{"n":3.0}`, false, `{"n":{"$numberInt":"3"}}`, ""},
		{"wrapped", `{"ref":{"$oid":"` + oid + `"},"when":{"$date":0}}`, false,
			`{"ref":{"$oid":"` + oid + `"},"when":{"$date":{"$numberLong":"0"}}}`, ""},
		{"arrays", `{"tags":["a","b"],"ids":["` + oid + `"]}`, false, `{"tags":["a","b"],"ids":[{"$oid":"` + oid + `"}]}`, ""},
		{"nested", `{"a":{"b":{"c":"deep"},"x":1}}`, false, `{"a":{"b":{"c":"deep"},"x":{"$numberInt":"1"}}}`, ""},
		{"empty object", `{}`, false, `{}`, ""},
		{"unknown", `{"zzz":1}`, false, "", "not_writable"},
		{"hidden", `{"secret":"x"}`, false, "", "not_writable"},
		{"id", `{"_id":"x"}`, false, "", "not_writable"},
		{"dollar", `{"$set":{}}`, false, "", "not_writable"},
		{"dollar nested", `{"a":{"$gt":1}}`, false, "", "not_writable"},
		{"dotted", `{"a.x":1}`, false, "", "not_writable"},
		{"empty key", `{"":1}`, false, "", "not_writable"},
		{"object for leaf", `{"title":{"x":1}}`, false, "", "invalid_type"},
		{"leaf for object", `{"a":1}`, false, "", "invalid_type"},
		{"string for int", `{"n":"1"}`, false, "", "invalid_type"},
		{"fraction", `{"n":1.5}`, false, "", "invalid_value"},
		{"overflow", `{"n":1e19}`, false, "", "invalid_value"},
		{"nan-ish", `{"f":1e400}`, false, "", "invalid_value"},
		{"bad oid", `{"ref":"zz"}`, false, "", "invalid_object_id"},
		{"bad wrapped oid", `{"ref":{"$oid":"zz"}}`, false, "", "invalid_object_id"},
		{"extra wrapper key", `{"ref":{"$oid":"` + oid + `","x":1}}`, false, "", "invalid_object_id"},
		{"date year 10000", `{"when":"10000-01-01T00:00:00Z"}`, false, "", "invalid_value"},
		{"date ms out of range", `{"when":{"$date":-9223372036854775808}}`, false, "", "invalid_value"},
		{"nul", "{\"title\":\"a\\u0000\"}", false, "", "invalid_value"},
		{"null on insert", `{"title":null}`, false, "", "invalid_type"},
		{"null in patch", `{"title":null,"a":null}`, true, "", ""},
		{"duplicate", `{"n":1,"n":2}`, false, "", "invalid_body"},
		{"not object", `[1]`, false, "", "invalid_body"},
		{"trailing", `{} x`, false, "", "invalid_body"},
		{"truncated", `{"n":`, false, "", "invalid_body"},
		{"empty", ``, false, "", "invalid_body"},
		{"deep skip", `{"zzz":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, false, "", "invalid_body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := w.decodeBody([]byte(tt.body), tt.patch)
			if tt.name == "null in patch" {
				if err != nil || len(doc) != 2 || doc[0].Value != (remove{}) || doc[1].Value != (remove{}) {
					t.Fatalf("patch nulls: %v %v", doc, err)
				}
				return
			}
			if tt.want != "" {
				if err != nil {
					t.Fatal(err)
				}
				got, err := bson.MarshalExtJSON(doc, true, false)
				if err != nil {
					t.Fatal(err)
				}
				if string(got) != tt.want {
					t.Fatalf("got  %s\nwant %s", got, tt.want)
				}
				return
			}
			var ve *ValidationError
			switch {
			case errors.As(err, &ve):
				if ve.Fields[0].Code != tt.code {
					t.Fatalf("field errors %+v, want %s", ve.Fields, tt.code)
				}
			case AsError(err).Code != tt.code:
				t.Fatalf("error %v, want %s", err, tt.code)
			}
		})
	}
}

func TestWritePolicyChecks(t *testing.T) {
	for _, p := range []Policy{
		{Write: map[string]Type{"_id": ObjectID}},
		{Write: map[string]Type{"a": String, "a.b": String}},
		{Write: map[string]Type{"secret.x": String}, Hidden: []string{"secret"}},
		{Write: map[string]Type{"a": ArrayOf(ArrayOf(String))}},
		{Write: map[string]Type{"a": Type(99)}},
		{Write: map[string]Type{"$x": String}},
		{Filter: map[string]Type{"a": ArrayOf(String)}},
	} {
		if _, err := NewQueryParser(p); err == nil {
			t.Errorf("NewQueryParser(%+v) accepted a bad write policy", p)
		}
	}
}

// FuzzDecodeBody checks that any body either fails with a 400 *Error or a
// *ValidationError, or yields a document of writable fields only, with
// values of their declared BSON types, that the driver can encode.
func FuzzDecodeBody(f *testing.F) {
	w := bodyTestSchema(f)
	for _, s := range []string{
		`{"title":"x","n":3,"tags":["a"],"a":{"b":{"c":"d"}}}`,
		`{"ref":{"$oid":"65f0a1b2c3d4e5f6a7b8c9d0"},"when":{"$date":"2024-01-01"}}`,
		`{"n":1e3,"f":-0.5,"ok":false,"a":{"x":null}}`,
		`{"zzz":[{"$where":1}],"title":"x","title":"y"}`,
		`{"title":"\ud800"}`, `{"title":"\udc00\ud800"}`, `{"title":"\\ud800\ufffd"}`, "{\"title\":\"\xed\xa0\x80\"}",
		"{\"title\":\"\xff\"}", "{\"tags\":[\"a\xc3\"]}", "{\"\xc0\xaf\":1}",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, body string, patch bool) {
		doc, err := w.decodeBody([]byte(body), patch)
		checkSyntaxVerdict(t, body, err)
		if err != nil {
			var ve *ValidationError
			if errors.As(err, &ve) {
				if len(ve.Fields) == 0 || len(ve.Fields) > maxBodyErrors {
					t.Fatalf("%d field errors", len(ve.Fields))
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Status != 400 {
				t.Fatalf("error %v is neither a 400 nor a validation error", err)
			}
			return
		}
		checkWritable(t, w, doc, "", patch)
		want, err := bson.Marshal(stripRemovals(doc))
		if err != nil {
			t.Fatalf("accepted document does not marshal: %v", err)
		}
		if got, err := rawbson.MarshalD(stripRemovals(doc)); err != nil || string(got) != string(want) {
			t.Fatalf("marshalD gave %v, %v; bson.Marshal %v", bson.Raw(got), err, bson.Raw(want))
		}
	})
}

// checkSyntaxVerdict checks the body decoder's lexer against encoding/json:
// a body that is not JSON is a 400 invalid_body, and a JSON body is one
// only for the decoder's own limits (not an object, a key twice, too deep).
func checkSyntaxVerdict(t *testing.T, body string, err error) {
	t.Helper()
	var e *Error
	isSyntax := errors.As(err, &e) && e.Code == "invalid_body"
	if !json.Valid([]byte(body)) {
		if !isSyntax {
			t.Fatalf("%q is not JSON, but decoding gave %v", body, err)
		}
		return
	}
	// encoding/json takes strings that are not text, as U+FFFD; the
	// decoder refuses them, and only them, for that reason.
	text := !notText(body)
	if !text && !isSyntax {
		t.Fatalf("%q is not UTF-8 text, but decoding gave %v", body, err)
	}
	if isSyntax {
		if !text && strings.Contains(e.Detail, "UTF-8") {
			return
		}
		for _, limit := range []string{"must be a JSON object", "twice", "nested more than"} {
			if strings.Contains(e.Detail, limit) {
				return
			}
		}
		t.Fatalf("%q is JSON, but decoding gave %v (%s)", body, err, e.Detail)
	}
}

// notText reports whether a JSON document has invalid UTF-8 or a string
// whose escapes leave a surrogate unpaired. It asks encoding/json, which
// turns each such place into U+FFFD, and counts the U+FFFD the document
// itself holds, as a character or as an escape.
func notText(body string) bool {
	if !utf8.ValidString(body) {
		return true
	}
	sent := strings.Count(body, "\uFFFD")
	for _, esc := range jsonEscape.FindAllString(body, -1) {
		if strings.EqualFold(esc, `\ufffd`) {
			sent++
		}
	}
	got := 0
	dec := json.NewDecoder(strings.NewReader(body))
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		if s, ok := tok.(string); ok {
			got += strings.Count(s, "\uFFFD")
		}
	}
	return got != sent
}

// jsonEscape matches the escapes of JSON strings, left to right.
var jsonEscape = regexp.MustCompile(`\\(?:u[0-9a-fA-F]{4}|[^u])`)

func checkWritable(t *testing.T, w writeSchema, doc bson.D, prefix string, patch bool) {
	for _, e := range doc {
		path := e.Key
		if prefix != "" {
			path = prefix + "." + e.Key
		}
		if _, ok := e.Value.(remove); ok {
			if !patch {
				t.Fatalf("removal of %s outside a patch", path)
			}
			continue
		}
		if sub, ok := e.Value.(bson.D); ok {
			if !w.objects[path] {
				t.Fatalf("object at %s, which is not a writable object", path)
			}
			checkWritable(t, w, sub, path, patch)
			continue
		}
		typ, ok := w.leaves[path]
		if !ok {
			t.Fatalf("accepted field %s is not writable", path)
		}
		if elem, isArray := typ.elem(); isArray {
			a, ok := e.Value.(bson.A)
			if !ok {
				t.Fatalf("%s is %T, want an array", path, e.Value)
			}
			for _, v := range a {
				checkType(t, path, elem, v)
			}
			continue
		}
		checkType(t, path, typ, e.Value)
	}
}

func checkType(t *testing.T, path string, typ Type, v any) {
	ok := false
	switch typ {
	case String:
		s, isString := v.(string)
		ok = isString && !strings.Contains(s, "\x00")
	case Int:
		switch v.(type) {
		case int32, int64:
			ok = true
		}
	case Float:
		_, ok = v.(float64)
	case Bool:
		_, ok = v.(bool)
	case Date:
		d, isDate := v.(bson.DateTime)
		ok = isDate && checkDateRange(d) == nil
	case ObjectID:
		_, ok = v.(bson.ObjectID)
	}
	if !ok {
		t.Fatalf("%s holds %T %v, not a %s", path, v, v, typ)
	}
}

func stripRemovals(d bson.D) bson.D {
	out := bson.D{}
	for _, e := range d {
		switch v := e.Value.(type) {
		case remove:
		case bson.D:
			out = append(out, bson.E{Key: e.Key, Value: stripRemovals(v)})
		default:
			out = append(out, e)
		}
	}
	return out
}

// TestBodySyntax checks the lexer's verdict and offsets on the JSON edge
// cases encoding/json decides one way or the other.
func TestBodySyntax(t *testing.T) {
	w := bodyTestSchema(t)
	for _, body := range []string{
		`{"title":"x"}`, ` {"title" : "x" } `, `{"n":-0}`, `{"n":1E+2}`, `{"f":0.5e-3}`,
		`{"title":"\u00e9\ud83d\ude00\/\b\f\n\r\t\\\""}`, `{"title":"\ud800"}`, `{"title":"\ud800\u0041"}`,
		"{\"title\":\"\xff\"}", `{"tags":[]}`, `{"tags":["a", "b"]}`, `{"a":{}}`,
		`{"n":01}`, `{"n":1.}`, `{"n":.5}`, `{"n":-}`, `{"n":1e}`, `{"n":+1}`, `{"n":0x1}`,
		`{"title":"x",}`, `{,"title":"x"}`, `{"title" "x"}`, `{"title":"x" "n":1}`, `{"tags":[1,]}`,
		`{"tags":[,1]}`, `{"ok":tru}`, `{"ok":nul}`, `{"ok":True}`, "{\"title\":\"a\tb\"}",
		`{"title":"\x"}`, `{"title":"\u12g4"}`, `{"title":"\u12`, `{"title":"x`, `{"title"`, `{`,
		`{"tags":[1}`, `{"a":{"b":1]}`, `{} {}`, `{}]`, `[]`, `"x"`, `null`, ``, `   `,
	} {
		t.Run(body, func(t *testing.T) {
			_, err := w.decodeBody([]byte(body), false)
			checkSyntaxVerdict(t, body, err)
		})
	}
	// Offsets point at the offending byte, as encoding/json's do.
	for _, tt := range []struct {
		body string
		want string
	}{
		{`{"title": "x" "n": 1}`, "at byte 14"},
		{`{"n":01}`, "at byte 6"},
		{`{"title":"x"`, "at byte 12"},
		{`{} x`, "at byte 3"},
	} {
		_, err := w.decodeBody([]byte(tt.body), false)
		var e *Error
		if !errors.As(err, &e) || !strings.Contains(e.Detail, tt.want) {
			t.Errorf("%s: %v, want detail with %q", tt.body, err, tt.want)
		}
	}
}

// TestBodyPointers checks the JSON pointers of failing fields, built only
// when a field fails.
func TestBodyPointers(t *testing.T) {
	w := bodyTestSchema(t)
	_, err := w.decodeBody([]byte(`{"a":{"b":{"c":1}},"tags":["x",2],"ids":["zz"],"a~/b":1}`), false)
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("got %v, want a validation error", err)
	}
	var got []string
	for _, f := range ve.Fields {
		got = append(got, f.Pointer+" "+f.Code)
	}
	want := []string{"/a/b/c invalid_type", "/tags/1 invalid_type", "/ids/0 invalid_object_id", "/a~0~1b not_writable"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("fields %q, want %q", got, want)
	}
	// Strings with escapes decode as encoding/json decodes them.
	doc, err := w.decodeBody([]byte(`{"title":"\u00e9\ud83d\ude00\ufffdx\"","tags":["\/"]}`), false)
	if err != nil {
		t.Fatal(err)
	}
	if got := doc[0].Value; got != "é😀\uFFFDx\"" {
		t.Errorf("title %q", got)
	}
	if got := doc[1].Value.(bson.A)[0]; got != "/" {
		t.Errorf("tag %q", got)
	}
}

// TestDecodeBodyKeepsNoCopyOfKnownKeys checks that the keys of a decoded
// body are the schema's own strings, not copies of the body's bytes, and
// that nothing else changes: a key the schema does not know is still
// refused, an escaped spelling of a known key still read.
func TestDecodeBodyKeepsNoCopyOfKnownKeys(t *testing.T) {
	w := bodyTestSchema(t)
	if _, err := w.decodeBody([]byte(`{"title":"x","a":{"b":{"c":"y"}},"n\u0031":1}`), false); err == nil {
		t.Fatal("an unknown key (n1) was accepted")
	}
	doc, err := w.decodeBody([]byte(`{"title":"x","a":{"b":{"c":"y"}},"\u006e":1}`), false)
	if err != nil {
		t.Fatal(err)
	}
	same := func(a, b string) bool { return len(a) == len(b) && unsafe.StringData(a) == unsafe.StringData(b) }
	if len(doc) != 3 || !same(doc[0].Key, w.keys["title"]) || !same(doc[1].Key, w.keys["a"]) {
		t.Fatalf("keys %v are not the schema's strings", doc)
	}
	if doc[2].Key != "n" {
		t.Errorf("the escaped key reads %q, want n", doc[2].Key)
	}
	inner := doc[1].Value.(bson.D)[0]
	if !same(inner.Key, w.keys["b"]) || !same(inner.Value.(bson.D)[0].Key, w.keys["c"]) {
		t.Errorf("nested keys %v are not the schema's strings", inner)
	}
	d := &bodyDecoder{w: w}
	if p := d.path("a.b", "c"); !same(p, w.paths["a.b.c"]) {
		t.Errorf("path a.b + c = %q, not the schema's string", p)
	}
	if p := d.path("a", "zz"); p != "a.zz" {
		t.Errorf("path a + zz = %q, want a.zz", p)
	}
}

// keysBody is a body of n distinct keys no policy writes: the input that
// made duplicate detection quadratic.
func keysBody(n int) []byte {
	b := make([]byte, 0, n*12)
	b = append(b, '{')
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = fmt.Appendf(b, `"k%d":0`, i)
	}
	return append(b, '}')
}

// itemsBody is a body whose array field holds n items.
func itemsBody(n int) []byte {
	b := append(make([]byte, 0, n*4), `{"tags":[`...)
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = fmt.Appendf(b, `"%d"`, i%10)
	}
	return append(b, "]}"...)
}

// bodySizes are the sizes of the cost tests and benchmarks.
var bodySizes = []struct {
	name string
	n    int
}{{"1k", 1000}, {"10k", 10000}, {"100k", 100000}}

// TestDecodeBodyCostIsLinear counts the work of duplicate detection (key
// comparisons and map look-ups) over bodies of growing key counts: it
// must grow with the keys, not with their square. A nested object holds
// as many keys again.
func TestDecodeBodyCostIsLinear(t *testing.T) {
	w := bodyTestSchema(t)
	for _, size := range bodySizes {
		for _, nested := range []bool{false, true} {
			body := keysBody(size.n)
			if nested {
				body = append(append([]byte(`{"a":{"b":`), body...), "}}"...)
			}
			d := &bodyDecoder{w: w, lex: jsonlex.New(body, w.keys)}
			_, err := d.decode()
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Fields) != maxBodyErrors || ve.Fields[0].Code != "not_writable" {
				t.Fatalf("%s keys: %v, want %d not_writable errors", size.name, err, maxBodyErrors)
			}
			// Up to smallKeySet comparisons for each of the first keys,
			// then one look-up per key.
			if limit := smallKeySet*smallKeySet + 2*size.n; d.probes > limit {
				t.Errorf("%s keys (nested %v): %d probes, want at most %d", size.name, nested, d.probes, limit)
			}
		}
	}
}

// TestDecodeBodyAllocationsAreLinear: the allocations of a body grow with
// its keys or items, the same per key at 100k as at 1k.
func TestDecodeBodyAllocationsAreLinear(t *testing.T) {
	w := bodyTestSchema(t)
	for _, kind := range []struct {
		name string
		body func(int) []byte
	}{{"keys", keysBody}, {"items", itemsBody}} {
		var perItem []float64
		for _, size := range bodySizes {
			body := kind.body(size.n)
			allocs := testing.AllocsPerRun(2, func() { _, _ = w.decodeBody(body, false) })
			perItem = append(perItem, allocs/float64(size.n))
		}
		if perItem[2] > 1.5*perItem[0]+0.1 {
			t.Errorf("%s: allocations per item %.2f at 1k, %.2f at 100k; want about the same", kind.name, perItem[0], perItem[2])
		}
	}
}

// BenchmarkDecodeBodyKeys decodes bodies of 1k, 10k and 100k distinct keys
// (refused, 422): the time per key must stay flat.
func BenchmarkDecodeBodyKeys(b *testing.B) { benchmarkDecodeBody(b, keysBody, "key", true) }

// BenchmarkDecodeBodyItems decodes arrays of as many items (accepted).
func BenchmarkDecodeBodyItems(b *testing.B) { benchmarkDecodeBody(b, itemsBody, "item", false) }

func benchmarkDecodeBody(b *testing.B, makeBody func(int) []byte, unit string, refused bool) {
	w := bodyTestSchema(b)
	for _, size := range bodySizes {
		body := makeBody(size.n)
		b.Run(size.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := w.decodeBody(body, false); (err != nil) != refused {
					b.Fatalf("refused %v, want %v: %v", err != nil, refused, err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(size.n), "ns/"+unit)
		})
	}
}
