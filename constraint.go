package mongohttp

import (
	"fmt"
	"math"
	"regexp"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/mongohttp/mongohttp/internal/regexcheck"
)

// Constraint states what the values of a writable field must be, beyond
// their declared type, in terms a JSON Schema states too: the write
// handlers enforce it (a 422 "validation_failed" naming each failing field
// by JSON pointer) and the API document describes it on the request
// bodies. Rules a schema cannot state belong in Collection.Validate.
//
// Length, range, pattern and enum rules apply to each value of the field:
// to the field itself, or to each element of an ArrayOf field. Each rule
// applies only to the types it names; New refuses a rule on a field of
// another type. The zero Constraint states nothing.
type Constraint struct {
	// Required makes Insert and Replace refuse a body without the field
	// (code "required"); a field the request's BaseFilter fixes counts as
	// present. A merge patch need not name it, but may not remove it with
	// null. Default is false.
	Required bool

	// WriteOnly declares a field that only carries input, such as a
	// password: it is accepted in bodies, checked, and handed to Validate
	// and Prepare, but never stored as sent and never served. The write
	// handlers remove it from the document after Prepare (which may keep
	// what it needs under another field, say a hash), every answer omits
	// it, the document's response schemas leave it out and its request
	// schemas mark it writeOnly. It may not be filtered, sorted or
	// projected. Default is false.
	WriteOnly bool

	// MinLength and MaxLength bound a String field's length in characters
	// (Unicode code points, as JSON Schema counts them): codes
	// "min_length" and "max_length". Default is 0: no bound.
	MinLength, MaxLength int

	// Minimum and Maximum bound an Int or Float field, inclusive: codes
	// "minimum" and "maximum". An Int field's bounds are rounded inward to
	// integers. Set them with Bound. Default (nil) is no bound.
	Minimum, Maximum *float64

	// Pattern is a regular expression a String field's value must match
	// somewhere (JSON Schema's semantics: anchor it with ^ and $ to match
	// the whole value), code "pattern". It is Go's RE2 syntax, matched in
	// time linear in the value, restricted to what ECMA-262 (the syntax
	// JSON Schema and its validators use, with Unicode semantics) reads
	// the same way: no flags or named groups ("(?:" is fine), no \A, \z,
	// \Q, \p, \s or \S (spell the class out), no POSIX classes, and only
	// escapes of punctuation, \d \D \w \W \b \B \n \r \t \f \v and \xHH.
	// The dot matches any character but a line terminator, as in
	// ECMA-262. Default ("") is none.
	Pattern string

	// Enum lists the values a String field may take, code "enum". Default
	// (nil) is any.
	Enum []string
}

// Bound returns a pointer to v, for Constraint.Minimum and Maximum:
// Constraint{Minimum: mongohttp.Bound(0)}.
func Bound(v float64) *float64 { return &v }

// fieldRule is a compiled Constraint.
type fieldRule struct {
	Constraint
	lo, hi       float64 // Float bounds; ±Inf when unset
	loInt, hiInt int64   // Int bounds, rounded inward
	pattern      *regexp.Regexp
}

// compileConstraint checks c against the field's type and compiles it.
func compileConstraint(name string, t Type, c Constraint) (*fieldRule, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("mongohttp: Policy.Constraints: field %q: %s", name, fmt.Sprintf(format, args...))
	}
	elem, _ := t.elem()
	r := &fieldRule{Constraint: c, lo: math.Inf(-1), hi: math.Inf(1), loInt: math.MinInt64, hiInt: math.MaxInt64}
	r.Enum = slices.Clone(c.Enum)
	if (c.MinLength != 0 || c.MaxLength != 0 || c.Pattern != "" || c.Enum != nil) && elem != String {
		return nil, bad("MinLength, MaxLength, Pattern and Enum apply to String fields, not %v", t)
	}
	if (c.Minimum != nil || c.Maximum != nil) && elem != Int && elem != Float {
		return nil, bad("Minimum and Maximum apply to Int and Float fields, not %v", t)
	}
	if c.MinLength < 0 || c.MaxLength < 0 || (c.MaxLength > 0 && c.MinLength > c.MaxLength) {
		return nil, bad("MinLength %d and MaxLength %d do not make a range", c.MinLength, c.MaxLength)
	}
	if c.Minimum != nil {
		if !finite(*c.Minimum) {
			return nil, bad("Minimum is not a finite number")
		}
		r.lo = *c.Minimum
		r.loInt = roundBound(math.Ceil(r.lo))
	}
	if c.Maximum != nil {
		if !finite(*c.Maximum) {
			return nil, bad("Maximum is not a finite number")
		}
		r.hi = *c.Maximum
		r.hiInt = roundBound(math.Floor(r.hi))
	}
	if r.lo > r.hi || (elem == Int && r.loInt > r.hiInt) {
		return nil, bad("Minimum and Maximum leave no %v value", elem)
	}
	for _, v := range c.Enum {
		if !utf8.ValidString(v) || strings.IndexByte(v, 0) >= 0 {
			return nil, bad("Enum value %q is not valid UTF-8 without NUL", v)
		}
	}
	if c.Pattern != "" {
		re, err := compilePattern(c.Pattern)
		if err != nil {
			return nil, bad("Pattern: %v", err)
		}
		r.pattern = re
	}
	return r, nil
}

