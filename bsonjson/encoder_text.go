package bsonjson

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/bits"
	"sort"
	"strconv"
	"unicode/utf8"
)

// MaxSafeInteger is JavaScript's Number.MAX_SAFE_INTEGER: beyond it a
// double no longer holds every integer.
const MaxSafeInteger = 1<<53 - 1

// Relaxed Extended JSON writes ISO dates only for years 1970 to 9999.
const (
	minRelaxedDate = 0
	maxRelaxedDate = 253402300799999 // 9999-12-31T23:59:59.999Z
)

const hexDigits = "0123456789abcdef"

// appendHexString appends b as a quoted lowercase hex string.
func appendHexString(dst, b []byte) []byte {
	dst = append(dst, '"')
	for _, c := range b {
		dst = append(dst, hexDigits[c>>4], hexDigits[c&0xF])
	}
	return append(dst, '"')
}

// appendUUID appends the 16 bytes of b as a quoted canonical UUID.
func appendUUID(dst, b []byte) []byte {
	dst = append(dst, '"')
	for i, c := range b[:16] {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst = append(dst, '-')
		}
		dst = append(dst, hexDigits[c>>4], hexDigits[c&0xF])
	}
	return append(dst, '"')
}

// appendPlainFloat writes f as encoding/json writes a float64, and the
// non-finite values as strings.
func appendPlainFloat(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(dst, `"Infinity"`...)
	case math.IsInf(f, -1):
		return append(dst, `"-Infinity"`...)
	}
	abs := math.Abs(f)
	if abs < 1<<53 && f == math.Trunc(f) && (f != 0 || !math.Signbit(f)) {
		// Below 2^53 an integral double's shortest form is the integer.
		return strconv.AppendInt(dst, int64(f), 10)
	}
	if abs >= 1e-6 {
		if out, ok := appendShortDecimal(dst, f); ok {
			return out
		}
	}
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// Shorten e-09 to e-9, as encoding/json does.
		n := len(dst)
		if n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

// appendExtFloat writes f as the driver's Extended JSON writer does: the
// shortest 'G' form, with ".0" added to integral values so that they read
// back as doubles.
func appendExtFloat(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, "NaN"...)
	case math.IsInf(f, 1):
		return append(dst, "Infinity"...)
	case math.IsInf(f, -1):
		return append(dst, "-Infinity"...)
	}
	if math.Abs(f) < 1e6 && f == math.Trunc(f) && (f != 0 || !math.Signbit(f)) {
		// 'G' writes integers below 10^6 without exponent.
		dst = strconv.AppendInt(dst, int64(f), 10)
		return append(dst, ".0"...)
	}
	if abs := math.Abs(f); abs >= 1e-4 && abs < 1e6 {
		// 'G' writes these as 'f' does.
		if out, ok := appendShortDecimal(dst, f); ok {
			return out
		}
	}
	start := len(dst)
	dst = strconv.AppendFloat(dst, f, 'G', -1, 64)
	if !bytes.ContainsAny(dst[start:], "E.") {
		dst = append(dst, ".0"...)
	}
	return dst
}

// pow10 holds the powers of ten that appendShortDecimal tries, as float64
// (exact up to 10^22) and as uint64.
var (
	pow10f = [...]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8}
	pow10u = [...]uint64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8}
)

// appendShortDecimal writes a non-integral f with one to eight decimals
// exactly as strconv's shortest 'f' form would, several times faster:
// prices, coordinates and measures are mostly such numbers. It reports
// false, writing nothing, for any other f.
//
// For the smallest k whose n = round(|f|·10^k) gives back f as n/10^k
// (one correctly rounded division of two exact values), n·10^-k is a
// decimal that reads back as f, with as few digits as any can have. As
// n < 2^50, the spacing of doubles near f is below 10^-k/4, so no other
// multiple of 10^-k reads back as f: it is the one strconv picks.
func appendShortDecimal(dst []byte, f float64) ([]byte, bool) {
	abs := math.Abs(f)
	for k := 1; k < len(pow10f); k++ {
		x := abs * pow10f[k]
		if x >= 1<<50 {
			return dst, false
		}
		n := uint64(x + 0.5)
		if n == 0 || float64(n)/pow10f[k] != abs {
			continue
		}
		if n%10 == 0 {
			return dst, false // integral: callers write those themselves
		}
		if f < 0 {
			dst = append(dst, '-')
		}
		dst = strconv.AppendUint(dst, n/pow10u[k], 10)
		dst = append(dst, '.')
		frac := n % pow10u[k]
		for p := pow10u[k] / 10; p > 0; p /= 10 {
			dst = append(dst, byte('0'+frac/p%10))
		}
		return dst, true
	}
	return dst, false
}

