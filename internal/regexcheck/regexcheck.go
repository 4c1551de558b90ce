// Package regexcheck refuses the regular expressions that would make
// MongoDB backtrack for a very long time.
//
// MongoDB runs $regex with PCRE, a backtracking engine: when a repeated part
// of a pattern can match the same text in more than one way, a failing match
// tries every way, and the time grows exponentially with the length of the
// text. BacktrackRisk refuses the shapes that do this. It is conservative:
// it may refuse a pattern that would have been fast, never the reverse for
// the shapes below, and it leaves alone patterns without a repeated group.
//
// A repetition whose maximum is above one (*, +, {n,}, {n,m} with m > 1)
// is refused when its body
//   - can match the empty string: (a*)*, (a|b?)+;
//   - holds a variable repetition (*, +, ?, {n,m} with m > n) that could
//     go on with a character that could also follow it, within the body or
//     at the start of the next round: (a+)+, (a*)*, (\w+\s?)+, (a?a)+, but
//     not (ab?)+, (\d+,)+ or (\w+\.)+;
//   - holds alternatives that, past a common literal prefix, can begin
//     with the same character, or of which one can end there: (a|ab)*,
//     (a|a?)+, (.*|a)+, (a|a)+, (\w|\d)+, but not (foo|bar)+ or (cat|car)+.
//     Letters are compared without case.
package regexcheck

import (
	"regexp/syntax"
	"slices"
	"strings"
	"unicode"
)

// Flags are the parser flags that read a pattern as MongoDB does under
// the given $options: i folds case, s lets . match a newline; m changes
// only what ^ and $ match, which the check does not look at.
func Flags(options string) syntax.Flags {
	flags := syntax.Perl
	if strings.ContainsRune(options, 'i') {
		flags |= syntax.FoldCase
	}
	if strings.ContainsRune(options, 's') {
		flags |= syntax.DotNL
	}
	return flags
}

// BacktrackRisk returns what makes the parsed pattern re (from pattern,
// parsed with flags) dangerous, for an error detail, or "" when nothing does.
func BacktrackRisk(re *syntax.Regexp, pattern string, flags syntax.Flags) string {
	a := &regexAnalysis{first: map[*syntax.Regexp]runeSet{}}
	if risk := a.repetitions(re); risk != "" {
		return risk
	}
	// The parsed tree cannot show every alternation: the parser merges
	// alternatives, turning (a|a)+ into (a)+ and (?:\w|\d)+ into \w+, while
	// PCRE tries each of them. So alternatives are read from the text, and
	// each is parsed on its own.
	groups, ok := scanGroups(pattern)
	if !ok {
		return "cannot be checked for safety"
	}
	for _, alts := range groups {
		branches := make([]alternative, len(alts))
		for i, alt := range alts {
			// Case folding, which a flag earlier in the group may set for
			// PCRE, only makes the check stricter.
			sub, err := syntax.Parse(alt, flags|syntax.FoldCase)
			if err != nil {
				return "cannot be checked for safety"
			}
			branches[i] = a.alternative(sub)
		}
		slices.SortFunc(branches, func(x, y alternative) int { return slices.Compare(x.literal, y.literal) })
		if overlapping(branches, 0) {
			return riskAlternatives
		}
	}
	return ""
}

// alternative is one alternative of a group: its leading literal text, in
// a canonical case, and what follows it.
type alternative struct {
	literal      []rune
	restNullable bool    // what follows can match nothing
	restFirst    runeSet // what follows can begin with
}

func (a *regexAnalysis) alternative(re *syntax.Regexp) alternative {
	var alt alternative
	rest := []*syntax.Regexp{re}
	switch {
	case re.Op == syntax.OpLiteral:
		alt.literal, rest = re.Rune, nil
	case re.Op == syntax.OpConcat && len(re.Sub) > 0 && re.Sub[0].Op == syntax.OpLiteral:
		alt.literal, rest = re.Sub[0].Rune, re.Sub[1:]
	}
	alt.literal = slices.Clone(alt.literal)
	for i, r := range alt.literal {
		alt.literal[i] = foldCanonical(r)
	}
	alt.restNullable = true
	for _, sub := range rest {
		alt.restFirst = alt.restFirst.union(a.firstSet(sub))
		if !nullable(sub) {
			alt.restNullable = false
			break
		}
	}
	return alt
}

