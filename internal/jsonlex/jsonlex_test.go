package jsonlex

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
	"unsafe"
)

// lex reads one JSON text to its end as the body decoder does: tokens until
// the top-level value is complete, then End. It returns the tokens in the
// shape encoding/json's Decoder.Token gives them.
func lex(data []byte, keys map[string]string) ([]string, error) {
	l := New(data, keys)
	var out []string
	depth := 0
	for {
		tok, err := l.Next()
		if err != nil {
			return out, err
		}
		out = append(out, show(tok))
		switch tok.Kind {
		case ObjectStart, ArrayStart:
			depth++
		case ObjectEnd, ArrayEnd:
			depth--
		}
		if depth == 0 {
			return out, l.End()
		}
	}
}

func show(tok Token) string {
	switch tok.Kind {
	case ObjectStart:
		return "{"
	case ObjectEnd:
		return "}"
	case ArrayStart:
		return "["
	case ArrayEnd:
		return "]"
	case String:
		return fmt.Sprintf("string %q", tok.Text)
	case Number:
		return "number " + tok.Text
	case True:
		return "true"
	case False:
		return "false"
	case Null:
		return "null"
	}
	return fmt.Sprintf("kind %d", tok.Kind)
}

// decode is the same walk with encoding/json, the reference.
func decode(data []byte) ([]string, error) {
	if !json.Valid(data) {
		var v any
		return nil, json.Unmarshal(data, &v)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var out []string
	for {
		t, err := dec.Token()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		switch v := t.(type) {
		case json.Delim:
			out = append(out, v.String())
		case string:
			out = append(out, fmt.Sprintf("string %q", v))
		case json.Number:
			out = append(out, "number "+v.String())
		case bool:
			out = append(out, fmt.Sprint(v))
		case nil:
			out = append(out, "null")
		}
	}
}

// isText reports whether the JSON data, whose tokens encoding/json gave
// as tokens, is UTF-8 text: each U+FFFD in its strings was sent, as the
// character or as an escape, and none stands for an invalid byte or an
// unpaired surrogate.
func isText(data []byte, tokens []string) bool {
	if !utf8.Valid(data) {
		return false
	}
	sent := bytes.Count(data, []byte("\uFFFD"))
	for _, esc := range escapes.FindAll(data, -1) {
		if bytes.EqualFold(esc, []byte(`\ufffd`)) {
			sent++
		}
	}
	return strings.Count(strings.Join(tokens, ""), "\uFFFD") == sent
}

// escapes matches the escapes of JSON strings, left to right.
var escapes = regexp.MustCompile(`\\(?:u[0-9a-fA-F]{4}|[^u])`)

// check compares the lexer with encoding/json on data: the same verdict,
// the same tokens for valid JSON, and for invalid JSON an error at an
// offset within the data, truncated when encoding/json reports the end of
// the input and only when it finds the fault at the end.
func check(t *testing.T, data []byte) {
	t.Helper()
	got, err := lex(data, map[string]string{"a": "a", "title": "title"})
	want, werr := decode(data)
	// encoding/json reads invalid UTF-8 and lone surrogates as U+FFFD; the
	// lexer refuses them, where they are, maybe before a fault further on
	// that encoding/json reports.
	if werr == nil && !isText(data, want) && (err == nil || !strings.Contains(err.Error(), "UTF-8")) {
		t.Fatalf("%q is not UTF-8 text, but the lexer gave %v", data, err)
	}
	if se := (*SyntaxError)(nil); errors.As(err, &se) && strings.Contains(se.msg, "UTF-8") {
		at := data[se.Offset:]
		r, size := utf8.DecodeRune(at)
		surrogate := len(at) >= 6 && at[0] == '\\' && at[1] == 'u' && strings.IndexByte("dD", at[2]) >= 0 && strings.IndexByte("89abcdefABCDEF", at[3]) >= 0
		if !(r == utf8.RuneError && size == 1) && !surrogate {
			t.Fatalf("%q: %v, but offset %d holds neither an invalid byte nor a surrogate escape", data, err, se.Offset)
		}
		return
	}
	if (err == nil) != (werr == nil) {
		t.Fatalf("%q: lexer error %v, encoding/json error %v", data, err, werr)
	}
	if err == nil {
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("%q: lexer tokens\n%s\nencoding/json tokens\n%s", data, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		return
	}
	var se *SyntaxError
	if !errors.As(err, &se) {
		t.Fatalf("%q: error %T %v is not a *SyntaxError", data, err, err)
	}
	if se.Offset < 0 || se.Offset > len(data) {
		t.Fatalf("%q: offset %d outside the data", data, se.Offset)
	}
	// encoding/json reads a space past the end, so it reports "1." or "tru"
	// at that space rather than as the end of the input.
	var jerr *json.SyntaxError
	atEnd := werr.Error() == "unexpected end of JSON input" || errors.As(werr, &jerr) && jerr.Offset >= int64(len(data))
	if se.Truncated && !atEnd || !se.Truncated && werr.Error() == "unexpected end of JSON input" {
		t.Fatalf("%q: truncated = %v, encoding/json says %v", data, se.Truncated, werr)
	}
}

var seeds = []string{
	`{"title":"x","n":3,"tags":["a"],"a":{"b":{"c":"d"}}}`,
	`{"ref":{"$oid":"65f0a1b2c3d4e5f6a7b8c9d0"},"when":{"$date":"2024-01-01"}}`,
	`{"n":1e3,"f":-0.5,"ok":false,"a":{"x":null}}`,
	`{"zzz":[{"$where":1}],"title":"x","title":"y"}`,
	` [ 1 , -0 , 0.5e-7 , 1E+2 , true , null ] `, `"a\u00e9\ud83d\ude00\n\"\\\/\b\f\r\t"`,
	`"\ud800"`, `"\udc00x"`, "\"\xff\xfe\"", "\"\u2028\"", `{"a\u0000":1}`, `[]`, `{}`, `0`, `-1`,
	``, ` `, `{`, `[1,`, `{"a"`, `{"a":`, `{"a":1,}`, `[1,]`, `01`, `1.`, `.5`, `-`, `1e`, `+1`,
	`tru`, `nul`, `falsy`, `"abc`, `"\x"`, `"\u12"`, `"\uX0`, `"\u1`, `"\ud800\uX`, `"a` + "\x01" + `"`, `{"a" 1}`, `{1:2}`, `[1 2]`,
	`{} {}`, `1 x`, `]`, `}`, `,`, `:`, `[[[[[[[[[[]]]]]]]]]]`, `{"a":[{"b":[null]}]}`,
}

func TestLexerMatchesEncodingJSON(t *testing.T) {
	for _, s := range seeds {
		check(t, []byte(s))
	}
}

// TestKnownKeys checks that a known key is returned as the caller's own
// string, not a copy of the data.
func TestKnownKeys(t *testing.T) {
	known := strings.Clone("title")
	l := New([]byte(`{"title":"title"}`), map[string]string{known: known})
	if _, err := l.Next(); err != nil {
		t.Fatal(err)
	}
	key, err := l.Next()
	if err != nil || key.Kind != String || unsafe.StringData(key.Text) != unsafe.StringData(known) {
		t.Fatalf("key %+v, %v: not the known string", key, err)
	}
	if l.Offset() != len(`{"title"`) {
		t.Errorf("offset %d after the key", l.Offset())
	}
}

// FuzzLexer checks the lexer against encoding/json on any input.
func FuzzLexer(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		check(t, data)
	})
}
