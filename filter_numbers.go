package mongohttp

import (
	"encoding/json"
	"regexp"
	"strings"
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

// checkNumberWrappers refuses a $numberDouble, $numberLong or $numberInt
// wrapper whose string is not a decimal number. s has passed checkJSON.
func checkNumberWrappers(s string) error {
	if !strings.Contains(s, "$number") && !strings.Contains(s, `\u`) {
		return nil // no wrapper, not even one with an escaped key
	}
	type frame struct{ object, wantKey bool }
	var stack []frame
	key := "" // the key of the value being read
	dec := json.NewDecoder(strings.NewReader(s))
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil // the end, or an error the driver reports
		}
		top := len(stack) - 1
		switch tok := tok.(type) {
		case json.Delim:
			if tok == '{' || tok == '[' {
				stack = append(stack, frame{object: tok == '{', wantKey: tok == '{'})
				key = ""
				continue
			}
			stack = stack[:top]
		case string:
			if top >= 0 && stack[top].wantKey {
				key, stack[top].wantKey = tok, false
				continue
			}
			if re := numberWrappers[key]; re != nil && !re.MatchString(tok) {
				return ErrInvalidParameter.Detailf("filter has %s %s, which is not a decimal number", key, clip(tok))
			}
		}
		// A value ended: its object expects a key again.
		if n := len(stack); n > 0 && stack[n-1].object {
			stack[n-1].wantKey = true
		}
		key = ""
	}
}