// overlapping reports whether two of the alternatives, sorted by literal and
// sharing their first depth literal characters, can go on over the same
// text from there: one can end, or two can go on with the same character.
// Alternatives that go on with the same literal character are compared
// further on (cat|car is fine), so the alternatives are walked as a trie.
func overlapping(alts []alternative, depth int) bool {
	if len(alts) < 2 {
		return false
	}
	var next []runeSet // what each way on can begin with
	for i := 0; i < len(alts); {
		alt := alts[i]
		if len(alt.literal) == depth {
			if alt.restNullable {
				return true
			}
			next = append(next, alt.restFirst)
			i++
			continue
		}
		c := alt.literal[depth]
		j := i + 1
		for j < len(alts) && len(alts[j].literal) > depth && alts[j].literal[depth] == c {
			j++
		}
		if overlapping(alts[i:j], depth+1) {
			return true
		}
		next = append(next, runeOrbit(c, true))
		i = j
	}
	return anyIntersect(next)
}

// foldCanonical returns the smallest rune that r folds to.
func foldCanonical(r rune) rune {
	least := r
	for c := unicode.SimpleFold(r); c != r; c = unicode.SimpleFold(c) {
		least = min(least, c)
	}
	return least
}

// anyIntersect reports whether two of the sets share a rune, in one sweep
// over their ranges sorted by start.
func anyIntersect(sets []runeSet) bool {
	type span struct {
		lo, hi rune
		set    int
	}
	var spans []span
	for i, s := range sets {
		for j := 0; j+1 < len(s); j += 2 {
			spans = append(spans, span{s[j], s[j+1], i})
		}
	}
	slices.SortFunc(spans, func(x, y span) int { return int(x.lo - y.lo) })
	// A set's own ranges are disjoint, so a range that starts before the
	// highest end seen so far overlaps a range of another set.
	reach, owner := rune(-1), -1
	for _, sp := range spans {
		if sp.lo <= reach && sp.set != owner {
			return true
		}
		if sp.hi > reach {
			reach, owner = sp.hi, sp.set
		}
	}
	return false
}

const (
	riskEmpty        = "repeats a group that can match nothing, as in (a*)*"
	riskNested       = "repeats a part that can split the same text in several ways, as in (a+)+ or (\\w+\\s?)+"
	riskAlternatives = "repeats alternatives that can begin alike, as in (a|ab)* or (\\w|\\d)+"
)

type regexAnalysis struct {
	first map[*syntax.Regexp]runeSet // memoised firstSet
}

// repeats reports whether re repeats its body more than once at most.
func repeats(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpStar, syntax.OpPlus:
		return true
	case syntax.OpRepeat:
		return re.Max == -1 || re.Max > 1
	}
	return false
}

// repetitions checks every repetition of re.
func (a *regexAnalysis) repetitions(re *syntax.Regexp) string {
	if repeats(re) {
		body := re.Sub[0]
		switch {
		case nullable(body):
			return riskEmpty
		case a.ambiguous(body, a.firstSet(body)):
			return riskNested
		case a.overlappingAlternatives(body):
			return riskAlternatives
		}
	}
	for _, sub := range re.Sub {
		if risk := a.repetitions(sub); risk != "" {
			return risk
		}
	}
	return ""
}

// ambiguous reports whether re holds a variable repetition whose body can
// begin with a character of what follows it (follow: the characters that can
// come right after re in one round of the enclosing repetition, or begin
// the next round). The repetition can then stop or go on over that
// character, and both are tried.
func (a *regexAnalysis) ambiguous(re *syntax.Regexp, follow runeSet) bool {
	switch re.Op {
	case syntax.OpConcat:
		for i := len(re.Sub) - 1; i >= 0; i-- {
			if a.ambiguous(re.Sub[i], follow) {
				return true
			}
			follow = a.before(re.Sub[i], follow)
		}
	case syntax.OpAlternate:
		for _, sub := range re.Sub {
			if a.ambiguous(sub, follow) {
				return true
			}
		}
	case syntax.OpCapture:
		return a.ambiguous(re.Sub[0], follow)
	case syntax.OpStar, syntax.OpPlus, syntax.OpQuest, syntax.OpRepeat:
		body := re.Sub[0]
		variable := re.Op != syntax.OpRepeat || re.Min != re.Max
		if variable && a.firstSet(body).intersects(follow) {
			return true
		}
		if repeats(re) {
			follow = a.firstSet(body).union(follow)
		}
		return a.ambiguous(body, follow)
	}
	return false
}

// before returns what can follow whatever precedes re, given what follows
// re: re's first characters, and follow too when re can match nothing.
func (a *regexAnalysis) before(re *syntax.Regexp, follow runeSet) runeSet {
	if nullable(re) {
		return a.firstSet(re).union(follow)
	}
	return a.firstSet(re)
}

