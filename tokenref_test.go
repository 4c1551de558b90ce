package mongohttp

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestSuccessorBoundsItsPrefix: for awkward prefixes (multi-byte text,
// the last character, characters next to the surrogates) every string that
// starts with the prefix sorts before its successor, and the successor
// does not start with it.
func TestSuccessorBoundsItsPrefix(t *testing.T) {
	prefixes := []string{"a", "é", "\uD7FF", "\uFFFF", "x\U0010FFFF", "x\U0010FFFF\U0010FFFF", "ab\u00ff", strings.Repeat("z", 600)}
	rng := rand.New(rand.NewPCG(1, 2))
	tails := []string{"", "\x00", "\U0010FFFF", "\xff", "zzz"}
	for range 200 {
		var b strings.Builder
		for range rng.IntN(4) {
			b.WriteRune(rune(rng.IntN(utf8.MaxRune)))
		}
		tails = append(tails, b.String())
	}
	for _, p := range prefixes {
		next, ok := successor(p)
		if !ok {
			t.Fatalf("%q has no successor", p)
		}
		if !utf8.ValidString(next) || strings.HasPrefix(next, p) || next <= p {
			t.Errorf("successor(%q) = %q", p, next)
		}
		for _, tail := range tails {
			if s := p + tail; s >= next {
				t.Errorf("%q starts with %q but does not sort before %q", s, p, next)
			}
		}
	}
	if _, ok := successor("\U0010FFFF\U0010FFFF"); ok {
		t.Error("a prefix of only U+10FFFF has no successor")
	}
	for _, tt := range []struct {
		s    string
		n    int
		want string
	}{{"abc", 2, "ab"}, {"éé", 3, "é"}, {"a\xffb", 3, ""}, {"abc", 0, ""}, {"ab", 5, "ab"}} {
		if got := cutString(tt.s, tt.n); got != tt.want {
			t.Errorf("cutString(%q, %d) = %q, want %q", tt.s, tt.n, got, tt.want)
		}
	}
}
