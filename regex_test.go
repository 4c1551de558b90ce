package mongohttp

import (
	"encoding/json"
	"errors"
	"net/url"
	"regexp/syntax"
	"strings"
	"testing"
)

// regexAllowed are ordinary patterns that must keep working.
var regexAllowed = []string{
	`^ab`, `a+b+`, `(ab)+`, `[a-z]+@x`, `colou?r`, `(foo|bar)+`,
	`^Ad`, `.*foo.*`, `^\d+(\.\d+)?$`, `^[\w.+-]+@[\w-]+\.[\w.]+$`, `(\d{1,3}\.){3}\d{1,3}`,
	`(\d+,)+`, `(\w+\.)+com`, `(ab?)+`, `(cat|car)+`, `(a|b)*c`, `(?:a{2})+`, `^(a|ab)$`,
	`(?P<word>go|db)+`, `[]|]+`, `[[:alpha:]|]+`, `\Q(a|a)+\E`, `(?i)^ada`, `x{2,5}`,
	`(?:[^,]+,)*end`, `(https?://)?example`, `([[:]x)+`,
}

// regexRefused backtrack catastrophically in a backtracking engine.
var regexRefused = []string{
	// Nested quantifiers.
	`(a+)+`, `(a*)*`, `(a+)*`, `(\w+\s?)+`, `(?:a+)+`, `(a+){2,}`, `(a{1,2})+`, `(x+x+)+y`,
	`(a?a)+`, `^(\d+)*$`, `((a+)b?)+`, `(.*a){12}`, `(a+|b)+`, `(?:\s*\w+)*$`,
	// Repeated groups that can match nothing.
	`(a?)+`, `(a|)+`, `(\b)+`,
	// Repeated alternatives that begin alike.
	`(a|a?)+`, `(a|ab)*`, `(.*|a)+`, `(a|a)+`, `(?:a|a)+`, `(?:\w|\d)+`, `(a|b|a)+`,
	`(ab|ab)+`, `(foo|foobar)+`, `(?i)(a|A)+`, `(A|a)+`, `((a|ab)c)+`, `(x(a|ab))+`,
	`(?i:a|A)+`, `(?P<n>a|ab)+`, `(?:[ab]|a)+`, `(a|a)+\Qx`,
}

// regexForms are the ways a client can send a pattern for field name.
func regexForms(pattern string) []string {
	quoted, _ := json.Marshal(pattern)
	return []string{
		"name[regex]=" + url.QueryEscape(pattern),
		filterParam(`{"name":{"$regex":` + string(quoted) + `}}`),
		filterParam(`{"name":{"$regex":` + string(quoted) + `,"$options":"i"}}`),
		filterParam(`{"name":{"$regularExpression":{"pattern":` + string(quoted) + `,"options":""}}}`),
		filterParam(`{"name":{"$not":{"$regularExpression":{"pattern":` + string(quoted) + `,"options":"s"}}}}`),
		filterParam(`{"$or":[{"tags":{"$elemMatch":{"$regex":` + string(quoted) + `}}}]}`),
	}
}

func TestRegexBacktracking(t *testing.T) {
	qp := mustQueryParser(t, queryTestPolicy())
	for _, pattern := range regexAllowed {
		for _, query := range regexForms(pattern) {
			if _, err := qp.Parse(query); err != nil {
				t.Errorf("%s refused in %s: %v", pattern, query, err)
			}
		}
	}
	for _, pattern := range regexRefused {
		for _, query := range regexForms(pattern) {
			_, err := qp.Parse(query)
			var e *Error
			if !errors.Is(err, ErrInvalidParameter) || !errors.As(err, &e) || !strings.Contains(e.Detail, "backtrack") {
				t.Errorf("%s in %s: err = %v, want invalid_parameter about backtracking", pattern, query, err)
			}
		}
	}
}

// TestRegexOptions checks the flags a pattern may carry. The x flag is
// refused: with it MongoDB reads whitespace and comments differently from the
// parser that checks the pattern, so "(a +)+" would be checked as a literal
// space and run as (a+)+.
func TestRegexOptions(t *testing.T) {
	qp := mustQueryParser(t, queryTestPolicy())
	for options, ok := range map[string]bool{"": true, "i": true, "ims": true, "sm": true, "x": false, "ix": false, "g": false, "imsi": false, `\u0000`: false} {
		for _, query := range []string{
			filterParam(`{"name":{"$regex":"^a","$options":"` + options + `"}}`),
			filterParam(`{"name":{"$options":"` + options + `","$regex":"^a"}}`),
			filterParam(`{"name":{"$regularExpression":{"pattern":"^a","options":"` + options + `"}}}`),
		} {
			_, err := qp.Parse(query)
			if ok && err != nil {
				t.Errorf("%q: %v", options, err)
			}
			if !ok && !errors.Is(err, ErrInvalidParameter) {
				t.Errorf("%q: err = %v, want invalid_parameter", options, err)
			}
		}
	}
}