const msPerDay = 24 * 60 * 60 * 1000

// appendISODate writes the UTC date and time of ms milliseconds since the
// Unix epoch as 2006-01-02T15:04:05.000Z, with an expanded year (a sign and
// at least six digits) outside 0000-9999. With trim, trailing zeros of the
// milliseconds are dropped, and the fraction with them when it is zero, as
// the driver writes relaxed Extended JSON dates.
func appendISODate(dst []byte, ms int64, trim bool) []byte {
	days, rem := ms/msPerDay, ms%msPerDay
	if rem < 0 {
		rem += msPerDay
		days--
	}
	year, month, day := civilFromDays(days)
	if year >= 0 && year <= 9999 {
		dst = append2(dst, int(year/100))
		dst = append2(dst, int(year%100))
	} else {
		abs := year
		if year < 0 {
			dst = append(dst, '-')
			abs = -year
		} else {
			dst = append(dst, '+')
		}
		var tmp [20]byte
		digits := strconv.AppendInt(tmp[:0], abs, 10)
		for i := len(digits); i < 6; i++ {
			dst = append(dst, '0')
		}
		dst = append(dst, digits...)
	}
	r := int(rem)
	milli := r % 1000
	dst = append(dst, '-')
	dst = append2(dst, month)
	dst = append(dst, '-')
	dst = append2(dst, day)
	dst = append(dst, 'T')
	dst = append2(dst, r/3600000)
	dst = append(dst, ':')
	dst = append2(dst, r/60000%60)
	dst = append(dst, ':')
	dst = append2(dst, r/1000%60)
	if !trim || milli != 0 {
		dst = append(dst, '.', byte('0'+milli/100), byte('0'+milli/10%10), byte('0'+milli%10))
		if trim {
			for dst[len(dst)-1] == '0' {
				dst = dst[:len(dst)-1]
			}
		}
	}
	return append(dst, 'Z')
}

// append2 appends v, 0 ≤ v < 100, as two digits.
func append2(dst []byte, v int) []byte {
	return append(dst, byte('0'+v/10), byte('0'+v%10))
}

// civilFromDays converts days since 1970-01-01 to a proleptic Gregorian
// date (Howard Hinnant's algorithm), for every day an int64 of
// milliseconds can reach.
func civilFromDays(z int64) (year int64, month, day int) {
	z += 719468
	era := z
	if era < 0 {
		era -= 146096
	}
	era /= 146097
	doe := z - era*146097                                  // [0, 146096]
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365 // [0, 399]
	doy := doe - (365*yoe + yoe/4 - yoe/100)               // [0, 365]
	mp := (5*doy + 2) / 153                                // [0, 11], March first
	day = int(doy - (153*mp+2)/5 + 1)
	month = int(mp + 3)
	if month > 12 {
		month -= 12
	}
	year = yoe + era*400
	if month <= 2 {
		year++
	}
	return year, month, day
}

// Decimal128 coefficients above 10^34-1 are non-canonical and, per the
// BSON decimal128 specification, read as zero.
const (
	maxCoefficientHi = 0x0001ed09bead87c0
	maxCoefficientLo = 0x378d8e63ffffffff
)

// appendDecimal128 writes the decimal128 value with the high and low 64
// bits hi and lo as the specification's to-string algorithm does
// ("1.23", "1.0E+10", "-0", "NaN", "-Infinity"), without allocating.
func appendDecimal128(dst []byte, hi, lo uint64) []byte {
	neg := hi>>63 == 1
	switch hi >> 58 & 0x1F {
	case 0x1F:
		return append(dst, "NaN"...)
	case 0x1E:
		if neg {
			return append(dst, "-Infinity"...)
		}
		return append(dst, "Infinity"...)
	}
	var exp int
	var ch, cl uint64
	if hi>>61&3 == 3 {
		// The coefficient would be at least 2^113: out of range, so zero.
		exp = int(hi >> 47 & 0x3FFF)
	} else {
		exp = int(hi >> 49 & 0x3FFF)
		ch, cl = hi&(1<<49-1), lo
		if ch > maxCoefficientHi || ch == maxCoefficientHi && cl > maxCoefficientLo {
			ch, cl = 0, 0
		}
	}
	exp -= 6176

	// The coefficient's digits, 19 at a time from the right.
	var buf [40]byte
	i := len(buf)
	for {
		var chunk uint64
		ch, chunk = ch/1e19, ch%1e19
		cl, chunk = bits.Div64(chunk, cl, 1e19)
		for j := 0; j < 19; j++ {
			i--
			buf[i] = byte('0' + chunk%10)
			chunk /= 10
		}
		if ch == 0 && cl == 0 {
			break
		}
	}
	for i < len(buf)-1 && buf[i] == '0' {
		i++
	}
	digits := buf[i:]
	n := len(digits)

	if neg {
		dst = append(dst, '-')
	}
	adjusted := exp + n - 1
	switch {
	case exp > 0 || adjusted < -6:
		dst = append(dst, digits[0])
		if n > 1 {
			dst = append(dst, '.')
			dst = append(dst, digits[1:]...)
		}
		dst = append(dst, 'E')
		if adjusted >= 0 {
			dst = append(dst, '+')
		}
		dst = strconv.AppendInt(dst, int64(adjusted), 10)
	case exp == 0:
		dst = append(dst, digits...)
	default:
		point := n + exp
		if point > 0 {
			dst = append(dst, digits[:point]...)
			dst = append(dst, '.')
			dst = append(dst, digits[point:]...)
		} else {
			dst = append(dst, "0."...)
			for ; point < 0; point++ {
				dst = append(dst, '0')
			}
			dst = append(dst, digits...)
		}
	}
	return dst
}

