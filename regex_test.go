package mongohttp

import (
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"
)

// regexAllowed and regexRefused are a sample of internal/regexcheck's
// cases, enough to see that every way a client sends a pattern reaches the
// check; regexcheck's own tests hold the full lists.
var (
	regexAllowed = []string{`^ab`, `(foo|bar)+`, `^[\w.+-]+@[\w-]+\.[\w.]+$`, `\Q(a|a)+\E`, `(?i)^ada`}
	regexRefused = []string{`(a+)+`, `(a|)+`, `(a|ab)*`, `(?i)(a|A)+`, `(a|a)+\Qx`}
)

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
		`a{1,3}`: true, `\Q{,3}\E`: true, `\p{Greek}{2}`: true, // regexcheck's tests hold the full list
		`a{,3}`: false, `a{ 1,3}`: false, `a{2}{`: false,
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