// overlappingAlternatives reports whether re holds an alternation with a
// branch that can match nothing or two branches that can begin alike. (The
// parser factors a|ab into a(?:|b), which shows as an empty branch.)
func (a *regexAnalysis) overlappingAlternatives(re *syntax.Regexp) bool {
	if re.Op == syntax.OpAlternate {
		firsts := make([]runeSet, len(re.Sub))
		for i, sub := range re.Sub {
			if nullable(sub) {
				return true
			}
			firsts[i] = a.firstSet(sub)
		}
		if anyIntersect(firsts) {
			return true
		}
	}
	return slices.ContainsFunc(re.Sub, a.overlappingAlternatives)
}

// nullable reports whether re can match the empty string.
func nullable(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText,
		syntax.OpEndText, syntax.OpWordBoundary, syntax.OpNoWordBoundary,
		syntax.OpStar, syntax.OpQuest:
		return true
	case syntax.OpLiteral:
		return len(re.Rune) == 0
	case syntax.OpCapture, syntax.OpPlus:
		return nullable(re.Sub[0])
	case syntax.OpRepeat:
		return re.Min == 0 || nullable(re.Sub[0])
	case syntax.OpConcat:
		for _, sub := range re.Sub {
			if !nullable(sub) {
				return false
			}
		}
		return true
	case syntax.OpAlternate:
		return slices.ContainsFunc(re.Sub, nullable)
	}
	return false // characters, classes, NoMatch
}

// firstSet returns the characters a non-empty match of re can begin with.
func (a *regexAnalysis) firstSet(re *syntax.Regexp) runeSet {
	if f, ok := a.first[re]; ok {
		return f
	}
	var f runeSet
	switch re.Op {
	case syntax.OpLiteral:
		if len(re.Rune) > 0 {
			f = runeOrbit(re.Rune[0], re.Flags&syntax.FoldCase != 0)
		}
	case syntax.OpCharClass:
		for i := 0; i+1 < len(re.Rune); i += 2 {
			f = f.union(runeSet{re.Rune[i], re.Rune[i+1]})
		}
	case syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		// A newline makes no difference to the analysis.
		f = runeSet{0, unicode.MaxRune}
	case syntax.OpCapture, syntax.OpStar, syntax.OpPlus, syntax.OpQuest:
		f = a.firstSet(re.Sub[0])
	case syntax.OpRepeat:
		if re.Max != 0 {
			f = a.firstSet(re.Sub[0])
		}
	case syntax.OpConcat:
		for _, sub := range re.Sub {
			f = f.union(a.firstSet(sub))
			if !nullable(sub) {
				break
			}
		}
	case syntax.OpAlternate:
		for _, sub := range re.Sub {
			f = f.union(a.firstSet(sub))
		}
	}
	a.first[re] = f
	return f
}

// runeOrbit returns r, and its case variants when fold is set.
func runeOrbit(r rune, fold bool) runeSet {
	f := runeSet{r, r}
	if fold {
		for c := unicode.SimpleFold(r); c != r; c = unicode.SimpleFold(c) {
			f = f.union(runeSet{c, c})
		}
	}
	return f
}

// runeSet is a set of runes as sorted, disjoint ranges: lo0, hi0, lo1, hi1…
type runeSet []rune

func (s runeSet) union(t runeSet) runeSet {
	if len(t) == 0 {
		return s
	}
	if len(s) == 0 {
		return t
	}
	type span struct{ lo, hi rune }
	spans := make([]span, 0, (len(s)+len(t))/2)
	for _, set := range []runeSet{s, t} {
		for i := 0; i+1 < len(set); i += 2 {
			spans = append(spans, span{set[i], set[i+1]})
		}
	}
	slices.SortFunc(spans, func(x, y span) int { return int(x.lo - y.lo) })
	out := make(runeSet, 0, len(spans)*2)
	for _, sp := range spans {
		if n := len(out); n > 0 && sp.lo <= out[n-1]+1 {
			out[n-1] = max(out[n-1], sp.hi)
			continue
		}
		out = append(out, sp.lo, sp.hi)
	}
	return out
}

func (s runeSet) intersects(t runeSet) bool {
	for i, j := 0, 0; i+1 < len(s) && j+1 < len(t); {
		switch {
		case s[i+1] < t[j]:
			i += 2
		case t[j+1] < s[i]:
			j += 2
		default:
			return true
		}
	}
	return false
}
