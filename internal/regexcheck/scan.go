package regexcheck

import "strings"

// This file reads a pattern's text where the parsed pattern loses what the
// checks need: the alternatives of each repeated group as written (the
// parser merges them, PCRE tries each), and the braces RE2 takes as
// literals where PCRE may read a repetition.

// scanGroups returns the alternatives of each group of pattern (the whole
// pattern being one) that has several and is repeated or inside a repeated
// group. pattern must be valid RE2 syntax; ok is false when the scan does
// not agree, which callers treat as a risk.
func scanGroups(pattern string) (alternatives [][]string, ok bool) {
	type group struct {
		parent     int
		start, end int   // the body
		bars       []int // positions of its own "|"
		repeated   bool
	}
	groups := []group{{parent: -1, end: len(pattern)}}
	open := []int{0}
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
			if body < 0 {
				return nil, false
			}
			if isGroup {
				groups = append(groups, group{parent: open[len(open)-1], start: body})
				open = append(open, len(groups)-1)
			}
			i = body
		case ')':
			if len(open) < 2 {
				return nil, false
			}
			g := &groups[open[len(open)-1]]
			open = open[:len(open)-1]
			g.end = i
			i++
			g.repeated = quantifierRepeats(pattern[i:])
		case '|':
			g := &groups[open[len(open)-1]]
			g.bars = append(g.bars, i)
			i++
		default:
			i++
		}
	}
	if len(open) != 1 {
		return nil, false
	}
	for _, g := range groups {
		if len(g.bars) == 0 {
			continue
		}
		repeated := false
		for p := g; ; p = groups[p.parent] {
			if p.repeated {
				repeated = true
				break
			}
			if p.parent < 0 {
				break
			}
		}
		if !repeated {
			continue
		}
		var alts []string
		from := g.start
		for _, bar := range g.bars {
			alts = append(alts, pattern[from:bar])
			from = bar + 1
		}
		alternatives = append(alternatives, append(alts, pattern[from:g.end]))
	}
	return alternatives, true
}

// skipQuoted returns the index just past the quoted text (\Q…\E) that
// starts at pattern[i], or len(pattern) when it runs to the end: what
// came before it has still to be read.
func skipQuoted(pattern string, i int) int {
	end := strings.Index(pattern[i+2:], `\E`)
	if end < 0 {
		return len(pattern)
	}
	return i + 2 + end + 2
}

// skipClass returns the index just past the character class that starts at
// pattern[i] == '['. A "]" right after "[" or "[^" belongs to the class.
func skipClass(pattern string, i int) int {
	j := i + 1
	if j < len(pattern) && pattern[j] == '^' {
		j++
	}
	if j < len(pattern) && pattern[j] == ']' {
		j++
	}
	for j < len(pattern) {
		switch {
		case pattern[j] == '\\':
			j += 2
		case strings.HasPrefix(pattern[j:], "[:") && strings.Contains(pattern[j+2:], ":]"):
			// A named class ([:alpha:]); without a ":]" after it, the
			// "[" is a literal, as for RE2.
			j += 2 + strings.Index(pattern[j+2:], ":]") + 2
		case pattern[j] == ']':
			return j + 1
		default:
			j++
		}
	}
	return len(pattern)
}

// groupBody returns where the body of the group opened at pattern[i] ==
// '(' begins, and whether it is a group at all: a flag setting such as
// "(?i)" is not, and its returned index is just past it. It returns -1 for
// what it cannot read.
func groupBody(pattern string, i int) (int, bool) {
	rest := pattern[i+1:]
	if !strings.HasPrefix(rest, "?") {
		return i + 1, true
	}
	if strings.HasPrefix(rest, "?P<") || strings.HasPrefix(rest, "?<") {
		end := strings.IndexByte(rest, '>')
		if end < 0 {
			return -1, false
		}
		return i + 1 + end + 1, true
	}
	for j := 1; j < len(rest); j++ {
		switch rest[j] {
		case ':':
			return i + 1 + j + 1, true
		case ')':
			return i + 1 + j + 1, false
		}
	}
	return -1, false
}

// quantifierRepeats reports whether rest, the text after an atom, begins
// with a quantifier whose maximum is above one. A "{" that does not begin a
// valid {n}, {n,} or {n,m} is a literal.
func quantifierRepeats(rest string) bool {
	if rest == "" {
		return false
	}
	switch rest[0] {
	case '*', '+':
		return true
	case '{':
		_, max, ok := parseRepetition(rest)
		return ok && (max < 0 || max > 1)
	}
	return false
}

// IsRepetition reports whether s begins with {n}, {n,} or {n,m}.
func IsRepetition(s string) bool {
	_, _, ok := parseRepetition(s)
	return ok
}

// parseRepetition reads {n}, {n,} or {n,m} at the start of s; max is -1
// for {n,}. Numbers too large to read count as large.
func parseRepetition(s string) (min, max int, ok bool) {
	end := strings.IndexByte(s, '}')
	if !strings.HasPrefix(s, "{") || end < 0 {
		return 0, 0, false
	}
	lo, hi, comma := s[1:end], "", false
	if c := strings.IndexByte(lo, ','); c >= 0 {
		lo, hi, comma = lo[:c], lo[c+1:], true
	}
	if !isDigits(lo) || (hi != "" && !isDigits(hi)) {
		return 0, 0, false
	}
	min = number(lo)
	switch {
	case !comma:
		max = min
	case hi == "":
		max = -1
	default:
		max = number(hi)
	}
	return min, max, true
}

// number reads decimal digits, saturating at a value above any repetition
// count RE2 accepts.
func number(digits string) int {
	n := 0
	for _, c := range []byte(digits) {
		n = min(n*10+int(c-'0'), 1<<20)
	}
	return n
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// HasLiteralBrace reports whether pattern has a "{", outside escapes and
// classes, that RE2 reads as a literal because it does not begin {n}, {n,}
// or {n,m}. Newer PCRE versions read some of these ({,3}, { 1,3 }) as
// repetitions, which the analysis would not see.
func HasLiteralBrace(pattern string) bool {
	for i := 0; i < len(pattern); {
		switch pattern[i] {
		case '\\':
			if strings.HasPrefix(pattern[i:], `\Q`) {
				i = skipQuoted(pattern, i)
				continue
			}
			// \p{Greek}, \x{41}: the braces belong to the escape.
			if i+2 < len(pattern) && strings.IndexByte("pPx", pattern[i+1]) >= 0 && pattern[i+2] == '{' {
				if end := strings.IndexByte(pattern[i:], '}'); end >= 0 {
					i += end + 1
					continue
				}
			}
			i += 2
		case '[':
			i = skipClass(pattern, i)
		case '{':
			if !IsRepetition(pattern[i:]) {
				return true
			}
			i++
		default:
			i++
		}
	}
	return false
}
