package regexcheck

import (
	"regexp/syntax"
	"strings"
	"testing"
)

// allowed are ordinary patterns that must keep working.
var allowed = []string{
	`^ab`, `a+b+`, `(ab)+`, `[a-z]+@x`, `colou?r`, `(foo|bar)+`,
	`^Ad`, `.*foo.*`, `^\d+(\.\d+)?$`, `^[\w.+-]+@[\w-]+\.[\w.]+$`, `(\d{1,3}\.){3}\d{1,3}`,
	`(\d+,)+`, `(\w+\.)+com`, `(ab?)+`, `(cat|car)+`, `(a|b)*c`, `(?:a{2})+`, `^(a|ab)$`,
	`(?P<word>go|db)+`, `[]|]+`, `[[:alpha:]|]+`, `\Q(a|a)+\E`, `(?i)^ada`, `x{2,5}`,
	`(?:[^,]+,)*end`, `(https?://)?example`, `([[:]x)+`,
}

// refused backtrack catastrophically in a backtracking engine.
var refused = []string{
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

// risk parses pattern with flags, as the query parser does, and checks it.
func risk(t testing.TB, pattern string, flags syntax.Flags) string {
	t.Helper()
	re, err := syntax.Parse(pattern, flags)
	if err != nil {
		t.Fatalf("%s: %v", pattern, err)
	}
	return BacktrackRisk(re, pattern, flags)
}

// TestBacktrackRisk checks both lists with and without case folding (the
// i option), which only makes the check stricter.
func TestBacktrackRisk(t *testing.T) {
	for _, flags := range []syntax.Flags{syntax.Perl, syntax.Perl | syntax.FoldCase, syntax.Perl | syntax.DotNL} {
		for _, pattern := range allowed {
			if r := risk(t, pattern, flags); r != "" {
				t.Errorf("%s (flags %v) refused: %s", pattern, flags, r)
			}
		}
		for _, pattern := range refused {
			if r := risk(t, pattern, flags); r == "" {
				t.Errorf("%s (flags %v) allowed", pattern, flags)
			}
		}
	}
}

// TestHasLiteralBrace checks that a "{" is a repetition or escaped: newer
// PCRE versions read {,3} and { 1,3 } as repetitions, which RE2 reads as
// text, so the backtracking check would not see them.
func TestHasLiteralBrace(t *testing.T) {
	for pattern, literal := range map[string]bool{
		`a{2}`: false, `a{1,}`: false, `a{1,3}`: false, `a\{,3\}`: false, `[{]`: false, `\Q{,3}\E`: false, `^\d{4}-\d{2}$`: false, `\p{Greek}{2}`: false, `[\x{41}-\x{5a}]{2,}`: false, `\x{7b},3}`: false, `\PL`: false,
		`a{,3}`: true, `a{ 1,3}`: true, `(a{,3})+`: true, `x{y`: true, `{`: true, `a{1,3`: true, `a{2}{`: true,
	} {
		if got := HasLiteralBrace(pattern); got != literal {
			t.Errorf("HasLiteralBrace(%s) = %v", pattern, got)
		}
	}
}

// TestScanGroupsAgreesWithTheParser checks the text scan that finds the
// alternatives against the parser's count of capturing groups.
func TestScanGroupsAgreesWithTheParser(t *testing.T) {
	for _, pattern := range append(append([]string{`((a)(?:b)(?P<c>c)(?i)d)|e`, `[(]\(\Q)\E(x)`}, allowed...), refused...) {
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

// FuzzRegex checks, on every pattern the parser accepts, that the checks
// never panic, that a risk is said briefly, and that the text scan of
// groups agrees with the parser.
func FuzzRegex(f *testing.F) {
	for _, p := range append(append([]string{`\Q|\E`, `[^]|]`, `(?i:a|b)`, `(a{,3})+`, `a{1,2}{`}, allowed...), refused...) {
		f.Add(p, "")
		f.Add(p, "is")
	}
	f.Fuzz(func(t *testing.T, pattern, options string) {
		flags := Flags(options)
		re, err := syntax.Parse(pattern, flags)
		if err != nil {
			return
		}
		if r := BacktrackRisk(re, pattern, flags); len(r) > 100 {
			t.Fatalf("risk of %q: %q", pattern, r)
		}
		_ = HasLiteralBrace(pattern)
		if _, ok := scanGroups(pattern); !ok {
			t.Fatalf("the scan of %q does not agree with the parser", pattern)
		}
		if got := countCaptures(pattern); got != re.MaxCap() {
			t.Fatalf("the scan of %q finds %d capturing groups, the parser %d", pattern, got, re.MaxCap())
		}
	})
}