// appendString appends s as a quoted JSON string.
func (t *transcoder) appendString(dst, s []byte) []byte {
	dst = append(dst, '"')
	dst = t.appendEscaped(dst, s)
	return append(dst, '"')
}

// Bit tricks to test eight bytes at once (see "Bit Twiddling Hacks").
const (
	lsbs = 0x0101010101010101
	msbs = 0x8080808080808080
)

// special returns, for the eight bytes of w, a mask with the high bit of
// the lowest byte that is not copied as it is into a JSON string set: a
// control character, '"', '\\' or a non-ASCII byte (checked as UTF-8).
// Higher bits may be set falsely by borrows, never lower ones, and the
// usual "& ^x" terms are left out because every byte they exclude has its
// high bit set and so is caught by the "| w" term anyway.
func special(w uint64) uint64 {
	return ((w - lsbs*0x20) | ((w ^ lsbs*'"') - lsbs) | ((w ^ lsbs*'\\') - lsbs) | w) & msbs
}

// specialHTML is special that also catches '<', '>' and '&'.
func specialHTML(w uint64) uint64 {
	return special(w) | (((w^lsbs*'<')-lsbs)|((w^lsbs*'>')-lsbs)|((w^lsbs*'&')-lsbs))&msbs
}

// safeASCII[b] is true for the bytes written unescaped: ASCII but for
// control characters, '"' and '\\'. htmlSafeASCII also excludes <, > and
// &. Bytes from 0x80 up are false: they are checked as UTF-8.
var safeASCII, htmlSafeASCII = func() (safe, html [256]bool) {
	for b := 0x20; b < utf8.RuneSelf; b++ {
		safe[b] = b != '"' && b != '\\'
		html[b] = safe[b] && b != '<' && b != '>' && b != '&'
	}
	return safe, html
}()

// safeBytes returns the table of bytes copied unescaped.
func (t *transcoder) safeBytes() *[256]bool {
	if t.html {
		return &htmlSafeASCII
	}
	return &safeASCII
}

// appendEscaped appends the contents of a JSON string holding s: valid
// UTF-8, with invalid bytes replaced by U+FFFD and the same escapes as
// encoding/json.
func (t *transcoder) appendEscaped(dst, s []byte) []byte {
	safe := t.safeBytes()
	start, i := 0, 0
	for i < len(s) {
		// Skip eight plain bytes at a time, then land on the first byte
		// that is not.
		for i+8 <= len(s) {
			w := binary.LittleEndian.Uint64(s[i:])
			m := special(w)
			if t.html {
				m = specialHTML(w)
			}
			if m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				break
			}
			i += 8
		}
		if i >= len(s) {
			break
		}
		b := s[i]
		if safe[b] {
			i++
			continue
		}
		if b < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		// U+2028 and U+2029 are valid JSON but end lines in JavaScript.
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(dst, s[start:]...)
}

// appendSortedOptions writes regular expression options in alphabetical
// order, as Extended JSON requires.
func (t *transcoder) appendSortedOptions(dst, options []byte) []byte {
	var small [16]byte
	if len(options) <= len(small) {
		sorted := small[:len(options)]
		copy(sorted, options)
		ascii := true
		for _, c := range sorted {
			ascii = ascii && c < utf8.RuneSelf
		}
		if ascii {
			// Insertion sort: options are a handful of letters.
			for i := 1; i < len(sorted); i++ {
				for j := i; j > 0 && sorted[j] < sorted[j-1]; j-- {
					sorted[j], sorted[j-1] = sorted[j-1], sorted[j]
				}
			}
			return t.appendString(dst, sorted)
		}
	}
	runes := []rune(string(options))
	sort.Slice(runes, func(i, j int) bool { return runes[i] < runes[j] })
	return t.appendString(dst, []byte(string(runes)))
}
