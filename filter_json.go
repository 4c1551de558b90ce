package mongohttp

import (
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// prepareFilter checks filter= before the driver's parser sees it, so that
// its mistakes are answered like the same mistakes elsewhere rather than by
// the driver's error text:
//   - it must be one JSON object (the driver alone would accept trailing
//     data), nested within bounds (the driver's parser is recursive);
//   - no key may hold a NUL byte, at any depth, as no parameter name may;
//   - {"$oid": …} must hold 24 hexadecimal digits, else invalid_object_id;
//   - {"$date": …} must hold a date of the query string's forms or integer
//     milliseconds (also as {"$numberLong": …}), within years 0000 to 9999.
//     Each is rewritten as {"$date":{"$numberLong":"…"}}, so the driver
//     takes every form the query string takes.
//
// It returns s itself when nothing was rewritten.
func (qp *QueryParser) prepareFilter(s string) (string, error) {
	fp := filterPrep{src: s, dec: json.NewDecoder(strings.NewReader(s)), maxDepth: qp.maxDepth}
	fp.dec.UseNumber()
	invalid := ErrInvalidParameter.Detailf("filter is not a JSON object")
	tok, err := fp.dec.Token()
	if err != nil || tok != json.Delim('{') {
		return "", invalid.withCause(err)
	}
	if err := fp.object(0); err != nil {
		return "", err
	}
	if _, err := fp.dec.Token(); err != io.EOF {
		return "", ErrInvalidParameter.Detailf("filter has data after its JSON object")
	}
	if fp.out == nil {
		return s, nil
	}
	return string(append(fp.out, s[fp.copied:]...)), nil
}

// filterPrep walks filter= token by token for prepareFilter.
type filterPrep struct {
	src      string
	dec      *json.Decoder
	depth    int // open objects and arrays
	maxDepth int // the policy's, in levels; see open
	out      []byte
	copied   int // src[:copied] is in out
}

func (fp *filterPrep) token() (json.Token, error) {
	tok, err := fp.dec.Token()
	if err != nil {
		return nil, ErrInvalidParameter.Detailf("filter is not valid JSON").withCause(err)
	}
	return tok, nil
}

func (fp *filterPrep) open() error {
	fp.depth++
	// Arrays and wrappers add brackets that are not levels, hence the
	// slack; validateDoc counts levels exactly.
	if fp.depth > 2*fp.maxDepth+2 {
		return ErrLimitExceeded.Detailf("filter is nested too deeply; the maximum depth is %d", fp.maxDepth)
	}
	return nil
}

// value checks the value that starts with tok; start is the input offset
// before tok.
func (fp *filterPrep) value(tok json.Token, start int64) error {
	switch tok {
	case json.Delim('{'):
		return fp.object(start)
	case json.Delim('['):
		if err := fp.open(); err != nil {
			return err
		}
		for {
			at := fp.dec.InputOffset()
			tok, err := fp.token()
			if err != nil {
				return err
			}
			if tok == json.Delim(']') {
				fp.depth--
				return nil
			}
			if err := fp.value(tok, at); err != nil {
				return err
			}
		}
	}
	return nil
}

// object checks an object whose "{" has just been read; start is the input
// offset before it.
func (fp *filterPrep) object(start int64) error {
	if err := fp.open(); err != nil {
		return err
	}
	for first := true; ; first = false {
		tok, err := fp.token()
		if err != nil {
			return err
		}
		if tok == json.Delim('}') {
			fp.depth--
			return nil
		}
		key, _ := tok.(string)
		if strings.IndexByte(key, 0) >= 0 {
			return ErrInvalidParameter.Detailf("filter has a key with a NUL byte: %s", clip(key))
		}
		if first && (key == "$oid" || key == "$date") {
			// The driver reads a wrapper only from a document's first key.
			return fp.wrapper(key, start)
		}
		at := fp.dec.InputOffset()
		tok, err = fp.token()
		if err != nil {
			return err
		}
		if err := fp.value(tok, at); err != nil {
			return err
		}
	}
}

// wrapper checks {"$oid": …} or {"$date": …} after its key and rewrites
// a date to milliseconds.
func (fp *filterPrep) wrapper(key string, start int64) error {
	tok, err := fp.token()
	if err != nil {
		return err
	}
	if key == "$oid" {
		bad := ErrInvalidObjectID.Detailf(`{"$oid": …} takes a string of 24 hexadecimal digits`)
		hex, ok := tok.(string)
		if !ok {
			return bad
		}
		if _, err := bson.ObjectIDFromHex(hex); err != nil {
			return ErrInvalidObjectID.Detailf(`{"$oid": …} takes a string of 24 hexadecimal digits, not %s`, clip(hex))
		}
		if end, err := fp.token(); err != nil || end != json.Delim('}') {
			return bad
		}
		fp.depth--
		return nil
	}

	bad := func(shown string, err error) error { return dateError("", shown, err) }
	var ms bson.DateTime
	switch v := tok.(type) {
	case string:
		if ms, err = parseDate(v); err != nil {
			return bad(clip(v), err)
		}
	case json.Number:
		if ms, err = parseMillis(string(v)); err != nil {
			return bad(clip(string(v)), err)
		}
	case json.Delim:
		// {"$numberLong": "…"}, the canonical form.
		long, err := fp.numberLong(v)
		if err != nil {
			return err
		}
		if ms, err = parseMillis(long); err != nil {
			return bad(clip(long), err)
		}
	default:
		return bad(kindOfJSON(tok), errDateFormat)
	}
	if end, err := fp.token(); err != nil || end != json.Delim('}') {
		return ErrInvalidParameter.Detailf(`a {"$date": …} document has a single key`)
	}
	fp.depth--

	brace := int(start) + strings.IndexByte(fp.src[start:], '{')
	fp.out = append(fp.out, fp.src[fp.copied:brace]...)
	fp.out = append(fp.out, `{"$date":{"$numberLong":"`...)
	fp.out = strconv.AppendInt(fp.out, int64(ms), 10)
	fp.out = append(fp.out, `"}}`...)
	fp.copied = int(fp.dec.InputOffset())
	return nil
}

// numberLong reads {"$numberLong": "…"} after its opening delimiter d and
// returns the string.
func (fp *filterPrep) numberLong(d json.Delim) (string, error) {
	bad := ErrInvalidParameter.Detailf(`{"$date": …} takes a date string, integer milliseconds or {"$numberLong": "…"}`)
	if d != json.Delim('{') {
		return "", bad
	}
	if err := fp.open(); err != nil {
		return "", err
	}
	if key, err := fp.token(); err != nil || key != "$numberLong" {
		return "", bad
	}
	tok, err := fp.token()
	long, ok := tok.(string)
	if err != nil || !ok {
		return "", bad
	}
	if end, err := fp.token(); err != nil || end != json.Delim('}') {
		return "", bad
	}
	fp.depth--
	return long, nil
}

// parseMillis parses integer milliseconds since the epoch within the date
// range.
func parseMillis(s string) (bson.DateTime, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return 0, errDateRange
		}
		return 0, errDateFormat
	}
	d := bson.DateTime(n)
	return d, checkDateRange(d)
}

