// Package jsonlex is a JSON lexer over a whole request body, for the body
// decoder. It accepts exactly the grammar of RFC 8259, as encoding/json does,
// but refuses strings that are not UTF-8 text (invalid bytes, lone
// surrogates), which encoding/json turns into U+FFFD: what is stored must be
// what was sent. It returns tokens as values: encoding/json's Token API boxes
// every token in an interface and was most of what a write allocated.
package jsonlex

import (
	"fmt"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Kind is the kind of a token.
type Kind uint8

const (
	ObjectStart Kind = iota + 1
	ObjectEnd
	ArrayStart
	ArrayEnd
	String // a member's key or a string value; Text is unescaped
	Number // Text is the number as written
	True
	False
	Null
)

// Token is one token; Text holds a string's or a number's text.
type Token struct {
	Kind Kind
	Text string
}

// Opens reports whether the token starts an object or an array.
func (t Token) Opens() bool { return t.Kind == ObjectStart || t.Kind == ArrayStart }

// lexState is what may come next, as in encoding/json's Decoder.
type lexState uint8

const (
	lexTopValue lexState = iota
	lexTopEnd
	lexArrayStart
	lexArrayValue
	lexArrayComma
	lexObjectStart
	lexObjectKey
	lexObjectColon
	lexObjectValue
	lexObjectComma
)

// SyntaxError is malformed JSON at byte Offset. Truncated marks input that
// stops before its value does.
type SyntaxError struct {
	msg       string
	Offset    int
	Truncated bool
}

func (e *SyntaxError) Error() string { return e.msg }

// Lexer reads the tokens of one JSON text; New makes one.
type Lexer struct {
	data  []byte
	pos   int
	open  []byte // the '{' and '[' not yet closed
	state lexState
	buf   []byte            // scratch for strings with escapes
	keys  map[string]string // known keys, returned without a copy of the data
}

// New returns a lexer of data. keys holds the object keys the caller
// knows, returned as these strings without a copy of the data; it may be
// nil.
func New(data []byte, keys map[string]string) Lexer {
	return Lexer{data: data, keys: keys}
}

// Offset is the byte offset the lexer has read to.
func (l *Lexer) Offset() int { return l.pos }

// skipSpace moves past whitespace and reports the next byte, if any.
func (l *Lexer) skipSpace() (byte, bool) {
	for l.pos < len(l.data) {
		switch c := l.data[l.pos]; c {
		case ' ', '\t', '\n', '\r':
			l.pos++
		default:
			return c, true
		}
	}
	return 0, false
}

func (l *Lexer) errorf(format string, args ...any) error {
	return &SyntaxError{msg: fmt.Sprintf(format, args...), Offset: l.pos}
}

func (l *Lexer) unexpected(c byte, where string) error {
	return l.errorf("invalid character %s %s", quoteByte(c), where)
}

func (l *Lexer) unexpectedEnd() error {
	return &SyntaxError{msg: "unexpected end of JSON input", Offset: l.pos, Truncated: true}
}

// More reports whether the array or object being read has another element.
func (l *Lexer) More() bool {
	c, ok := l.skipSpace()
	return ok && c != ']' && c != '}'
}

// valueAllowed reports whether a value may start here.
func (l *Lexer) valueAllowed() bool {
	switch l.state {
	case lexTopValue, lexArrayStart, lexArrayValue, lexObjectValue:
		return true
	}
	return false
}

// afterValue sets what may follow a complete value.
func (l *Lexer) afterValue() {
	switch {
	case len(l.open) == 0:
		l.state = lexTopEnd
	case l.open[len(l.open)-1] == '[':
		l.state = lexArrayComma
	default:
		l.state = lexObjectComma
	}
}

// Next returns the next token. Commas and colons are checked and consumed.
func (l *Lexer) Next() (Token, error) {
	for {
		c, ok := l.skipSpace()
		if !ok {
			return Token{}, l.unexpectedEnd()
		}
		switch c {
		case '{', '[':
			if !l.valueAllowed() {
				return Token{}, l.unexpected(c, l.where())
			}
			l.pos++
			l.open = append(l.open, c)
			if c == '{' {
				l.state = lexObjectStart
				return Token{Kind: ObjectStart}, nil
			}
			l.state = lexArrayStart
			return Token{Kind: ArrayStart}, nil
		case ']':
			if l.state != lexArrayStart && l.state != lexArrayComma {
				return Token{}, l.unexpected(c, l.where())
			}
			l.pos++
			l.open = l.open[:len(l.open)-1]
			l.afterValue()
			return Token{Kind: ArrayEnd}, nil
		case '}':
			if l.state != lexObjectStart && l.state != lexObjectComma {
				return Token{}, l.unexpected(c, l.where())
			}
			l.pos++
			l.open = l.open[:len(l.open)-1]
			l.afterValue()
			return Token{Kind: ObjectEnd}, nil
		case ':':
			if l.state != lexObjectColon {
				return Token{}, l.unexpected(c, l.where())
			}
			l.pos++
			l.state = lexObjectValue
			continue
		case ',':
			switch l.state {
			case lexArrayComma:
				l.state = lexArrayValue
			case lexObjectComma:
				l.state = lexObjectKey
			default:
				return Token{}, l.unexpected(c, l.where())
			}
			l.pos++
			continue
		case '"':
			if l.state == lexObjectStart || l.state == lexObjectKey {
				s, err := l.str(l.keys)
				if err != nil {
					return Token{}, err
				}
				l.state = lexObjectColon
				return Token{Kind: String, Text: s}, nil
			}
		}
		if !l.valueAllowed() {
			return Token{}, l.unexpected(c, l.where())
		}
		tok, err := l.scalar(c)
		if err != nil {
			return Token{}, err
		}
		l.afterValue()
		return tok, nil
	}
}

// End checks that nothing but whitespace follows the top-level value.
func (l *Lexer) End() error {
	if c, ok := l.skipSpace(); ok {
		return l.unexpected(c, "after top-level value")
	}
	return nil
}

// where describes the state for an error message, in encoding/json's words.
func (l *Lexer) where() string {
	switch l.state {
	case lexTopEnd:
		return "after top-level value"
	case lexArrayComma:
		return "after array element"
	case lexObjectStart, lexObjectKey:
		return "looking for beginning of object key string"
	case lexObjectColon:
		return "after object key"
	case lexObjectComma:
		return "after object key:value pair"
	}
	return "looking for beginning of value"
}

// scalar reads a string, number or literal starting with c.
func (l *Lexer) scalar(c byte) (Token, error) {
	switch {
	case c == '"':
		s, err := l.str(nil)
		return Token{Kind: String, Text: s}, err
	case c == '-' || c >= '0' && c <= '9':
		return l.number()
	}
	for _, lit := range [...]struct {
		text string
		kind Kind
	}{{"true", True}, {"false", False}, {"null", Null}} {
		if lit.text[0] != c {
			continue
		}
		for i := 1; i < len(lit.text); i++ {
			if l.pos+i >= len(l.data) {
				l.pos += i
				return Token{}, l.unexpectedEnd()
			}
			if l.data[l.pos+i] != lit.text[i] {
				l.pos += i
				return Token{}, l.unexpected(l.data[l.pos], "in literal "+lit.text+" (expecting "+quoteByte(lit.text[i])+")")
			}
		}
		l.pos += len(lit.text)
		return Token{Kind: lit.kind}, nil
	}
	return Token{}, l.unexpected(c, "looking for beginning of value")
}

// number reads -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?.
func (l *Lexer) number() (Token, error) {
	start := l.pos
	d := l.data
	i := l.pos
	if d[i] == '-' {
		i++
	}
	digits := func(what string) error {
		if i >= len(d) {
			l.pos = i
			return l.unexpectedEnd()
		}
		if d[i] < '0' || d[i] > '9' {
			l.pos = i
			return l.unexpected(d[i], what)
		}
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
		return nil
	}
	switch {
	case i >= len(d):
		l.pos = i
		return Token{}, l.unexpectedEnd()
	case d[i] == '0':
		i++
	default:
		if err := digits("in numeric literal"); err != nil {
			return Token{}, err
		}
	}
	if i < len(d) && d[i] == '.' {
		i++
		if err := digits("after decimal point in numeric literal"); err != nil {
			return Token{}, err
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if err := digits("in exponent of numeric literal"); err != nil {
			return Token{}, err
		}
	}
	l.pos = i
	return Token{Kind: Number, Text: string(d[start:i])}, nil
}

// str reads a string whose opening quote is at l.pos and returns it
// unescaped.
func (l *Lexer) str(known map[string]string) (string, error) {
	d := l.data
	start := l.pos + 1
	// The common case: no escapes, valid UTF-8, one copy, or none for a
	// string of known.
	for i := start; i < len(d); i++ {
		c := d[i]
		switch {
		case c == '"':
			if s, ok := known[string(d[start:i])]; ok { // no allocation for the look-up
				l.pos = i + 1
				return s, nil
			}
			if utf8.Valid(d[start:i]) {
				l.pos = i + 1
				return string(d[start:i]), nil
			}
			return l.strSlow(start)
		case c == '\\':
			return l.strSlow(start)
		case c < 0x20:
			l.pos = i
			return "", l.unexpected(c, "in string literal")
		}
	}
	l.pos = len(d)
	return "", l.unexpectedEnd()
}

// strSlow unescapes a string, as encoding/json does.
func (l *Lexer) strSlow(start int) (string, error) {
	d := l.data
	b := l.buf[:0]
	i := start
	for i < len(d) {
		c := d[i]
		switch {
		case c == '"':
			l.pos = i + 1
			l.buf = b
			return string(b), nil
		case c < 0x20:
			l.pos = i
			return "", l.unexpected(c, "in string literal")
		case c == '\\':
			if i+1 >= len(d) {
				l.pos = len(d)
				return "", l.unexpectedEnd()
			}
			e := d[i+1]
			i += 2
			switch e {
			case '"', '\\', '/':
				b = append(b, e)
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				// A digit that is not hex is the fault even when the data
				// ends before four of them.
				n := min(4, len(d)-i)
				r, ok := hex4(d[i : i+n])
				if !ok {
					for k := range n {
						if _, ok := hex4(d[i+k : i+k+1]); !ok {
							l.pos = i + k
							return "", l.unexpected(d[i+k], "in \\u hexadecimal character escape")
						}
					}
				}
				if n < 4 {
					l.pos = len(d)
					return "", l.unexpectedEnd()
				}
				i += 4
				if utf16.IsSurrogate(r) {
					// Only a pair makes a rune: a lone surrogate is no
					// text, and storing U+FFFD instead would change what
					// was sent.
					pair := unicode.ReplacementChar
					if i+5 < len(d) && d[i] == '\\' && d[i+1] == 'u' {
						if r2, ok := hex4(d[i+2 : i+6]); ok {
							pair = utf16.DecodeRune(r, r2)
						}
					}
					if pair == unicode.ReplacementChar {
						l.pos = i - 6
						return "", l.errorf("lone surrogate %s in string literal (not valid UTF-8 text)", d[i-6:i])
					}
					r = pair
					i += 6
				}
				b = utf8.AppendRune(b, r)
			default:
				l.pos = i - 1
				return "", l.unexpected(e, "in string escape code")
			}
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, size := utf8.DecodeRune(d[i:])
			if r == utf8.RuneError && size == 1 {
				l.pos = i
				return "", l.errorf("invalid UTF-8 in string literal")
			}
			b = utf8.AppendRune(b, r)
			i += size
		}
	}
	l.pos = len(d)
	return "", l.unexpectedEnd()
}

// hex4 reads hex digits as a rune; false if one is not a hex digit.
func hex4(h []byte) (rune, bool) {
	var r rune
	for _, c := range h {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// quoteByte shows a byte in an error message as encoding/json does.
func quoteByte(c byte) string {
	if c == '\'' {
		return `'\''`
	}
	if c == '"' {
		return `'"'`
	}
	s := fmt.Sprintf("%q", string(rune(c)))
	return "'" + s[1:len(s)-1] + "'"
}
