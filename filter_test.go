package mongohttp

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

// nest wraps a condition on age in n levels of $and.
func nest(n int) string {
	return strings.Repeat(`{"$and":[`, n) + `{"age":1}` + strings.Repeat(`]}`, n)
}

// f encodes a filter= parameter.
func f(json string) string { return "filter=" + url.QueryEscape(json) }

// TestHostileInput checks that each hostile request is refused with its
// specific 4xx code.
func TestHostileInput(t *testing.T) {
	qp := newParser(t, testPolicy())
	noRegex := testPolicy()
	noRegex.Operators = nil
	qpNoRegex := newParser(t, noRegex)

	doc := D{{Key: "_id", Value: oid}, {Key: "age", Value: int32(40)}}
	tok := tokenFor(t, qp, "sort=-age", doc)
	tooManyIn := strings.TrimSuffix(strings.Repeat("a,", 101), ",")
	tooManyJSON := `[` + strings.TrimSuffix(strings.Repeat(`"a",`, 101), ",") + `]`

	tests := []struct {
		name  string
		qp    *QueryParser
		query string
		want  error
	}{
		// Operator injection through keys.
		{"dollar operator in brackets", nil, "name[$ne]=x", ErrOperatorNotAllowed},
		{"encoded dollar in brackets", nil, "name[%24ne]=x", ErrOperatorNotAllowed},
		{"whole key encoded", nil, "name%5B%24ne%5D=x", ErrOperatorNotAllowed},
		{"dollar parameter", nil, "$where=sleep(100)", ErrOperatorNotAllowed},
		{"encoded dollar parameter", nil, "%24where=1", ErrOperatorNotAllowed},
		{"where as bracket operator", nil, "name[where]=x", ErrOperatorNotAllowed},
		{"expr as bracket operator", nil, "age[expr]=1", ErrOperatorNotAllowed},
		{"operator case matters", nil, "age[GTE]=1", ErrOperatorNotAllowed},
		{"filter= only operator in brackets", nil, "age[not]=1", ErrInvalidParameter},
		{"nested brackets", nil, "name[eq][ne]=x", ErrInvalidParameter},
		{"unclosed bracket", nil, "name[gte=1", ErrInvalidParameter},
		{"stray closing bracket", nil, "name]=1", ErrInvalidParameter},

		// Forbidden operators at any depth of filter=.
		{"$where", nil, f(`{"$where":"sleep(1000)"}`), ErrOperatorNotAllowed},
		{"$function", nil, f(`{"$function":{"body":"x","args":[],"lang":"js"}}`), ErrOperatorNotAllowed},
		{"$accumulator", nil, f(`{"$accumulator":{}}`), ErrOperatorNotAllowed},
		{"$expr", nil, f(`{"$expr":{"$gt":["$age",1]}}`), ErrOperatorNotAllowed},
		{"$where in $and", nil, f(`{"$and":[{"$where":"1"}]}`), ErrOperatorNotAllowed},
		{"$expr in second $or clause", nil, f(`{"$or":[{"age":1},{"$expr":{}}]}`), ErrOperatorNotAllowed},
		{"$where deep in logical operators", nil, f(`{"$nor":[{"$and":[{"$or":[{"$where":"1"}]}]}]}`), ErrOperatorNotAllowed},
		{"$where inside $not", nil, f(`{"age":{"$not":{"$where":"1"}}}`), ErrOperatorNotAllowed},
		{"$where inside $elemMatch", nil, f(`{"items":{"$elemMatch":{"$where":"1"}}}`), ErrOperatorNotAllowed},
		{"$function inside $elemMatch field", nil, f(`{"items":{"$elemMatch":{"sku":{"$function":{}}}}}`), ErrOperatorNotAllowed},
		{"$expr as a field operator", nil, f(`{"age":{"$expr":1}}`), ErrOperatorNotAllowed},
		{"$where beside $regex", nil, f(`{"name":{"$regex":"a","$where":"1"}}`), ErrOperatorNotAllowed},
		{"$text", nil, f(`{"$text":{"$search":"x"}}`), ErrOperatorNotAllowed},
		{"$comment", nil, f(`{"$comment":"x"}`), ErrOperatorNotAllowed},
		{"elemMatch not listed", qpNoRegex, f(`{"tags":{"$elemMatch":{"$eq":"a"}}}`), ErrOperatorNotAllowed},
		{"and not listed", newParser(t, Policy{Operators: []string{"eq"}}), f(`{"$and":[{"_id":{"$oid":"` + oidHex + `"}}]}`), ErrOperatorNotAllowed},
		{"$and at operator level", nil, f(`{"age":{"$and":[{"$gt":1}]}}`), ErrOperatorNotAllowed},

		// Fields that are not allowed, dotted paths into them, bad names.
		{"dotted path into hidden field", nil, "password_hash.x=1", ErrFieldNotAllowed},
		{"ancestor of a listed path", nil, "profile=x", ErrFieldNotAllowed},
		{"array index path", nil, "tags.0=x", ErrFieldNotAllowed},
		{"hidden sub-field", nil, "profile.secret=x", ErrFieldNotAllowed},
		{"hidden field with operator", nil, "password_hash[exists]=true", ErrFieldNotAllowed},
		{"hidden field in filter=", nil, f(`{"password_hash":"x"}`), ErrFieldNotAllowed},
		{"hidden sub-field in filter=", nil, f(`{"profile.secret":{"$exists":true}}`), ErrFieldNotAllowed},
		{"hidden field in $or", nil, f(`{"$or":[{"name":"a"},{"password_hash":{"$exists":true}}]}`), ErrFieldNotAllowed},
		{"unlisted sub-field in $elemMatch", nil, f(`{"items":{"$elemMatch":{"secret":1}}}`), ErrFieldNotAllowed},
		{"NUL in field name", nil, f(`{"a\u0000b":1}`), ErrFieldNotAllowed},
		{"empty segment", nil, f(`{"profile..city":"x"}`), ErrFieldNotAllowed},
		{"positional path", nil, f(`{"tags.$":"x"}`), ErrFieldNotAllowed},
		{"empty field name", nil, f(`{"":1}`), ErrFieldNotAllowed},
		{"typo", nil, "nmae=x", ErrUnknownParameter},
		{"hidden field plain", nil, "password_hash=x", ErrUnknownParameter},

		// Sort and projection of hidden or unlisted fields.
		{"sort hidden", nil, "sort=password_hash", ErrFieldNotAllowed},
		{"sort hidden sub-field", nil, "sort=profile.secret", ErrFieldNotAllowed},
		{"sort ancestor of hidden", nil, "sort=-profile", ErrFieldNotAllowed},
		{"sort unlisted", nil, "sort=email", ErrFieldNotAllowed},
		{"sort twice", nil, "sort=age,-age", ErrInvalidParameter},
		{"sort empty", nil, "sort=", ErrInvalidParameter},
		{"sort empty item", nil, "sort=age,,name", ErrInvalidParameter},
		{"sort bare minus", nil, "sort=-", ErrInvalidParameter},
		{"project hidden", nil, "fields=password_hash", ErrFieldNotAllowed},
		{"project ancestor of hidden", nil, "fields=profile", ErrFieldNotAllowed},
		{"project hidden beside allowed", nil, "fields=name,profile.secret", ErrFieldNotAllowed},
		{"project empty", nil, "fields=", ErrInvalidParameter},
		{"project twice", nil, "fields=name,name", ErrInvalidParameter},
		{"projection disabled", newParser(t, Policy{}), "fields=_id", ErrFieldNotAllowed},

		// limit and skip.
		{"negative limit", nil, "limit=-1", ErrInvalidParameter},
		{"zero limit", nil, "limit=0", ErrInvalidParameter},
		{"huge limit", nil, "limit=99999999999999999999", ErrLimitExceeded},
		{"limit above max", nil, "limit=101", ErrLimitExceeded},
		{"non-numeric limit", nil, "limit=ten", ErrInvalidParameter},
		{"exponent limit", nil, "limit=1e3", ErrInvalidParameter},
		{"signed limit", nil, "limit=%2B5", ErrInvalidParameter},
		{"empty limit", nil, "limit=", ErrInvalidParameter},
		{"negative skip", nil, "skip=-5", ErrInvalidParameter},
		{"huge skip", nil, "skip=99999999999999999999", ErrLimitExceeded},
		{"skip above max", nil, "skip=1001", ErrLimitExceeded},
		{"non-numeric skip", nil, "skip=0x10", ErrInvalidParameter},

		// after tokens.
		{"token not base64", nil, "sort=-age&after=%21%21%21", ErrInvalidCursor},
		{"token truncated", nil, "sort=-age&after=" + tok[:len(tok)/2], ErrInvalidCursor},
		{"token from another sort", nil, "sort=age&after=" + tok, ErrInvalidCursor},
		{"token one byte flipped", nil, "sort=-age&after=" + flipChar(tok, len(tok)/2), ErrInvalidCursor},
		{"token with skip", nil, "sort=-age&skip=0&after=" + tok, ErrInvalidParameter},
		{"token twice", nil, "sort=-age&after=" + tok + "&after=" + tok, ErrInvalidParameter},

		// Encoding, size, duplicates.
		{"invalid UTF-8 value", nil, "name=%FF", ErrInvalidParameter},
		{"invalid UTF-8 name", nil, "%C3%28=1", ErrInvalidParameter},
		{"raw invalid UTF-8", nil, "name=\xff\xfe", ErrInvalidParameter},
		{"overlong UTF-8", nil, "name=%C0%AF", ErrInvalidParameter},
		{"NUL in value", nil, "name=a%00b", ErrInvalidParameter},
		{"NUL in name", nil, "na%00me=1", ErrInvalidParameter},
		{"malformed percent in name", nil, "name%ZZ=1", ErrInvalidParameter},
		{"malformed percent in value", nil, "name=%G1", ErrInvalidParameter},
		{"truncated percent", nil, "name=%4", ErrInvalidParameter},
		{"empty name", nil, "=x", ErrInvalidParameter},
		{"16 KB query string", nil, "name=" + strings.Repeat("a", 16<<10), ErrLimitExceeded},
		{"duplicate field", nil, "age=1&age=2", ErrInvalidParameter},
		{"duplicate limit", nil, "limit=1&limit=2", ErrInvalidParameter},
		{"duplicate filter", nil, "filter=%7B%7D&filter=%7B%7D", ErrInvalidParameter},
		{"duplicate operator", nil, "age[gte]=1&age[gte]=2", ErrInvalidParameter},
		{"equality twice", nil, "age=1&age[eq]=1", ErrInvalidParameter},
		{"duplicate key in filter=", nil, f(`{"name":"a","name":"b"}`), ErrInvalidParameter},
		{"bad count", nil, "count=all", ErrInvalidParameter},

		// Wrong types for declared fields.
		{"text for int", nil, "age=abc", ErrInvalidParameter},
		{"fraction for int", nil, "age=1.5", ErrInvalidParameter},
		{"int overflow", nil, "age=99999999999999999999", ErrInvalidParameter},
		{"NaN for float", nil, "score=NaN", ErrInvalidParameter},
		{"yes for bool", nil, "active=yes", ErrInvalidParameter},
		{"bad date", nil, "created=yesterday", ErrInvalidParameter},
		{"bad ObjectID", nil, "owner=123", ErrInvalidObjectID},
		{"bad ObjectID in list", nil, "owner[in]=" + oidHex + ",nope", ErrInvalidObjectID},
		{"bad exists", nil, "email[exists]=1", ErrInvalidParameter},
		{"bad size", nil, "tags[size]=-1", ErrInvalidParameter},
		{"string for int in filter=", nil, f(`{"age":"35"}`), ErrInvalidParameter},
		{"number for string in filter=", nil, f(`{"name":5}`), ErrInvalidParameter},
		{"bool for date in filter=", nil, f(`{"created":{"$gt":true}}`), ErrInvalidParameter},
		{"bad ObjectID string in filter=", nil, f(`{"owner":"zzz"}`), ErrInvalidObjectID},
		{"number for ObjectID in filter=", nil, f(`{"owner":5}`), ErrInvalidParameter},
		{"$oid garbage", nil, f(`{"owner":{"$oid":"zz"}}`), ErrInvalidParameter},
		{"$date garbage", nil, f(`{"created":{"$date":"soon"}}`), ErrInvalidParameter},
		{"document literal", nil, f(`{"name":{"first":"x"}}`), ErrInvalidParameter},
		{"empty document literal", nil, f(`{"name":{}}`), ErrInvalidParameter},
		{"document in $in", nil, f(`{"name":{"$in":[{"a":1}]}}`), ErrInvalidParameter},
		{"mixed operator document", nil, f(`{"age":{"$gt":1,"x":1}}`), ErrInvalidParameter},
		{"decimal for int", nil, f(`{"age":{"$gt":{"$numberDecimal":"1"}}}`), ErrInvalidParameter},
		{"NaN in filter=", nil, f(`{"score":{"$numberDouble":"NaN"}}`), ErrInvalidParameter},
		{"null with $gt", nil, f(`{"age":{"$gt":null}}`), ErrInvalidParameter},
		{"number for $exists", nil, f(`{"email":{"$exists":1}}`), ErrInvalidParameter},
		{"scalar for $in", nil, f(`{"age":{"$in":5}}`), ErrInvalidParameter},
		{"negative $size", nil, f(`{"tags":{"$size":-1}}`), ErrInvalidParameter},
		{"$not of $not", nil, f(`{"age":{"$not":{"$not":{"$gt":1}}}}`), ErrInvalidParameter},
		{"$not of a scalar", nil, f(`{"age":{"$not":5}}`), ErrInvalidParameter},
		{"empty $and", nil, f(`{"$and":[]}`), ErrInvalidParameter},
		{"$or of a document", nil, f(`{"$or":{"age":1}}`), ErrInvalidParameter},
		{"$or of scalars", nil, f(`{"$or":[1]}`), ErrInvalidParameter},

		// Regular expressions.
		{"regex not enabled", qpNoRegex, "name[regex]=a", ErrOperatorNotAllowed},
		{"regex not enabled in filter=", qpNoRegex, f(`{"name":{"$regex":"a"}}`), ErrOperatorNotAllowed},
		{"regex value not enabled", qpNoRegex, f(`{"name":{"$regularExpression":{"pattern":"a","options":""}}}`), ErrOperatorNotAllowed},
		{"regex value in $in not enabled", qpNoRegex, f(`{"name":{"$in":[{"$regularExpression":{"pattern":"a","options":""}}]}}`), ErrInvalidParameter},
		{"regex over the cap", nil, "name[regex]=" + strings.Repeat("a", 65), ErrLimitExceeded},
		{"regex over the cap in filter=", nil, f(`{"name":{"$regex":"` + strings.Repeat("a", 65) + `"}}`), ErrLimitExceeded},
		{"regex lookahead", nil, "name[regex]=" + url.QueryEscape("(?=a)"), ErrInvalidParameter},
		{"regex on an int field", nil, "age[regex]=1", ErrInvalidParameter},
		{"NUL in regex", nil, f(`{"name":{"$regex":"a\u0000"}}`), ErrInvalidParameter},
		{"bad regex options", nil, f(`{"name":{"$regex":"a","$options":"g"}}`), ErrInvalidParameter},
		{"$options alone", nil, f(`{"name":{"$options":"i"}}`), ErrInvalidParameter},

		// Value counts, depth and size.
		{"too many in-values", nil, "tags[in]=" + tooManyIn, ErrLimitExceeded},
		{"too many in-values in filter=", nil, f(`{"tags":{"$in":` + tooManyJSON + `}}`), ErrLimitExceeded},
		{"too long array equality", nil, f(`{"tags":` + tooManyJSON + `}`), ErrLimitExceeded},
		{"filter nested 200 deep", nil, f(nest(200)), ErrLimitExceeded},
		{"filter one level too deep", nil, f(nest(8)), ErrLimitExceeded}, // nest(7) has depth 8
		{"filter over the byte cap", nil, f(`{"name":"` + strings.Repeat("a", 2100) + `"}`), ErrLimitExceeded},

		// filter= that is not one JSON object.
		{"filter not JSON", nil, f(`{name:`), ErrInvalidParameter},
		{"filter is an array", nil, f(`[{"name":"x"}]`), ErrInvalidParameter},
		{"filter is a string", nil, f(`"x"`), ErrInvalidParameter},
		{"filter is empty", nil, "filter=", ErrInvalidParameter},
		{"filter with trailing data", nil, f(`{"name":"x"} {"$where":"1"}`), ErrInvalidParameter},
		{"filter with trailing garbage", nil, f(`{"name":"x"}xx`), ErrInvalidParameter},
		{"filter unterminated", nil, f(`{"name":"x"`), ErrInvalidParameter},
	}
	if len(tests) < 40 {
		t.Fatalf("only %d hostile cases", len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.qp
			if p == nil {
				p = qp
			}
			q, err := p.Parse(tt.query)
			if err == nil {
				t.Fatalf("Parse accepted it: filter %s", extJSON(q.Filter))
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			var e *Error
			if !errors.As(err, &e) || e.Status != 400 || e.Detail == "" {
				t.Fatalf("err %#v is not a 400 *Error with a detail", err)
			}
		})
	}
}

