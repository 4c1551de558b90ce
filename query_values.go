package mongohttp

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// coerceText converts a query-string value to the field's declared type.
func coerceText(name string, typ Type, s string) (any, error) {
	bad := func() error {
		return ErrInvalidParameter.Detailf("field %s takes %s, not %s", clip(name), typ.expects(), clip(s))
	}
	switch typ {
	case String:
		return s, nil
	case Int:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, bad()
		}
		return n, nil
	case Float:
		// Decimal numbers only, as JSON writes them and the API document
		// says: strconv.ParseFloat also reads hexadecimal and underscores.
		if strings.ContainsFunc(s, func(r rune) bool { return !strings.ContainsRune("+-.0123456789eE", r) }) {
			return nil, bad()
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || !finite(f) || !readsAsSent(s) {
			return nil, bad()
		}
		return f, nil
	case Bool:
		switch s {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
		return nil, bad()
	case Date:
		t, err := parseDate(s)
		if err != nil {
			return nil, dateError(name, clip(s), err)
		}
		return t, nil
	case ObjectID:
		id, err := bson.ObjectIDFromHex(s)
		if err != nil {
			return nil, ErrInvalidObjectID.Detailf("field %s takes an ObjectID (24 hexadecimal digits), not %s", clip(name), clip(s))
		}
		return id, nil
	}
	return nil, bad()
}

// parseDate accepts RFC 3339 timestamps and plain YYYY-MM-DD dates
// (midnight UTC) whose instant falls within years 0000 to 9999 UTC. It
// fails with errDateFormat or errDateRange.
func parseDate(s string) (bson.DateTime, error) {
	layout := time.RFC3339Nano
	if len(s) == len(time.DateOnly) {
		layout = time.DateOnly
	} else if !strictRFC3339(s) {
		return 0, errDateFormat
	}
	t, err := time.Parse(layout, s)
	if err != nil {
		return 0, errDateFormat
	}
	// An offset can move a year-0000 or year-9999 timestamp out of range.
	if t.Before(minDate.Time()) || t.After(maxDate.Time()) {
		return 0, errDateRange
	}
	return bson.NewDateTimeFromTime(t), nil
}

// checkDateRange refuses dates outside years 0000 to 9999 UTC.
func checkDateRange(d bson.DateTime) error {
	if d < minDate || d > maxDate {
		return errDateRange
	}
	return nil
}

// dateError reports a bad date for field ("" for a $date wrapper); shown is
// the input, already quoted, or a description of it.
func dateError(field, s string, err error) error {
	subject, expects := "$date", "a date (RFC 3339 or YYYY-MM-DD) or integer milliseconds, within years 0000 to 9999 UTC"
	if field != "" {
		subject, expects = "field "+clip(field), Date.expects()
	}
	if errors.Is(err, errDateRange) {
		return ErrInvalidParameter.Detailf("%s: date %s is out of range; dates must fall within years 0000 to 9999 UTC", subject, s)
	}
	return ErrInvalidParameter.Detailf("%s takes %s, not %s", subject, expects, s)
}

// strictRFC3339 refuses what time.Parse reads beyond RFC 3339, as the API
// document does: a comma before the fraction of a second, and an offset
// past 23:59 ("+24:00", "+23:60").
func strictRFC3339(s string) bool {
	if strings.IndexByte(s, ',') >= 0 {
		return false
	}
	if n := len(s); n >= 6 && (s[n-6] == '+' || s[n-6] == '-') && s[n-3] == ':' {
		return s[n-5:n-3] <= "23" && s[n-2:] <= "59"
	}
	return true
}
