package integration_test

import (
	"net/url"
	"strings"
	"testing"
)

// TestHostileInput sends what an attacker or a careless client would, over
// real HTTP to a real server. Each must get a 4xx problem+json answer with a
// stable code, and never the hidden field (checked by fixture.do).
func TestHostileInput(t *testing.T) {
	f := newFixture(t, 30)
	good := f.do(t, "GET", "/people?limit=2")
	token := strings.SplitN(strings.SplitN(nextLink(t, good.header), "after=", 2)[1], "&", 2)[0]
	flipped := []byte(token)
	flipped[len(flipped)/2] ^= 1
	if flipped[len(flipped)/2] == '-' || flipped[len(flipped)/2] == '_' {
		flipped[len(flipped)/2] = 'A'
	}
	sortedPage := f.do(t, "GET", "/people?limit=2&sort=age")
	ageToken := strings.SplitN(strings.SplitN(nextLink(t, sortedPage.header), "after=", 2)[1], "&", 2)[0]

	deep := strings.Repeat(`{"$and":[`, 200) + `{"age":1}` + strings.Repeat(`]}`, 200)
	q := url.QueryEscape
	oid := f.people[0].ID.Hex()
	tests := []struct {
		name   string
		target string
		status int
		code   string
	}{
		// Operator injection through keys.
		{"$ne in brackets", "/people?name[$ne]=x", 400, "operator_not_allowed"},
		{"escaped $ne in brackets", "/people?name[%24ne]=x", 400, "operator_not_allowed"},
		{"$gt as a key", "/people?name.$gt=x", 400, "field_not_allowed"},
		{"$where as a parameter", "/people?$where=sleep(1000)", 400, "operator_not_allowed"},
		{"unknown operator", "/people?age[foo]=1", 400, "operator_not_allowed"},
		{"regex not enabled", "/people?name[regex]=.*", 400, "operator_not_allowed"},
		{"nested brackets", "/people?age[gt][lt]=1", 400, "invalid_parameter"},
		{"empty operator", "/people?age[]=1", 400, "invalid_parameter"},
		{"empty operator on an unknown field", "/people?zzz[]=1", 400, "invalid_parameter"},
		{"unclosed bracket", "/people?age[=1", 400, "invalid_parameter"},
		{"operator without a name", "/people?[gte]=1", 400, "invalid_parameter"},
		// Server-side JavaScript and expressions at any depth of filter=.
		{"$where", "/people?filter=" + q(`{"$where":"sleep(100)"}`), 400, "operator_not_allowed"},
		{"$function", "/people?filter=" + q(`{"age":{"$function":{"body":"x","args":[],"lang":"js"}}}`), 400, "operator_not_allowed"},
		{"$accumulator", "/people?filter=" + q(`{"$accumulator":{}}`), 400, "operator_not_allowed"},
		{"$expr", "/people?filter=" + q(`{"$expr":{"$gt":["$age",1]}}`), 400, "operator_not_allowed"},
		{"$where in $or", "/people?filter=" + q(`{"$or":[{"age":1},{"$where":"1"}]}`), 400, "operator_not_allowed"},
		{"$expr in $and in $nor", "/people?filter=" + q(`{"$nor":[{"$and":[{"$expr":{}}]}]}`), 400, "operator_not_allowed"},
		{"$where under $not", "/people?filter=" + q(`{"age":{"$not":{"$where":"1"}}}`), 400, "operator_not_allowed"},
		{"$elemMatch not enabled", "/people?filter=" + q(`{"tags":{"$elemMatch":{"$eq":"go"}}}`), 400, "operator_not_allowed"},
		// Fields the policy does not allow.
		// One mistake, one code: a filter on a field the policy does not
		// let clients filter is field_not_allowed in every spelling.
		{"hidden field equality", "/people?secret=x", 400, "field_not_allowed"},
		{"hidden field with operator", "/people?secret[eq]=x", 400, "field_not_allowed"},
		{"unknown field equality", "/people?email=x", 400, "field_not_allowed"},
		{"unknown field with operator", "/people?email[eq]=x", 400, "field_not_allowed"},
		{"unknown field with a refused operator", "/people?email[$ne]=x", 400, "field_not_allowed"},
		{"unknown field in filter", "/people?filter=" + q(`{"email":"x"}`), 400, "field_not_allowed"},
		{"hidden field in filter", "/people?filter=" + q(`{"secret":{"$exists":true}}`), 400, "field_not_allowed"},
		{"dotted path into hidden", "/people?secret.x=1", 400, "field_not_allowed"},
		{"dotted path in filter", "/people?filter=" + q(`{"secret.len":3}`), 400, "field_not_allowed"},
		{"array index path", "/people?tags.0=go", 400, "field_not_allowed"},
		{"unlisted field in $or", "/people?filter=" + q(`{"$or":[{"zzz":1}]}`), 400, "field_not_allowed"},
		{"sort by hidden", "/people?sort=secret", 400, "field_not_allowed"},
		{"sort by unlisted", "/people?sort=-group", 400, "field_not_allowed"},
		{"project hidden", "/people?fields=name,secret", 400, "field_not_allowed"},
		{"project unlisted", "/people?fields=group", 400, "field_not_allowed"},
		// Limits and skips.
		{"negative limit", "/people?limit=-1", 400, "invalid_parameter"},
		{"zero limit", "/people?limit=0", 400, "invalid_parameter"},
		{"limit above max", "/people?limit=51", 400, "limit_exceeded"},
		{"huge limit", "/people?limit=99999999999999999999999", 400, "limit_exceeded"},
		{"non-numeric limit", "/people?limit=ten", 400, "invalid_parameter"},
		{"float limit", "/people?limit=1.5", 400, "invalid_parameter"},
		{"negative skip", "/people?skip=-5", 400, "invalid_parameter"},
		{"skip above max", "/people?skip=101", 400, "limit_exceeded"},
		{"non-numeric skip", "/people?skip=%00", 400, "invalid_parameter"},
		// Cursor tokens.
		{"malformed after", "/people?after=not-a-token!", 400, "invalid_cursor"},
		{"tampered after", "/people?after=" + string(flipped), 400, "invalid_cursor"},
		{"truncated after", "/people?after=" + token[:len(token)-3], 400, "invalid_cursor"},
		{"after from another sort", "/people?after=" + ageToken, 400, "invalid_cursor"},
		{"empty after", "/people?after=", 400, "invalid_cursor"},
		{"after with skip", "/people?skip=2&after=" + token, 400, "invalid_parameter"},
		// Encodings, sizes and duplicates.
		{"invalid UTF-8 value", "/people?name=%ff%fe", 400, "invalid_parameter"},
		{"invalid UTF-8 name", "/people?%ff=1", 400, "invalid_parameter"},
		{"bad percent-encoding", "/people?name=%zz", 400, "invalid_parameter"},
		{"16 KB query string", "/people?name=" + strings.Repeat("a", 16<<10), 400, "limit_exceeded"},
		{"filter nested 200 deep", "/people?filter=" + q(deep), 400, "limit_exceeded"},
		{"duplicate parameter", "/people?age=30&age=31", 400, "invalid_parameter"},
		{"duplicate limit", "/people?limit=1&limit=2", 400, "invalid_parameter"},
		{"misspelt field", "/people?nmae=p001", 400, "field_not_allowed"},
		// Wrong types for declared fields.
		{"string for int", "/people?age=old", 400, "invalid_parameter"},
		{"string for int in filter", "/people?filter=" + q(`{"age":"old"}`), 400, "invalid_parameter"},
		{"bad date", "/people?created[gt]=yesterday", 400, "invalid_parameter"},
		{"document as value", "/people?filter=" + q(`{"name":{"first":"x"}}`), 400, "invalid_parameter"},
		// A malformed ObjectID is invalid_object_id wherever it appears.
		{"bad ObjectID", "/people?_id=123", 400, "invalid_object_id"},
		{"NUL for an ObjectID", "/people?_id=%00", 400, "invalid_object_id"},
		{"invalid UTF-8 for an ObjectID", "/people?_id=" + oid[:22] + "%ff", 400, "invalid_object_id"},
		{"bad ObjectID in a list", "/people?_id[in]=" + oid + ",%00", 400, "invalid_object_id"},
		{"bad ObjectID string in filter", "/people?filter=" + q(`{"_id":"zz"}`), 400, "invalid_object_id"},
		{"NUL ObjectID string in filter", "/people?filter=" + q(`{"_id":"\u0000"}`), 400, "invalid_object_id"},
		{"bad $oid in filter", "/people?filter=" + q(`{"_id":{"$oid":"zz"}}`), 400, "invalid_object_id"},
		{"$oid of a number", "/people?filter=" + q(`{"_id":{"$oid":5}}`), 400, "invalid_object_id"},
		{"bad $oid in $in", "/people?filter=" + q(`{"_id":{"$in":[{"$oid":"`+oid+`"},{"$oid":"zz"}]}}`), 400, "invalid_object_id"},
		{"bad string in $nin", "/people?filter=" + q(`{"_id":{"$nin":["zz"]}}`), 400, "invalid_object_id"},
		{"bad $oid in array equality", "/people?filter=" + q(`{"_id":[{"$oid":"zz"}]}`), 400, "invalid_object_id"},
		{"number for an ObjectID", "/people?filter=" + q(`{"_id":5}`), 400, "invalid_object_id"},
		// Dates have one rule: RFC 3339 or YYYY-MM-DD, years 0000 to 9999 UTC.
		{"year 10000", "/people?created[lt]=10000-01-01", 400, "invalid_parameter"},
		{"offset past year 9999", "/people?created[lt]=" + q("9999-12-31T23:59:59-01:00"), 400, "invalid_parameter"},
		{"$date of -2^63 ms", "/people?filter=" + q(`{"created":{"$gt":{"$date":{"$numberLong":"-9223372036854775808"}}}}`), 400, "invalid_parameter"},
		{"$date in year 10000", "/people?filter=" + q(`{"created":{"$lt":{"$date":253402300800000}}}`), 400, "invalid_parameter"},
		{"$date of a boolean", "/people?filter=" + q(`{"created":{"$date":true}}`), 400, "invalid_parameter"},
		{"$date with another key", "/people?filter=" + q(`{"created":{"$date":"2024-01-01","x":1}}`), 400, "invalid_parameter"},
		{"date string in year 10000", "/people?filter=" + q(`{"created":{"$lt":"10000-01-01"}}`), 400, "invalid_parameter"},
		// NUL bytes in filter= strings, keys and values, at any depth.
		{"NUL in a key", "/people?filter=" + q(`{"na\u0000me":"x"}`), 400, "invalid_parameter"},
		{"NUL in an operator", "/people?filter=" + q(`{"age":{"$gt\u0000":1}}`), 400, "invalid_parameter"},
		{"NUL in a key in $or", "/people?filter=" + q(`{"$or":[{"age":1},{"\u0000":1}]}`), 400, "invalid_parameter"},
		{"NUL in a value", "/people?filter=" + q(`{"name":"p\u0000"}`), 400, "invalid_parameter"},
		{"NUL in a value in $nor", "/people?filter=" + q(`{"$nor":[{"tags":{"$in":["go","\u0000"]}}]}`), 400, "invalid_parameter"},
		{"NUL in a query-string value", "/people?name=p%00", 400, "invalid_parameter"},
		{"filter not JSON", "/people?filter=" + q(`{age:`), 400, "invalid_parameter"},
		{"filter is an array", "/people?filter=" + q(`[1,2]`), 400, "invalid_parameter"},
		{"bad exists", "/people?name[exists]=maybe", 400, "invalid_parameter"},
		{"bad count", "/people?count=all", 400, "invalid_parameter"},
		// FindOne.
		{"malformed id", "/people/not-an-id", 400, "invalid_object_id"},
		{"NUL id", "/people/%00", 400, "invalid_object_id"},
		{"invalid UTF-8 id", "/people/%ff", 400, "invalid_object_id"},
		{"id with a NUL at the end", "/people/" + oid[:23] + "%00", 400, "invalid_object_id"},
		{"id with operator", "/people/" + q(`{"$ne":null}`), 400, "invalid_object_id"},
		{"FindOne filter parameter", "/people/" + f.people[0].ID.Hex() + "?name=x", 400, "unknown_parameter"},
	}
	if len(tests) < 40 {
		t.Fatalf("only %d hostile cases", len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.do(t, "GET", tt.target)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if tt.code != "" {
				checkProblem(t, r, tt.code)
			} else if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("Content-Type %q, want problem+json: %s", ct, r.body)
			}
		})
	}
}