// flipChar changes the character at i of a base64url token to another
// character of the alphabet.
func flipChar(s string, i int) string {
	c := byte('A')
	if s[i] == 'A' {
		c = 'B'
	}
	return s[:i] + string(c) + s[i+1:]
}

// TestFilterDepthBoundary pins what counts as a level.
func TestFilterDepthBoundary(t *testing.T) {
	p := testPolicy()
	p.MaxFilterDepth = 3
	qp := newParser(t, p)
	for query, ok := range map[string]bool{
		`{"age":1}`:                                  true,  // 1
		`{"age":{"$gt":1}}`:                          true,  // 2
		`{"age":{"$not":{"$gt":1}}}`:                 true,  // 3
		`{"$or":[{"age":{"$gt":1}}]}`:                true,  // 3
		`{"$or":[{"age":{"$not":{"$gt":1}}}]}`:       false, // 4
		`{"$or":[{"$and":[{"age":1}]}]}`:             true,  // 3
		`{"$or":[{"$and":[{"age":{"$gt":1}}]}]}`:     false, // 4
		`{"items":{"$elemMatch":{"qty":1}}}`:         true,  // 3
		`{"items":{"$elemMatch":{"qty":{"$gt":1}}}}`: false, // 4
	} {
		_, err := qp.Parse(f(query))
		if ok && err != nil {
			t.Errorf("%s: %v", query, err)
		}
		if !ok && !errors.Is(err, ErrLimitExceeded) {
			t.Errorf("%s: err = %v, want limit_exceeded", query, err)
		}
	}
}
