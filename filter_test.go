package mongohttp

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

// nest wraps a condition on age in n levels of $and.
func nestedAnd(n int) string {
	return strings.Repeat(`{"$and":[`, n) + `{"age":1}` + strings.Repeat(`]}`, n)
}

// f encodes a filter= parameter.
func filterParam(json string) string { return "filter=" + url.QueryEscape(json) }

// TestHostileInput checks that each hostile request is refused with its
// specific 4xx code.
func TestHostileInput(t *testing.T) {
	qp := mustQueryParser(t, queryTestPolicy())
	noRegex := queryTestPolicy()
	noRegex.Operators = nil
	qpNoRegex := mustQueryParser(t, noRegex)

	doc := qD{{Key: "_id", Value: queryOID}, {Key: "age", Value: int32(40)}}
	tok := afterToken(t, qp, "sort=-age", doc)
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
		{"$where", nil, filterParam(`{"$where":"sleep(1000)"}`), ErrOperatorNotAllowed},
		{"$function", nil, filterParam(`{"$function":{"body":"x","args":[],"lang":"js"}}`), ErrOperatorNotAllowed},
		{"$accumulator", nil, filterParam(`{"$accumulator":{}}`), ErrOperatorNotAllowed},
		{"$expr", nil, filterParam(`{"$expr":{"$gt":["$age",1]}}`), ErrOperatorNotAllowed},
		{"$where in $and", nil, filterParam(`{"$and":[{"$where":"1"}]}`), ErrOperatorNotAllowed},
		{"$expr in second $or clause", nil, filterParam(`{"$or":[{"age":1},{"$expr":{}}]}`), ErrOperatorNotAllowed},
		{"$where deep in logical operators", nil, filterParam(`{"$nor":[{"$and":[{"$or":[{"$where":"1"}]}]}]}`), ErrOperatorNotAllowed},
		{"$where inside $not", nil, filterParam(`{"age":{"$not":{"$where":"1"}}}`), ErrOperatorNotAllowed},
		{"$where inside $elemMatch", nil, filterParam(`{"items":{"$elemMatch":{"$where":"1"}}}`), ErrOperatorNotAllowed},
		{"$function inside $elemMatch field", nil, filterParam(`{"items":{"$elemMatch":{"sku":{"$function":{}}}}}`), ErrOperatorNotAllowed},
		{"$expr as a field operator", nil, filterParam(`{"age":{"$expr":1}}`), ErrOperatorNotAllowed},
		{"$where beside $regex", nil, filterParam(`{"name":{"$regex":"a","$where":"1"}}`), ErrOperatorNotAllowed},
		{"$text", nil, filterParam(`{"$text":{"$search":"x"}}`), ErrOperatorNotAllowed},
		{"$comment", nil, filterParam(`{"$comment":"x"}`), ErrOperatorNotAllowed},
		{"elemMatch not listed", qpNoRegex, filterParam(`{"tags":{"$elemMatch":{"$eq":"a"}}}`), ErrOperatorNotAllowed},
		{"and not listed", mustQueryParser(t, Policy{Operators: []string{"eq"}}), filterParam(`{"$and":[{"_id":{"$oid":"` + queryOIDHex + `"}}]}`), ErrOperatorNotAllowed},
		{"$and at operator level", nil, filterParam(`{"age":{"$and":[{"$gt":1}]}}`), ErrOperatorNotAllowed},

		// Fields that are not allowed, dotted paths into them, bad names.
		{"dotted path into hidden field", nil, "password_hash.x=1", ErrFieldNotAllowed},
		{"ancestor of a listed path", nil, "profile=x", ErrFieldNotAllowed},
		{"array index path", nil, "tags.0=x", ErrFieldNotAllowed},
		{"hidden sub-field", nil, "profile.secret=x", ErrFieldNotAllowed},
		{"hidden field with operator", nil, "password_hash[exists]=true", ErrFieldNotAllowed},
		{"hidden field in filter=", nil, filterParam(`{"password_hash":"x"}`), ErrFieldNotAllowed},
		{"hidden sub-field in filter=", nil, filterParam(`{"profile.secret":{"$exists":true}}`), ErrFieldNotAllowed},
		{"hidden field in $or", nil, filterParam(`{"$or":[{"name":"a"},{"password_hash":{"$exists":true}}]}`), ErrFieldNotAllowed},
		{"unlisted sub-field in $elemMatch", nil, filterParam(`{"items":{"$elemMatch":{"secret":1}}}`), ErrFieldNotAllowed},
		{"NUL in field name", nil, filterParam(`{"a\u0000b":1}`), ErrInvalidParameter},
		{"empty segment", nil, filterParam(`{"profile..city":"x"}`), ErrFieldNotAllowed},
		{"positional path", nil, filterParam(`{"tags.$":"x"}`), ErrFieldNotAllowed},
		{"empty field name", nil, filterParam(`{"":1}`), ErrFieldNotAllowed},
		{"typo", nil, "nmae=x", ErrFieldNotAllowed},
		{"typo with operator", nil, "nmae[eq]=x", ErrFieldNotAllowed},
		{"hidden field plain", nil, "password_hash=x", ErrFieldNotAllowed},
		{"unknown field with a refused operator", nil, "nmae[$gt]=x", ErrFieldNotAllowed},
		{"operator as a name", nil, "$where=1", ErrOperatorNotAllowed},
		{"operator as a name with operator", nil, "$where[eq]=1", ErrOperatorNotAllowed},

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
		{"projection disabled", mustQueryParser(t, Policy{}), "fields=_id", ErrFieldNotAllowed},

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
		{"token with a line break", nil, "sort=-age&after=" + tok[:len(tok)/2] + "%0A" + tok[len(tok)/2:], ErrInvalidCursor},
		{"token with a carriage return", nil, "sort=-age&after=" + tok[:5] + "%0D" + tok[5:], ErrInvalidCursor},
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
		{"duplicate key in filter=", nil, filterParam(`{"name":"a","name":"b"}`), ErrInvalidParameter},
		{"bad count", nil, "count=all", ErrInvalidParameter},

		// Wrong types for declared fields.
		{"text for int", nil, "age=abc", ErrInvalidParameter},
		{"fraction for int", nil, "age=1.5", ErrInvalidParameter},
		{"int overflow", nil, "age=99999999999999999999", ErrInvalidParameter},
		{"NaN for float", nil, "score=NaN", ErrInvalidParameter},
		{"underflow for float", nil, "score=1e-400", ErrInvalidParameter},
		{"yes for bool", nil, "active=yes", ErrInvalidParameter},
		{"bad date", nil, "created=yesterday", ErrInvalidParameter},
		{"bad ObjectID", nil, "owner=123", ErrInvalidObjectID},
		{"bad ObjectID in list", nil, "owner[in]=" + queryOIDHex + ",nope", ErrInvalidObjectID},
		{"bad exists", nil, "email[exists]=1", ErrInvalidParameter},
		{"bad size", nil, "tags[size]=-1", ErrInvalidParameter},
		{"string for int in filter=", nil, filterParam(`{"age":"35"}`), ErrInvalidParameter},
		{"number for string in filter=", nil, filterParam(`{"name":5}`), ErrInvalidParameter},
		{"bool for date in filter=", nil, filterParam(`{"created":{"$gt":true}}`), ErrInvalidParameter},
		{"bad ObjectID string in filter=", nil, filterParam(`{"owner":"zzz"}`), ErrInvalidObjectID},
		{"number for ObjectID in filter=", nil, filterParam(`{"owner":5}`), ErrInvalidObjectID},
		{"$oid garbage", nil, filterParam(`{"owner":{"$oid":"zz"}}`), ErrInvalidObjectID},
		{"$date garbage", nil, filterParam(`{"created":{"$date":"soon"}}`), ErrInvalidParameter},
		{"document literal", nil, filterParam(`{"name":{"first":"x"}}`), ErrInvalidParameter},
		{"empty document literal", nil, filterParam(`{"name":{}}`), ErrInvalidParameter},
		{"document in $in", nil, filterParam(`{"name":{"$in":[{"a":1}]}}`), ErrInvalidParameter},
		{"mixed operator document", nil, filterParam(`{"age":{"$gt":1,"x":1}}`), ErrInvalidParameter},
		{"decimal for int", nil, filterParam(`{"age":{"$gt":{"$numberDecimal":"1"}}}`), ErrInvalidParameter},
		{"NaN in filter=", nil, filterParam(`{"score":{"$numberDouble":"NaN"}}`), ErrInvalidParameter},
		// Numbers a double rounds to a whole number they are not: an int
		// field would compare with another integer than the one sent.
		{"underflow for int in filter=", nil, filterParam(`{"age":1e-400}`), ErrInvalidParameter},
		{"underflow in $in", nil, filterParam(`{"age":{"$in":[1,2e-999]}}`), ErrInvalidParameter},
		{"17 digits for int in filter=", nil, filterParam(`{"age":{"$gt":1.0000000000000001}}`), ErrInvalidParameter},
		{"beyond 2^53 with a fraction", nil, filterParam(`{"age":9007199254740993.0}`), ErrInvalidParameter},
		{"underflow in $numberDouble", nil, filterParam(`{"age":{"$numberDouble":"1e-400"}}`), ErrInvalidParameter},
		{"underflow for float in filter=", nil, filterParam(`{"score":{"$lt":1e-400}}`), ErrInvalidParameter},
		{"underflow under $not", nil, filterParam(`{"age":{"$not":{"$eq":1E-400}}}`), ErrInvalidParameter},
		{"null with $gt", nil, filterParam(`{"age":{"$gt":null}}`), ErrInvalidParameter},
		{"number for $exists", nil, filterParam(`{"email":{"$exists":1}}`), ErrInvalidParameter},
		{"scalar for $in", nil, filterParam(`{"age":{"$in":5}}`), ErrInvalidParameter},
		{"negative $size", nil, filterParam(`{"tags":{"$size":-1}}`), ErrInvalidParameter},
		{"$not of $not", nil, filterParam(`{"age":{"$not":{"$not":{"$gt":1}}}}`), ErrInvalidParameter},
		{"$not of a scalar", nil, filterParam(`{"age":{"$not":5}}`), ErrInvalidParameter},
		{"empty $and", nil, filterParam(`{"$and":[]}`), ErrInvalidParameter},
		{"$or of a document", nil, filterParam(`{"$or":{"age":1}}`), ErrInvalidParameter},
		{"$or of scalars", nil, filterParam(`{"$or":[1]}`), ErrInvalidParameter},

		// Regular expressions.
		{"regex not enabled", qpNoRegex, "name[regex]=a", ErrOperatorNotAllowed},
		{"regex not enabled in filter=", qpNoRegex, filterParam(`{"name":{"$regex":"a"}}`), ErrOperatorNotAllowed},
		{"regex value not enabled", qpNoRegex, filterParam(`{"name":{"$regularExpression":{"pattern":"a","options":""}}}`), ErrOperatorNotAllowed},
		{"regex value in $in not enabled", qpNoRegex, filterParam(`{"name":{"$in":[{"$regularExpression":{"pattern":"a","options":""}}]}}`), ErrInvalidParameter},
		{"regex over the cap", nil, "name[regex]=" + strings.Repeat("a", 65), ErrLimitExceeded},
		{"regex over the cap in filter=", nil, filterParam(`{"name":{"$regex":"` + strings.Repeat("a", 65) + `"}}`), ErrLimitExceeded},
		{"regex lookahead", nil, "name[regex]=" + url.QueryEscape("(?=a)"), ErrInvalidParameter},
		{"regex on an int field", nil, "age[regex]=1", ErrInvalidParameter},
		{"NUL in regex", nil, filterParam(`{"name":{"$regex":"a\u0000"}}`), ErrInvalidParameter},
		{"bad regex options", nil, filterParam(`{"name":{"$regex":"a","$options":"g"}}`), ErrInvalidParameter},
		{"$options alone", nil, filterParam(`{"name":{"$options":"i"}}`), ErrInvalidParameter},

		// Value counts, depth and size.
		{"too many in-values", nil, "tags[in]=" + tooManyIn, ErrLimitExceeded},
		{"too many in-values in filter=", nil, filterParam(`{"tags":{"$in":` + tooManyJSON + `}}`), ErrLimitExceeded},
		{"too long array equality", nil, filterParam(`{"tags":` + tooManyJSON + `}`), ErrLimitExceeded},
		{"filter nested 200 deep", nil, filterParam(nestedAnd(200)), ErrLimitExceeded},
		{"filter one level too deep", nil, filterParam(nestedAnd(8)), ErrLimitExceeded}, // nestedAnd(7) has depth 8
		{"filter over the byte cap", nil, filterParam(`{"name":"` + strings.Repeat("a", 2100) + `"}`), ErrLimitExceeded},

		// filter= that is not one JSON object.
		{"filter not JSON", nil, filterParam(`{name:`), ErrInvalidParameter},
		{"filter is an array", nil, filterParam(`[{"name":"x"}]`), ErrInvalidParameter},
		{"filter is a string", nil, filterParam(`"x"`), ErrInvalidParameter},
		{"filter is empty", nil, "filter=", ErrInvalidParameter},
		{"filter with trailing data", nil, filterParam(`{"name":"x"} {"$where":"1"}`), ErrInvalidParameter},
		{"filter with trailing garbage", nil, filterParam(`{"name":"x"}xx`), ErrInvalidParameter},
		{"filter unterminated", nil, filterParam(`{"name":"x"`), ErrInvalidParameter},
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
				t.Fatalf("Parse accepted it: filter %s", showDoc(q.Filter))
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
	p := queryTestPolicy()
	p.MaxFilterDepth = 3
	qp := mustQueryParser(t, p)
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
		_, err := qp.Parse(filterParam(query))
		if ok && err != nil {
			t.Errorf("%s: %v", query, err)
		}
		if !ok && !errors.Is(err, ErrLimitExceeded) {
			t.Errorf("%s: err = %v, want limit_exceeded", query, err)
		}
	}
}

