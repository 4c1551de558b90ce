package mongohttp

import (
	"errors"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"
)

// This file reads a raw query string before any parameter is parsed: its
// size against MaxQueryBytes, the split into parameters, their
// percent-decoding, and the text checks every value passes.

// scan splits a raw query string into decoded parameters and hands each to
// param, refusing oversized strings, bad encodings and repeated names.
func (qp *QueryParser) scan(rawQuery string, param func(key, val string) error) error {
	if err := qp.checkQuerySize(rawQuery); err != nil {
		return err
	}
	// A slice is enough: every name must be known to the policy, so an
	// unknown one ends the scan before the list can grow long.
	var seen []string
	for rest := rawQuery; rest != ""; {
		var pair string
		pair, rest, _ = strings.Cut(rest, "&")
		if pair == "" {
			continue
		}
		rawKey, rawVal, _ := strings.Cut(pair, "=")
		key, err := unescape(rawKey)
		if err == nil {
			if problem := textProblem(key); problem != "" {
				err = errors.New(problem)
			}
		}
		if err != nil {
			return ErrInvalidParameter.Detailf("parameter name %s %s", clip(rawKey), err)
		}
		// Values are checked as text by param, which knows the field: a
		// value for an ObjectID field that is not 24 hexadecimal digits is
		// invalid_object_id whatever bytes it holds.
		val, err := unescape(rawVal)
		if err != nil {
			return ErrInvalidParameter.Detailf("the value of parameter %s %s", clip(key), err)
		}
		if key == "" {
			return ErrInvalidParameter.Detailf("a parameter has an empty name")
		}
		if slices.Contains(seen, key) {
			return ErrInvalidParameter.Detailf("parameter %s is given more than once", clip(key))
		}
		seen = append(seen, key)
		if err := param(key, val); err != nil {
			return err
		}
	}
	return nil
}

// checkQuerySize applies MaxQueryBytes. It measures the query as a next
// link writes it (see nextURL) without its after parameter, which has a cap
// of its own (MaxCursorLength): so a request that fits makes links that fit,
// whatever the policy's cap and however the client escaped its query.
func (qp *QueryParser) checkQuerySize(rawQuery string) error {
	tooLong := func(n int) error {
		return ErrLimitExceeded.Detailf("the query string is %d bytes long without after; the maximum is %d", n, qp.maxQuery)
	}
	// Escaping at most triples a byte, so a longer raw query cannot fit:
	// refuse it before decoding anything.
	if len(rawQuery) > 3*(qp.maxQuery+MaxCursorLength+len("&after=")) {
		return tooLong(len(rawQuery))
	}
	size := 0
	for rest := rawQuery; rest != ""; {
		var pair string
		pair, rest, _ = strings.Cut(rest, "&")
		if pair == "" {
			continue
		}
		rawKey, rawVal, _ := strings.Cut(pair, "=")
		key, errK := unescape(rawKey)
		val, errV := unescape(rawVal)
		switch {
		case errK != nil || errV != nil:
			size += len(pair) + 1 // refused by the scan that follows
		case key == "after":
			continue
		default:
			size += linkEscapedLen(key) + 1 + linkEscapedLen(val) + 1
		}
	}
	if size > 0 {
		size-- // no "&" after the last parameter
	}
	if size > qp.maxQuery {
		return tooLong(size)
	}
	return nil
}

// unescape percent-decodes a query component.
func unescape(s string) (string, error) {
	if strings.ContainsAny(s, "%+") {
		u, err := url.QueryUnescape(s)
		if err != nil {
			return "", errors.New("is not correctly percent-encoded")
		}
		s = u
	}
	return s, nil
}

// textProblem says what keeps s from being text, valid UTF-8 without NUL
// bytes, or returns "" when it is text.
func textProblem(s string) string {
	if !utf8.ValidString(s) {
		return "is not valid UTF-8"
	}
	if strings.IndexByte(s, 0) >= 0 {
		return "contains a NUL byte"
	}
	return ""
}

// checkText refuses a parameter value that is not text.
func checkText(key, val string) error {
	if problem := textProblem(val); problem != "" {
		return ErrInvalidParameter.Detailf("the value of parameter %s %s", clip(key), problem)
	}
	return nil
}