// roundBound clamps an integral float to the int64 range.
func roundBound(f float64) int64 {
	switch {
	case f <= math.MinInt64:
		return math.MinInt64
	case f >= math.MaxInt64:
		return math.MaxInt64
	}
	return int64(f)
}

// check records the rule's failures for one converted value v.
func (r *fieldRule) check(d *bodyDecoder, path string, v any) {
	switch v := v.(type) {
	case string:
		if r.MinLength > 0 || r.MaxLength > 0 {
			n := utf8.RuneCountInString(v)
			if n < r.MinLength {
				d.fail("min_length", "field %s takes at least %d characters", clip(path), r.MinLength)
			}
			if r.MaxLength > 0 && n > r.MaxLength {
				d.fail("max_length", "field %s takes at most %d characters", clip(path), r.MaxLength)
			}
		}
		if r.pattern != nil && !r.pattern.MatchString(v) {
			d.fail("pattern", "field %s does not match its pattern (see the API document)", clip(path))
		}
		if r.Enum != nil && !slices.Contains(r.Enum, v) {
			d.fail("enum", "field %s takes one of %s", clip(path), quotedList(r.Enum))
		}
	case int32:
		r.checkInt(d, path, int64(v))
	case int64:
		r.checkInt(d, path, v)
	case float64:
		if v < r.lo {
			d.fail("minimum", "field %s takes at least %s", clip(path), formatBound(r.lo))
		}
		if v > r.hi {
			d.fail("maximum", "field %s takes at most %s", clip(path), formatBound(r.hi))
		}
	}
}

func (r *fieldRule) checkInt(d *bodyDecoder, path string, n int64) {
	if n < r.loInt {
		d.fail("minimum", "field %s takes at least %d", clip(path), r.loInt)
	}
	if n > r.hiInt {
		d.fail("maximum", "field %s takes at most %d", clip(path), r.hiInt)
	}
}

func formatBound(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// quotedList lists values for an error detail, clipped.
func quotedList(values []string) string {
	var b strings.Builder
	for i, v := range values {
		if i > 0 {
			b.WriteString(", ")
		}
		if b.Len() > 200 {
			b.WriteString("…")
			break
		}
		b.WriteString(strconv.Quote(v))
	}
	return b.String()
}

// compilePattern compiles a Constraint.Pattern after checking that
// ECMA-262 reads it as RE2 does. The dot is rewritten to exclude the line
// terminators ECMA-262's dot excludes (RE2's excludes only \n).
func compilePattern(p string) (*regexp.Regexp, error) {
	if !utf8.ValidString(p) {
		return nil, fmt.Errorf("not valid UTF-8")
	}
	if err := portablePattern(p); err != nil {
		return nil, err
	}
	re, err := syntax.Parse(p, syntax.Perl)
	if err != nil {
		return nil, err
	}
	return regexp.Compile(ecmaDot(re).String())
}

// portablePattern refuses the parts of RE2's syntax that ECMA-262 reads
// differently or not at all.
func portablePattern(p string) error {
	inClass := false
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\':
			if i+1 >= len(p) {
				return fmt.Errorf("ends with a lone backslash")
			}
			e := p[i+1]
			switch {
			case strings.IndexByte(`^$\.*+?()[]{}|/`, e) >= 0 || (inClass && e == '-'):
			case strings.IndexByte("dDwWnrtfv", e) >= 0:
			case (e == 'b' || e == 'B') && !inClass:
			case e == 'x':
				if i+3 >= len(p) || !isHex(p[i+2]) || !isHex(p[i+3]) {
					return fmt.Errorf(`\x takes exactly two hexadecimal digits`)
				}
				i += 2
			default:
				return fmt.Errorf(`the escape \%c is not read alike by ECMA-262 and RE2`, e)
			}
			i++
		case inClass:
			if c == '[' && i+1 < len(p) && p[i+1] == ':' {
				return fmt.Errorf("POSIX classes ([:alpha:]) are not ECMA-262")
			}
			if c == ']' {
				inClass = false
			}
		case c == '[':
			inClass = true
			if strings.HasPrefix(p[i+1:], "^]") || strings.HasPrefix(p[i+1:], "]") {
				return fmt.Errorf("a class may not begin with ]; escape it")
			}
		case c == '(' && i+1 < len(p) && p[i+1] == '?':
			if !strings.HasPrefix(p[i:], "(?:") {
				return fmt.Errorf("flags and named groups are not portable; only (?: is")
			}
		case c == '{':
			if !regexcheck.IsRepetition(p[i:]) {
				return fmt.Errorf("a { must begin a repetition ({2}, {1,}, {1,3}) or be escaped")
			}
			i += strings.IndexByte(p[i:], '}')
		case c == '}' || c == ']':
			return fmt.Errorf("a lone %c must be escaped", c)
		}
	}
	return nil
}

// ecmaDot rewrites every dot of re to ECMA-262's: any character but \n,
// \r, U+2028 and U+2029.
func ecmaDot(re *syntax.Regexp) *syntax.Regexp {
	switch re.Op {
	case syntax.OpAnyCharNotNL, syntax.OpAnyChar:
		return &syntax.Regexp{Op: syntax.OpCharClass, Rune: []rune{
			0, '\n' - 1, '\n' + 1, '\r' - 1, '\r' + 1, 0x2027, 0x202A, utf8.MaxRune}}
	}
	for i, sub := range re.Sub {
		re.Sub[i] = ecmaDot(sub)
	}
	return re
}