// TestOneInputOneAnswer checks that bad input of one kind gets one code
// wherever it appears: the path, the query string, and every form of
// filter=.
func TestOneInputOneAnswer(t *testing.T) {
	qp := mustQueryParser(t, queryTestPolicy())
	oid := `{"$oid":"` + queryOIDHex + `"}`
	tests := []struct {
		name  string
		query string
		want  error
	}{
		// A malformed ObjectID is invalid_object_id, whatever its bytes.
		{"ObjectID: short in the query string", "owner=zz", ErrInvalidObjectID},
		{"ObjectID: NUL in the query string", "owner=%00", ErrInvalidObjectID},
		{"ObjectID: invalid UTF-8 in the query string", "owner=%ff", ErrInvalidObjectID},
		{"ObjectID: NUL in _id", "_id=" + queryOIDHex[:23] + "%00", ErrInvalidObjectID},
		{"ObjectID: operator value", "owner[ne]=%ff", ErrInvalidObjectID},
		{"ObjectID: in-list value", "owner[in]=" + queryOIDHex + ",%00", ErrInvalidObjectID},
		{"ObjectID: bare string in filter=", filterParam(`{"owner":"zz"}`), ErrInvalidObjectID},
		{"ObjectID: NUL string in filter=", filterParam(`{"owner":"\u0000"}`), ErrInvalidObjectID},
		{"ObjectID: $oid of bad hex", filterParam(`{"owner":{"$oid":"zz"}}`), ErrInvalidObjectID},
		{"ObjectID: $oid one digit short", filterParam(`{"owner":{"$oid":"` + queryOIDHex[:23] + `"}}`), ErrInvalidObjectID},
		{"ObjectID: $oid with NUL", filterParam(`{"owner":{"$oid":"` + queryOIDHex[:23] + `\u0000"}}`), ErrInvalidObjectID},
		{"ObjectID: $oid of a number", filterParam(`{"owner":{"$oid":5}}`), ErrInvalidObjectID},
		{"ObjectID: $oid of a document", filterParam(`{"owner":{"$oid":{"a":1}}}`), ErrInvalidObjectID},
		{"ObjectID: $oid with another key", filterParam(`{"owner":{"$oid":"` + queryOIDHex + `","x":1}}`), ErrInvalidObjectID},
		{"ObjectID: $oid under $eq", filterParam(`{"owner":{"$eq":{"$oid":"zz"}}}`), ErrInvalidObjectID},
		{"ObjectID: string in $in", filterParam(`{"owner":{"$in":["` + queryOIDHex + `","zz"]}}`), ErrInvalidObjectID},
		{"ObjectID: $oid in $in", filterParam(`{"owner":{"$in":[` + oid + `,{"$oid":"zz"}]}}`), ErrInvalidObjectID},
		{"ObjectID: $oid in $nin", filterParam(`{"owner":{"$nin":[{"$oid":"zz"}]}}`), ErrInvalidObjectID},
		{"ObjectID: string in $all", filterParam(`{"owner":{"$all":["zz"]}}`), ErrInvalidObjectID},
		{"ObjectID: array equality", filterParam(`{"owner":["zz"]}`), ErrInvalidObjectID},
		{"ObjectID: $oid in array equality", filterParam(`{"owner":[{"$oid":"zz"}]}`), ErrInvalidObjectID},
		{"ObjectID: deep in $or", filterParam(`{"$or":[{"name":"a"},{"_id":{"$not":{"$in":[{"$oid":"zz"}]}}}]}`), ErrInvalidObjectID},
		{"ObjectID: a number", filterParam(`{"owner":5}`), ErrInvalidObjectID},
		{"ObjectID: a boolean", filterParam(`{"owner":{"$gt":true}}`), ErrInvalidObjectID},
		{"ObjectID: a date", filterParam(`{"owner":{"$date":"2021-01-01"}}`), ErrInvalidObjectID},
		{"ObjectID: malformed $oid on a string field", filterParam(`{"name":{"$oid":"zz"}}`), ErrInvalidObjectID},

		// NUL bytes are refused in filter= strings as in the query string.
		{"NUL: query-string value", "name=a%00", ErrInvalidParameter},
		{"NUL: query-string name", "na%00me=a", ErrInvalidParameter},
		{"NUL: key", filterParam(`{"na\u0000me":"a"}`), ErrInvalidParameter},
		{"NUL: key in $or", filterParam(`{"$or":[{"name":"a"},{"\u0000":1}]}`), ErrInvalidParameter},
		{"NUL: operator key", filterParam(`{"age":{"$gt\u0000":1}}`), ErrInvalidParameter},
		{"NUL: key in $elemMatch", filterParam(`{"items":{"$elemMatch":{"sku\u0000":"a"}}}`), ErrInvalidParameter},
		{"NUL: key of a regex value", filterParam(`{"name":{"$regularExpression":{"pattern\u0000":"a","options":""}}}`), ErrInvalidParameter},
		{"NUL: key inside a wrapper", filterParam(`{"created":{"$date":{"$numberLong\u0000":"1"}}}`), ErrInvalidParameter},
		{"NUL: value", filterParam(`{"name":"a\u0000"}`), ErrInvalidParameter},
		{"NUL: value under $ne", filterParam(`{"name":{"$ne":"\u0000"}}`), ErrInvalidParameter},
		{"NUL: value in $in", filterParam(`{"name":{"$in":["a","\u0000"]}}`), ErrInvalidParameter},
		{"NUL: value in array equality", filterParam(`{"tags":["\u0000"]}`), ErrInvalidParameter},
		{"NUL: value deep in $nor", filterParam(`{"$nor":[{"$and":[{"email":{"$not":{"$eq":"x\u0000"}}}]}]}`), ErrInvalidParameter},
		{"NUL: value in $elemMatch", filterParam(`{"items":{"$elemMatch":{"sku":"\u0000"}}}`), ErrInvalidParameter},
		{"NUL: regex", filterParam(`{"name":{"$regex":"\u0000"}}`), ErrInvalidParameter},
		{"NUL: regex options", filterParam(`{"name":{"$regex":"a","$options":"\u0000"}}`), ErrInvalidParameter},
		{"NUL: date", filterParam(`{"created":"2021-01-01\u0000"}`), ErrInvalidParameter},
		{"NUL: $date", filterParam(`{"created":{"$date":"2021-01-01\u0000"}}`), ErrInvalidParameter},

		// Malformed operator syntax is invalid_parameter.
		{"syntax: empty operator", "age[]=1", ErrInvalidParameter},
		{"syntax: empty operator on an unknown field", "zzz[]=1", ErrInvalidParameter},
		{"syntax: two operators", "age[gte][lt]=1", ErrInvalidParameter},
		{"syntax: unclosed", "age[=1", ErrInvalidParameter},
		{"syntax: unclosed operator", "age[gte=1", ErrInvalidParameter},
		{"syntax: no name", "[gte]=1", ErrInvalidParameter},
		{"syntax: nothing but brackets", "[]=1", ErrInvalidParameter},
		{"syntax: stray close", "age]=1", ErrInvalidParameter},
		{"syntax: text after the operator", "age[gte]x=1", ErrInvalidParameter},
		{"syntax: nested open", "age[[gte]]=1", ErrInvalidParameter},
		{"syntax: encoded brackets", "age%5B%5D=1", ErrInvalidParameter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := qp.Parse(tt.query)
			if err == nil {
				t.Fatalf("Parse accepted it: filter %s", showDoc(q.Filter))
			}
			var e *Error
			if !errors.Is(err, tt.want) || !errors.As(err, &e) || e.Status != 400 {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if strings.Contains(e.Detail, `operator ""`) || strings.Contains(e.Detail, "\x00") {
				t.Fatalf("detail %q", e.Detail)
			}
		})
	}

	// The same goes for the path.
	for _, id := range []string{"zz", "\x00", "\xff", queryOIDHex[:23] + "\x00"} {
		if _, err := qp.ParseID(id); !errors.Is(err, ErrInvalidObjectID) {
			t.Errorf("ParseID(%q) = %v, want invalid_object_id", id, err)
		}
	}
}