// TestRegexLiteralBrace checks that a "{" is a repetition or escaped: newer
// PCRE versions read {,3} and { 1,3 } as repetitions, which RE2 reads as
// text, so the backtracking check would not see them.
func TestRegexLiteralBrace(t *testing.T) {
	qp := mustQueryParser(t, queryTestPolicy())
	for pattern, ok := range map[string]bool{
		`a{2}`: true, `a{1,}`: true, `a{1,3}`: true, `a\{,3\}`: true, `[{]`: true, `\Q{,3}\E`: true, `^\d{4}-\d{2}$`: true, `\p{Greek}{2}`: true, `[\x{41}-\x{5a}]{2,}`: true, `\x{7b},3}`: true, `\PL`: true,
		`a{,3}`: false, `a{ 1,3}`: false, `(a{,3})+`: false, `x{y`: false, `{`: false, `a{1,3`: false, `a{2}{`: false,
	} {
		for _, query := range regexForms(pattern) {
			_, err := qp.Parse(query)
			if ok && err != nil {
				t.Errorf("%s: %v", pattern, err)
			}
			var e *Error
			if !ok && (!errors.As(err, &e) || !errors.Is(err, ErrInvalidParameter) || !strings.Contains(e.Detail, "{")) {
				t.Errorf("%s: err = %v, want invalid_parameter about the brace", pattern, err)
			}
		}
	}
}

// TestScanGroupsAgreesWithTheParser checks the text scan that finds the
// alternatives against the parser's count of capturing groups.
func TestScanGroupsAgreesWithTheParser(t *testing.T) {
	for _, pattern := range append(append([]string{`((a)(?:b)(?P<c>c)(?i)d)|e`, `[(]\(\Q)\E(x)`}, regexAllowed...), regexRefused...) {
		re, err := syntax.Parse(pattern, syntax.Perl)
		if err != nil {
			t.Fatalf("%s: %v", pattern, err)
		}
		if _, ok := scanGroups(pattern); !ok {
			t.Errorf("%s: the scan does not agree with the parser", pattern)
		}
		if got := countCaptures(pattern); got != re.MaxCap() {
			t.Errorf("%s: the scan finds %d capturing groups, the parser %d", pattern, got, re.MaxCap())
		}
	}
	alts, _ := scanGroups(`x(a|(b|c)d)+(e|f)`)
	if len(alts) != 2 || strings.Join(alts[0], ",") != "a,(b|c)d" || strings.Join(alts[1], ",") != "b,c" {
		t.Errorf("alternatives %q", alts)
	}
}

// countCaptures counts the capturing groups the way scanGroups reads groups.
func countCaptures(pattern string) int {
	n := 0
	for i := 0; i < len(pattern); {
		switch pattern[i] {
		case '\\':
			if strings.HasPrefix(pattern[i:], `\Q`) {
				i = skipQuoted(pattern, i)
				continue
			}
			i += 2
		case '[':
			i = skipClass(pattern, i)
		case '(':
			body, isGroup := groupBody(pattern, i)
			if isGroup && (pattern[i+1] != '?' || pattern[i+2] == 'P' || pattern[i+2] == '<') {
				n++
			}
			i = body
		default:
			i++
		}
	}
	return n
}

func TestRuneSet(t *testing.T) {
	s := runeSet{'a', 'c'}.union(runeSet{'x', 'z'}).union(runeSet{'d', 'f'})
	if want := (runeSet{'a', 'f', 'x', 'z'}); string(s) != string(want) {
		t.Fatalf("union = %q, want %q", string(s), string(want))
	}
	for _, tt := range []struct {
		t    runeSet
		want bool
	}{
		{runeSet{'g', 'w'}, false}, {runeSet{'f', 'f'}, true}, {runeSet{'0', '9', 'z', 'z'}, true}, {nil, false},
	} {
		if got := s.intersects(tt.t); got != tt.want {
			t.Errorf("intersects(%q) = %v", string(tt.t), got)
		}
	}
	if !runeOrbit('k', true).intersects(runeSet{'\u212a', '\u212a'}) { // Kelvin sign folds to k
		t.Error("case folding misses the Kelvin sign")
	}
}
