package mongohttp

import (
	"errors"
	"net/url"
	"testing"
)

// TestFloatsAreDecimal checks that float fields take decimal numbers
// only, as the API document's number type says.
func TestFloatsAreDecimal(t *testing.T) {
	qp, err := NewQueryParser(Policy{Filter: map[string]Type{"score": Float}})
	if err != nil {
		t.Fatal(err)
	}
	for value, ok := range map[string]bool{
		"1.5": true, "-2": true, "1e3": true, "+0.5E-2": true,
		"0x1p-2": false, "1_000": false, "Inf": false, "NaN": false, "1e400": false, "": false,
	} {
		_, err := qp.Parse("score=" + url.QueryEscape(value))
		if ok && err != nil {
			t.Errorf("%s: %v", value, err)
		}
		if !ok && !errors.Is(err, ErrInvalidParameter) {
			t.Errorf("%s: %v, want invalid_parameter", value, err)
		}
	}
}

// TestDatesAreRFC3339 checks that date fields take RFC 3339 exactly, as
// the API document's pattern says, and not the rest of what time.Parse
// reads.
func TestDatesAreRFC3339(t *testing.T) {
	qp, err := NewQueryParser(Policy{Filter: map[string]Type{"created": Date}})
	if err != nil {
		t.Fatal(err)
	}
	for value, ok := range map[string]bool{
		"2024-05-01":                    true,
		"2024-05-01T12:00:00Z":          true,
		"2024-05-01T12:00:00.5-23:59":   true,
		"2024-05-01T12:00:00+00:00":     true,
		"2024-05-01T12:00:00,5Z":        false, // a comma before the fraction
		"2024-05-01T12:00:00+24:00":     false, // offsets stop at 23:59
		"2024-05-01T12:00:00+23:60":     false,
		"2024-05-01T12:00:00.123+24:59": false,
		"2024-02-30":                    false,
	} {
		_, err := qp.Parse("created=" + url.QueryEscape(value))
		if ok && err != nil {
			t.Errorf("%s: %v", value, err)
		}
		if !ok && !errors.Is(err, ErrInvalidParameter) {
			t.Errorf("%s: %v, want invalid_parameter", value, err)
		}
	}
}

// TestNumberWrappersAreDecimal checks that Extended JSON number wrappers
// in filter= hold decimal numbers, as the API document's schemas say.
func TestNumberWrappersAreDecimal(t *testing.T) {
	qp, err := NewQueryParser(Policy{Filter: map[string]Type{"n": Int, "x": Float}})
	if err != nil {
		t.Fatal(err)
	}
	for filter, ok := range map[string]bool{
		`{"n":{"$numberLong":"+007"}}`:                               true,
		`{"n":{"$numberInt":"-5"}}`:                                  true,
		`{"x":{"$numberDouble":"1.5e3"}}`:                            true,
		`{"$or":[{"x":{"$in":[{"$numberDouble":".5"}]}}]}`:           true,
		`{"x":{"$numberDouble":"0x1p4"}}`:                            false,
		`{"x":{"$numberDouble":"1_000"}}`:                            false,
		`{"n":{"$numberLong":"1_000"}}`:                              false,
		`{"x":{"\u0024numberDouble":"0x1p4"}}`:                       false, // an escaped key is the same key
		`{"$or":[{"n":1},{"x":{"$gt":{"$numberDouble":"0x10p0"}}}]}`: false,
	} {
		_, err := qp.Parse("filter=" + url.QueryEscape(filter))
		if ok && err != nil {
			t.Errorf("%s: %v", filter, err)
		}
		if !ok && !errors.Is(err, ErrInvalidParameter) {
			t.Errorf("%s: %v, want invalid_parameter", filter, err)
		}
	}
}