// TestObjectIDForms checks that every accepted form of an ObjectID gives the
// same condition.
func TestObjectIDForms(t *testing.T) {
	qp := mustQueryParser(t, queryTestPolicy())
	want := qD{{Key: "owner", Value: queryOID}}
	upper := strings.ToUpper(queryOIDHex)
	for _, query := range []string{
		"owner=" + queryOIDHex,
		"owner=" + upper,
		filterParam(`{"owner":"` + queryOIDHex + `"}`),
		filterParam(`{"owner":"` + upper + `"}`),
		filterParam(`{"owner":{"$oid":"` + queryOIDHex + `"}}`),
		filterParam(` { "owner" : { "$oid" : "` + queryOIDHex + `" } } `),
	} {
		q, err := qp.Parse(query)
		if err != nil {
			t.Errorf("%s: %v", query, err)
			continue
		}
		sameQueryDoc(t, query, q.Filter, want)
	}
}

// TestFilterNumbersReadAsSent: the numbers of filter= that are what a
// double holds go through, converted to the field's type; only those a
// double would round to another whole number are refused (see the table of
// TestParseErrors).
func TestFilterNumbersReadAsSent(t *testing.T) {
	for _, tt := range []struct {
		filter string
		want   any
	}{
		{`{"age":1e3}`, int64(1000)},
		{`{"age":3.0}`, int64(3)},
		{`{"age":-0.0}`, int64(0)},
		{`{"age":9007199254740993}`, int64(9007199254740993)},
		{`{"age":{"$numberDouble":"42.0"}}`, int64(42)},
		{`{"score":1e-7}`, 1e-7},
		{`{"score":0.30000000000000004}`, 0.30000000000000004},
		{`{"score":1e19}`, 1e19},
		{`{"score":5e-324}`, 5e-324},
	} {
		t.Run(tt.filter, func(t *testing.T) {
			q, err := mustQueryParser(t, queryTestPolicy()).Parse(filterParam(tt.filter))
			if err != nil {
				t.Fatal(err)
			}
			got := q.Filter[0].Value
			if d, ok := got.(qD); ok { // a comparison: {$eq: v} and the like
				got = d[0].Value
			}
			if got != tt.want {
				t.Errorf("filter %s: %T %v, want %T %v", tt.filter, got, got, tt.want, tt.want)
			}
		})
	}
	for _, n := range []string{"1e-400", "1.0000000000000001", "9007199254740993.0", "-1e-330", "123456789012345678.9"} {
		if readsAsSent(n) {
			t.Errorf("readsAsSent(%s) = true, want false", n)
		}
	}
}