// kindOfJSON names a JSON token's type without quoting it.
func kindOfJSON(tok json.Token) string {
	switch tok.(type) {
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return "a value of another type"
}

// loneSurrogate reports whether the JSON text s has a \u escape of a
// surrogate that is not the first half of a pair followed by its second.
func loneSurrogate(s string) bool {
	for i := strings.Index(s, `\`); i >= 0 && i+1 < len(s); {
		if s[i+1] != 'u' {
			i = nextBackslash(s, i+2) // \\, \" and the others
			continue
		}
		r, ok := escapedRune(s, i)
		i += 6
		if !ok || !utf16.IsSurrogate(r) {
			i = nextBackslash(s, i)
			continue
		}
		r2, ok := escapedRune(s, i)
		if !ok || utf16.DecodeRune(r, r2) == unicode.ReplacementChar {
			return true
		}
		i = nextBackslash(s, i+6)
	}
	return false
}

// escapedRune reads the \uXXXX escape at s[i:], if there is one.
func escapedRune(s string, i int) (rune, bool) {
	if i+6 > len(s) || s[i] != '\\' || s[i+1] != 'u' {
		return 0, false
	}
	n, err := strconv.ParseUint(s[i+2:i+6], 16, 16)
	return rune(n), err == nil
}

// nextBackslash is the index of the next '\\' in s from i, or -1.
func nextBackslash(s string, i int) int {
	if i >= len(s) {
		return -1
	}
	if j := strings.IndexByte(s[i:], '\\'); j >= 0 {
		return i + j
	}
	return -1
}
