package mongohttp

import (
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/mongohttp/mongohttp/internal/jsonlex"
)

// Extended JSON writes the numbers of its wrappers in decimal. The
// driver reads them with strconv, which also takes hexadecimal floats and
// underscores ({"$numberDouble": "0x1p4"}, "1_000"): those are refused
// here, as the API document's schemas refuse them.
var numberWrappers = map[string]*regexp.Regexp{
	"$numberDouble": regexp.MustCompile(`^(?:[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|-?Infinity|NaN)$`),
	"$numberLong":   regexp.MustCompile(`^[+-]?[0-9]+$`),
	"$numberInt":    regexp.MustCompile(`^[+-]?[0-9]+$`),
}

// checkNumbers refuses the numbers of filter= that the driver would read
// as another value than the one sent. s has passed checkJSON.
//
//   - A $numberDouble, $numberLong or $numberInt wrapper whose string is
//     not a decimal number.
//   - A number (or a $numberDouble) with a fraction or an exponent whose
//     double is a whole number that the number is not: 1e-400 (rounded to
//     0), 1.0000000000000001 (to 1), 9007199254740993.0 (to …992). The
//     driver reads such numbers as doubles, and an integer field takes a
//     whole double as that integer, so these would compare with another
//     integer than the one sent, as a body's integer never does (see
//     parseIntNumber). No JSON serializer writes them: a double's shortest
//     form reads back as itself.
//
// It reads s once, in time linear in its length.
func checkNumbers(s string) error {
	if !fractionOrExponent(s) && !strings.Contains(s, "$number") && !strings.Contains(s, `\u`) {
		return nil // no fraction, no exponent, no wrapper (not even one with an escaped key)
	}
	type frame struct{ object, wantKey bool }
	var stack []frame
	key := "" // the key of the value being read
	lex := jsonlex.New([]byte(s), nil)
	for {
		tok, err := lex.Next()
		if err != nil {
			return nil // the end, or an error the driver reports
		}
		top := len(stack) - 1
		switch tok.Kind {
		case jsonlex.ObjectStart, jsonlex.ArrayStart:
			stack = append(stack, frame{object: tok.Kind == jsonlex.ObjectStart, wantKey: tok.Kind == jsonlex.ObjectStart})
			key = ""
			continue
		case jsonlex.ObjectEnd, jsonlex.ArrayEnd:
			stack = stack[:top]
		case jsonlex.String:
			if top >= 0 && stack[top].wantKey {
				key, stack[top].wantKey = tok.Text, false
				continue
			}
			if re := numberWrappers[key]; re != nil && !re.MatchString(tok.Text) {
				return ErrInvalidParameter.Detailf("filter has %s %s, which is not a decimal number", key, clip(tok.Text))
			}
			if key == "$numberDouble" && !readsAsSent(tok.Text) {
				return errRoundedNumber(tok.Text)
			}
		case jsonlex.Number:
			if !readsAsSent(tok.Text) {
				return errRoundedNumber(tok.Text)
			}
		}
		// A value ended: its object expects a key again.
		if n := len(stack); n > 0 && stack[n-1].object {
			stack[n-1].wantKey = true
		}
		key = ""
	}
}

// fractionOrExponent reports whether s may hold a number with a fraction
// or an exponent: a digit followed by '.', 'e' or 'E'. Most filters have
// none, and skip the lexer.
func fractionOrExponent(s string) bool {
	for i := 0; i+1 < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' && (s[i+1] == '.' || s[i+1] == 'e' || s[i+1] == 'E') {
			return true
		}
	}
	return false
}

// readsAsSent reports whether the decimal number n, read as a double, is
// not a whole number that n is not (see checkNumbers). Numbers without a
// fraction or an exponent are read as integers when they fit an int64, and
// doubles beyond ±2^63 are no integer field's: both read as sent.
func readsAsSent(n string) bool {
	if !strings.ContainsAny(n, ".eE") {
		return true
	}
	f, err := strconv.ParseFloat(n, 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) >= 1<<63 {
		return true // not finite (the driver refuses it), or not whole
	}
	i, ok := parseIntNumber(n)
	return ok && float64(i) == f && i == int64(f)
}

func errRoundedNumber(n string) error {
	return ErrInvalidParameter.Detailf("filter has the number %s, which a double rounds to a whole number it is not: send the value itself", clip(n))
}
