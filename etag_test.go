package mongohttp

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseETags(t *testing.T) {
	const tag = `"6b16b0.AbC-_x"`
	for _, tt := range []struct {
		name   string
		values []string
		want   etagList
		err    error
	}{
		{"absent", nil, etagList{}, nil},
		{"empty", []string{""}, etagList{present: true}, nil},
		{"comma", []string{","}, etagList{present: true}, nil},
		{"commas and whitespace", []string{" ,\t, ,"}, etagList{present: true}, nil},
		{"empty lines", []string{"", ""}, etagList{present: true}, nil},
		{"star", []string{"*"}, etagList{present: true, any: true}, nil},
		{"star with spaces", []string{" * "}, etagList{present: true, any: true}, nil},
		{"one tag", []string{tag}, etagList{present: true, strong: []string{tag}}, nil},
		{"empty tag", []string{`""`}, etagList{present: true, strong: []string{`""`}}, nil},
		{"tag holding a comma", []string{`"a,b", "c"`}, etagList{present: true, strong: []string{`"a,b"`, `"c"`}}, nil},
		{"tags on two lines", []string{`"a"`, ` , "b"`}, etagList{present: true, strong: []string{`"a"`, `"b"`}}, nil},
		{"weak tag", []string{`W/"a"`}, etagList{present: true, weak: []string{`"a"`}}, nil},
		{"weak and strong", []string{`W/"a", "b"`}, etagList{present: true, strong: []string{`"b"`}, weak: []string{`"a"`}}, nil},
		{"obs-text", []string{"\"\x80\xff\""}, etagList{present: true, strong: []string{"\"\x80\xff\""}}, nil},

		{"unquoted", []string{"abc"}, etagList{}, errMalformedETags},
		{"unterminated", []string{`"abc`}, etagList{}, errMalformedETags},
		{"quote inside", []string{`"a"b"`}, etagList{}, errMalformedETags},
		{"space inside", []string{`"a b"`}, etagList{}, errMalformedETags},
		{"control inside", []string{"\"a\x01\""}, etagList{}, errMalformedETags},
		{"DEL inside", []string{"\"a\x7f\""}, etagList{}, errMalformedETags},
		{"no comma between", []string{`"a" "b"`}, etagList{}, errMalformedETags},
		{"lower-case weak", []string{`w/"a"`}, etagList{}, errMalformedETags},
		{"weak without quotes", []string{`W/a`}, etagList{}, errMalformedETags},
		{"star among tags", []string{`*, "a"`}, etagList{}, errMalformedETags},
		{"star on another line", []string{`"a"`, "*"}, etagList{}, errMalformedETags},
		{"two stars", []string{"*, *"}, etagList{}, errMalformedETags},
		{"weak star", []string{"W/*"}, etagList{}, errMalformedETags},
		{"star with junk", []string{"*x"}, etagList{}, errMalformedETags},
		{"too many", []string{strings.Repeat(`"", `, maxListedETags+1)}, etagList{}, errTooManyETags},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseETags(tt.values)
			if !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
				t.Fatalf("error %v, want %v", err, tt.err)
			}
			if err != nil {
				return
			}
			if got.present != tt.want.present || got.any != tt.want.any || !slices.Equal(got.strong, tt.want.strong) || !slices.Equal(got.weak, tt.want.weak) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestETagComparison: writes compare whole strong tags; reads'
// If-None-Match compares weakly; neither matches by prefix.
func TestETagComparison(t *testing.T) {
	const etag = `"6b16b0.hash"`
	for _, tt := range []struct {
		values       []string
		strong, weak bool
	}{
		{[]string{etag}, true, true},
		{[]string{`"x", ` + etag}, true, true},
		{[]string{"W/" + etag}, false, true},
		{[]string{"*"}, false, true},
		{[]string{`"6b16b0.hash`}, false, false},
		{[]string{`"6b16b0."`}, false, false},
		{[]string{`"6b16b0.has"`}, false, false},
		{[]string{`"6b16b0.hashx"`}, false, false},
		{[]string{`"6b16b0"`}, false, false},
		{[]string{strings.Trim(etag, `"`)}, false, false},
		{[]string{""}, false, false},
		{[]string{"junk, " + etag}, false, false},
	} {
		l, _ := parseETags(tt.values)
		if got := l.matchesStrong(etag); got != tt.strong {
			t.Errorf("%q strong: %v, want %v", tt.values, got, tt.strong)
		}
		if got := etagMatches(tt.values, etag); got != tt.weak {
			t.Errorf("%q weak: %v, want %v", tt.values, got, tt.weak)
		}
	}
}
