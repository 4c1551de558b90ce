package mongohttp

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
)

type qD = bson.D
type qA = bson.A

var queryCursorKey = []byte("0123456789abcdef0123456789abcdef")

// queryTestPolicy is a people collection with a hidden password hash and a
// hidden field under an otherwise visible sub-document.
func queryTestPolicy() Policy {
	return Policy{
		Filter: map[string]Type{
			"name": String, "email": String, "age": Int, "score": Float,
			"active": Bool, "created": Date, "owner": ObjectID, "tags": String,
			"profile.city": String, "items": String, "items.sku": String, "items.qty": Int,
			"count": Int, // a reserved name: usable as count[eq]= and in filter=
		},
		Sort:      []string{"age", "name", "created", "profile.city"},
		Project:   []string{"name", "email", "age", "profile.city", "tags", "items"},
		Hidden:    []string{"password_hash", "profile.secret"},
		Operators: append(DefaultOperators(), "regex", "elemMatch", "all", "size"),
		CursorKey: queryCursorKey,

		ExtraParameters: []string{"pretty"},
	}
}

func mustQueryParser(t testing.TB, p Policy) *QueryParser {
	t.Helper()
	qp, err := NewQueryParser(p)
	if err != nil {
		t.Fatalf("NewQueryParser: %v", err)
	}
	return qp
}

// showDoc renders v for failure messages, with exact BSON types.
func showDoc(v any) string {
	b, err := bson.MarshalExtJSON(v, true, false)
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return string(b)
}

// sameQueryDoc compares documents by their BSON bytes, so types count: int64(5)
// and int32(5) differ.
func sameQueryDoc(t *testing.T, what string, got, want bson.D) {
	t.Helper()
	g, err1 := bson.Marshal(got)
	w, err2 := bson.Marshal(want)
	if err1 != nil || err2 != nil {
		t.Fatalf("%s: marshal: %v / %v", what, err1, err2)
	}
	if !bytes.Equal(g, w) {
		t.Errorf("%s:\n got  %s\n want %s", what, showDoc(got), showDoc(want))
	}
}

func mustObjectID(s string) bson.ObjectID {
	id, err := bson.ObjectIDFromHex(s)
	if err != nil {
		panic(err)
	}
	return id
}

const queryOIDHex = "65a1b2c3d4e5f60718293a4b"

var (
	queryOID      = mustObjectID(queryOIDHex)
	queryMay1     = bson.NewDateTimeFromTime(time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC))
	queryMay1Noon = bson.NewDateTimeFromTime(time.Date(2024, 5, 1, 12, 30, 0, 0, time.UTC))
	queryNoHidden = qD{{Key: "password_hash", Value: int32(0)}, {Key: "profile.secret", Value: int32(0)}}
	querySortID   = qD{{Key: "_id", Value: int32(1)}}
)

func TestParseFilterGrammar(t *testing.T) {
	qp := mustQueryParser(t, queryTestPolicy())
	tests := []struct {
		name  string
		query string
		want  bson.D
	}{
		{"no filter", "", qD{}},
		{"empty pairs ignored", "&&", qD{}},
		{"string equality", "name=Ada", qD{{Key: "name", Value: "Ada"}}},
		{"percent and plus decoding", "name=Ada+L%C3%B6velace", qD{{Key: "name", Value: "Ada Lövelace"}}},
		{"empty string equality", "name=", qD{{Key: "name", Value: ""}}},
		{"int equality is int64", "age=35", qD{{Key: "age", Value: int64(35)}}},
		{"negative int", "age=-3", qD{{Key: "age", Value: int64(-3)}}},
		{"float", "score=2.5", qD{{Key: "score", Value: 2.5}}},
		{"float from integer text", "score=3", qD{{Key: "score", Value: 3.0}}},
		{"bool", "active=false", qD{{Key: "active", Value: false}}},
		{"date only", "created=2024-05-01", qD{{Key: "created", Value: queryMay1}}},
		{"RFC 3339 date", "created=2024-05-01T14:30:00%2B02:00", qD{{Key: "created", Value: queryMay1Noon}}},
		{"ObjectID field", "owner=" + queryOIDHex, qD{{Key: "owner", Value: queryOID}}},
		{"_id is an ObjectID by default", "_id=" + strings.ToUpper(queryOIDHex), qD{{Key: "_id", Value: queryOID}}},
		{"dotted path listed exactly", "profile.city=Paris", qD{{Key: "profile.city", Value: "Paris"}}},
		{"range", "age[gte]=30&age[lt]=40",
			qD{{Key: "age", Value: qD{{Key: "$gte", Value: int64(30)}, {Key: "$lt", Value: int64(40)}}}}},
		{"eq and ne", "name[eq]=a&email[ne]=b",
			qD{{Key: "name", Value: qD{{Key: "$eq", Value: "a"}}}, {Key: "email", Value: qD{{Key: "$ne", Value: "b"}}}}},
		{"plain equality joins operators as $eq", "age=3&age[ne]=4",
			qD{{Key: "age", Value: qD{{Key: "$eq", Value: int64(3)}, {Key: "$ne", Value: int64(4)}}}}},
		{"gt and lte on dates", "created[gt]=2024-05-01&created[lte]=2024-05-01T12:30:00Z",
			qD{{Key: "created", Value: qD{{Key: "$gt", Value: queryMay1}, {Key: "$lte", Value: queryMay1Noon}}}}},
		{"fields keep first-appearance order", "age[gt]=1&name=x&age[lt]=9",
			qD{{Key: "age", Value: qD{{Key: "$gt", Value: int64(1)}, {Key: "$lt", Value: int64(9)}}}, {Key: "name", Value: "x"}}},
		{"in", "tags[in]=go,db", qD{{Key: "tags", Value: qD{{Key: "$in", Value: qA{"go", "db"}}}}}},
		{"in coerces each value", "age[in]=1,2,3", qD{{Key: "age", Value: qD{{Key: "$in", Value: qA{int64(1), int64(2), int64(3)}}}}}},
		{"nin", "owner[nin]=" + queryOIDHex, qD{{Key: "owner", Value: qD{{Key: "$nin", Value: qA{queryOID}}}}}},
		{"all", "tags[all]=a,b", qD{{Key: "tags", Value: qD{{Key: "$all", Value: qA{"a", "b"}}}}}},
		{"exists", "email[exists]=false", qD{{Key: "email", Value: qD{{Key: "$exists", Value: false}}}}},
		{"size", "tags[size]=2", qD{{Key: "tags", Value: qD{{Key: "$size", Value: int64(2)}}}}},
		{"regex", "name[regex]=%5EAd", qD{{Key: "name", Value: qD{{Key: "$regex", Value: "^Ad"}}}}},
		{"reserved field name via brackets", "count[eq]=3", qD{{Key: "count", Value: qD{{Key: "$eq", Value: int64(3)}}}}},
		{"extra parameter ignored", "pretty=1&name=a", qD{{Key: "name", Value: "a"}}},

		// filter=
		{"filter equality coerces int32 to int64", `filter={"age":35}`, qD{{Key: "age", Value: int64(35)}}},
		{"filter integral double to int", `filter={"age":35.0}`, qD{{Key: "age", Value: int64(35)}}},
		{"filter float from int", `filter={"score":{"$gt":1}}`, qD{{Key: "score", Value: qD{{Key: "$gt", Value: 1.0}}}}},
		{"filter ObjectID from string", `filter={"owner":"` + queryOIDHex + `"}`, qD{{Key: "owner", Value: queryOID}}},
		{"filter ObjectID from $oid", `filter={"_id":{"$oid":"` + queryOIDHex + `"}}`, qD{{Key: "_id", Value: queryOID}}},
		{"filter date from string", `filter={"created":{"$gte":"2024-05-01"}}`, qD{{Key: "created", Value: qD{{Key: "$gte", Value: queryMay1}}}}},
		{"filter date from $date", `filter={"created":{"$date":"2024-05-01T12:30:00Z"}}`, qD{{Key: "created", Value: queryMay1Noon}}},
		{"filter null equality", `filter={"email":null}`, qD{{Key: "email", Value: nil}}},
		{"filter array equality", `filter={"tags":["a","b"]}`, qD{{Key: "tags", Value: qA{"a", "b"}}}},
		{"filter in with null", `filter={"email":{"$in":["a",null]}}`, qD{{Key: "email", Value: qD{{Key: "$in", Value: qA{"a", nil}}}}}},
		{"filter or", `filter={"$or":[{"age":{"$lt":18}},{"active":true}]}`,
			qD{{Key: "$or", Value: qA{qD{{Key: "age", Value: qD{{Key: "$lt", Value: int64(18)}}}}, qD{{Key: "active", Value: true}}}}}},
		{"filter and nor", `filter={"$and":[{"$nor":[{"name":"x"}]}]}`,
			qD{{Key: "$and", Value: qA{qD{{Key: "$nor", Value: qA{qD{{Key: "name", Value: "x"}}}}}}}}},
		{"filter not", `filter={"age":{"$not":{"$gt":5}}}`, qD{{Key: "age", Value: qD{{Key: "$not", Value: qD{{Key: "$gt", Value: int64(5)}}}}}}},
		{"filter regex with options", `filter={"name":{"$regex":"^a","$options":"i"}}`,
			qD{{Key: "name", Value: qD{{Key: "$regex", Value: "^a"}, {Key: "$options", Value: "i"}}}}},
		{"filter regex value", `filter={"name":{"$regularExpression":{"pattern":"^a","options":"i"}}}`,
			qD{{Key: "name", Value: bson.Regex{Pattern: "^a", Options: "i"}}}},
		{"filter elemMatch on elements' fields", `filter={"items":{"$elemMatch":{"sku":"x","qty":{"$gte":2}}}}`,
			qD{{Key: "items", Value: qD{{Key: "$elemMatch", Value: qD{{Key: "sku", Value: "x"}, {Key: "qty", Value: qD{{Key: "$gte", Value: int64(2)}}}}}}}}},
		{"filter elemMatch on elements", `filter={"tags":{"$elemMatch":{"$regex":"^g"}}}`,
			qD{{Key: "tags", Value: qD{{Key: "$elemMatch", Value: qD{{Key: "$regex", Value: "^g"}}}}}}},
		{"filter reserved-name field", `filter={"count":2}`, qD{{Key: "count", Value: int64(2)}}},
		{"filter empty", `filter={}`, qD{}},
		{"query string and filter= combine with $and", `age[gt]=1&filter={"name":"x"}`,
			qD{{Key: "$and", Value: qA{qD{{Key: "age", Value: qD{{Key: "$gt", Value: int64(1)}}}}, qD{{Key: "name", Value: "x"}}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := qp.Parse(tt.query)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.query, err)
			}
			sameQueryDoc(t, "Filter", q.Filter, tt.want)
			sameQueryDoc(t, "CountFilter", q.CountFilter, tt.want)
		})
	}
}

func TestParseSortProjectionPaging(t *testing.T) {
	p := queryTestPolicy()
	p.DefaultSort = "-created"
	qp := mustQueryParser(t, p)
	tests := []struct {
		name  string
		query string
		sort  bson.D
		proj  bson.D
		limit int64
		skip  int64
		count CountMode
	}{
		{"defaults", "", qD{{Key: "created", Value: int32(-1)}, {Key: "_id", Value: int32(1)}}, queryNoHidden, 20, 0, CountNone},
		{"sort with tie-breaker", "sort=-age,name",
			qD{{Key: "age", Value: int32(-1)}, {Key: "name", Value: int32(1)}, {Key: "_id", Value: int32(1)}}, queryNoHidden, 20, 0, ""},
		{"explicit _id keeps its place", "sort=-_id,age",
			qD{{Key: "_id", Value: int32(-1)}, {Key: "age", Value: int32(1)}}, queryNoHidden, 20, 0, ""},
		{"dotted sort", "sort=profile.city", qD{{Key: "profile.city", Value: int32(1)}, {Key: "_id", Value: int32(1)}}, queryNoHidden, 20, 0, ""},
		{"fields add sort fields", "fields=name,email&sort=-age",
			qD{{Key: "age", Value: int32(-1)}, {Key: "_id", Value: int32(1)}},
			qD{{Key: "name", Value: int32(1)}, {Key: "email", Value: int32(1)}, {Key: "age", Value: int32(1)}}, 20, 0, ""},
		{"fields with _id", "fields=_id,name&sort=_id", querySortID,
			qD{{Key: "_id", Value: int32(1)}, {Key: "name", Value: int32(1)}}, 20, 0, ""},
		{"sort field already projected", "fields=age&sort=age",
			qD{{Key: "age", Value: int32(1)}, {Key: "_id", Value: int32(1)}}, qD{{Key: "age", Value: int32(1)}}, 20, 0, ""},
		{"default sort field added", "fields=name",
			qD{{Key: "created", Value: int32(-1)}, {Key: "_id", Value: int32(1)}},
			qD{{Key: "name", Value: int32(1)}, {Key: "created", Value: int32(1)}}, 20, 0, ""},
		{"limit and skip", "limit=50&skip=100", qD{{Key: "created", Value: int32(-1)}, {Key: "_id", Value: int32(1)}}, queryNoHidden, 50, 100, ""},
		{"limit bounds", "limit=100&skip=1000", qD{{Key: "created", Value: int32(-1)}, {Key: "_id", Value: int32(1)}}, queryNoHidden, 100, 1000, ""},
		{"leading zeros", "limit=007&skip=0", qD{{Key: "created", Value: int32(-1)}, {Key: "_id", Value: int32(1)}}, queryNoHidden, 7, 0, ""},
		{"count exact", "count=exact", qD{{Key: "created", Value: int32(-1)}, {Key: "_id", Value: int32(1)}}, queryNoHidden, 20, 0, CountExact},
		{"count estimated", "count=estimated", qD{{Key: "created", Value: int32(-1)}, {Key: "_id", Value: int32(1)}}, queryNoHidden, 20, 0, CountEstimated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := qp.Parse(tt.query)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.query, err)
			}
			sameQueryDoc(t, "Sort", q.Sort, tt.sort)
			sameQueryDoc(t, "Projection", q.Projection, tt.proj)
			if q.Limit != tt.limit || q.Skip != tt.skip || q.Count != tt.count {
				t.Errorf("limit, skip, count = %d, %d, %q; want %d, %d, %q", q.Limit, q.Skip, q.Count, tt.limit, tt.skip, tt.count)
			}
		})
	}
}

func TestProjectionOverlapWithSort(t *testing.T) {
	qp := mustQueryParser(t, Policy{
		Sort:    []string{"a", "a.b"},
		Project: []string{"a", "a.b", "c"},
	})
	tests := []struct {
		query string
		want  bson.D
	}{
		// A projected ancestor already covers the sort field.
		{"fields=a&sort=a.b", qD{{Key: "a", Value: int32(1)}}},
		// A sort field that contains a projected field replaces it.
		{"fields=a.b,c&sort=a", qD{{Key: "c", Value: int32(1)}, {Key: "a", Value: int32(1)}}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			q, err := qp.Parse(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			sameQueryDoc(t, "Projection", q.Projection, tt.want)
		})
	}
	if _, err := qp.Parse("fields=a,a.b"); !errors.Is(err, ErrInvalidParameter) {
		t.Errorf("overlapping fields: err = %v, want invalid_parameter", err)
	}
}

func TestParseProjection(t *testing.T) {
	qp := mustQueryParser(t, queryTestPolicy())
	tests := []struct {
		query string
		want  bson.D
		err   error
	}{
		{"", queryNoHidden, nil},
		{"pretty=1", queryNoHidden, nil},
		{"fields=name,profile.city&pretty=1", qD{{Key: "name", Value: int32(1)}, {Key: "profile.city", Value: int32(1)}}, nil},
		{"fields=password_hash", nil, ErrFieldNotAllowed},
		{"fields=name&fields=email", nil, ErrInvalidParameter},
		{"fields=%FF", nil, ErrInvalidParameter},
		{"age=1", nil, ErrUnknownParameter},
		{"sort=age", nil, ErrUnknownParameter},
		{"fields=" + strings.Repeat("a", 5000), nil, ErrLimitExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			got, err := qp.ParseProjection(tt.query)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			sameQueryDoc(t, "Projection", got, tt.want)
		})
	}
	zero := mustQueryParser(t, Policy{})
	if got, err := zero.ParseProjection(""); err != nil || got == nil || len(got) != 0 {
		t.Errorf("zero policy: %#v, %v; want an empty document", got, err)
	}
	if _, err := zero.ParseProjection("fields=_id"); !errors.Is(err, ErrFieldNotAllowed) {
		t.Errorf("zero policy fields=: %v", err)
	}
	var e *Error
	if _, err := zero.ParseProjection("x=1"); !errors.As(err, &e) || !strings.HasSuffix(e.Detail, "accepted: none") {
		t.Errorf("zero policy x=1: %v", err)
	}
}

func TestZeroPolicyDeniesByDefault(t *testing.T) {
	qp := mustQueryParser(t, Policy{})
	q, err := qp.Parse("_id=" + queryOIDHex)
	if err != nil {
		t.Fatal(err)
	}
	sameQueryDoc(t, "Filter", q.Filter, qD{{Key: "_id", Value: queryOID}})
	sameQueryDoc(t, "Sort", q.Sort, querySortID)
	if q.Projection == nil || len(q.Projection) != 0 || q.Limit != 20 {
		t.Errorf("projection %#v, limit %d; want an empty document and 20", q.Projection, q.Limit)
	}
	if err := (policyCheck{}).query(q); err != nil {
		t.Error(err)
	}
	for query, want := range map[string]error{
		"name=x":                     ErrFieldNotAllowed,
		"name[eq]=x":                 ErrFieldNotAllowed,
		"sort=name":                  ErrFieldNotAllowed,
		"fields=_id":                 ErrFieldNotAllowed,
		"_id[regex]=a":               ErrOperatorNotAllowed,
		`filter={"name":"x"}`:        ErrFieldNotAllowed,
		`filter={"_id":{"$size":1}}`: ErrOperatorNotAllowed,
		"limit=101":                  ErrLimitExceeded,
	} {
		if _, err := qp.Parse(query); !errors.Is(err, want) {
			t.Errorf("Parse(%q) = %v, want %v", query, err, want)
		}
	}
}

func TestParseErrorDetails(t *testing.T) {
	qp := mustQueryParser(t, queryTestPolicy())
	_, err := qp.Parse("nmae=Ada")
	if !errors.Is(err, ErrFieldNotAllowed) {
		t.Fatalf("err = %v", err)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("%T is not *Error", err)
	}
	for _, want := range []string{`"nmae"`, "name", "age", "sort", "limit", "fields", "filter", "after", "pretty"} {
		if !strings.Contains(e.Detail, want) {
			t.Errorf("detail %q does not mention %s", e.Detail, want)
		}
	}
	if strings.Contains(e.Detail, "password_hash") || strings.Contains(e.Detail, "secret") {
		t.Errorf("detail %q names a hidden field", e.Detail)
	}

	// Hidden fields answer like unknown names, in every spelling: no
	// oracle for their existence. A filter on a name that is not a
	// filterable field is field_not_allowed however it is spelt.
	for _, spelling := range []string{"%s=x", "%s[eq]=x", "%s[exists]=true", "%s[$gt]=x"} {
		_, errHidden := qp.Parse(fmt.Sprintf(spelling, "password_hash"))
		_, errUnknown := qp.Parse(fmt.Sprintf(spelling, "zzzzzzzzzzzzz"))
		if !errors.Is(errHidden, ErrFieldNotAllowed) || !errors.Is(errUnknown, ErrFieldNotAllowed) {
			t.Errorf("%s: hidden %v, unknown %v, want field_not_allowed", spelling, errHidden, errUnknown)
			continue
		}
		if h, u := AsError(errHidden).Detail, AsError(errUnknown).Detail; strings.Replace(h, "password_hash", "zzzzzzzzzzzzz", 1) != u {
			t.Errorf("%s: the details differ: %q, %q", spelling, h, u)
		}
	}

	// Huge or binary input is never echoed whole.
	long := strings.Repeat("x", 3000)
	for _, query := range []string{long + "=1", "name[" + long + "]=1", "limit=" + long, "age=" + long, "sort=" + long} {
		_, err := qp.Parse(query)
		if !errors.As(err, &e) {
			t.Fatalf("Parse(long): %v", err)
		}
		if len(e.Detail) > 600 || strings.Contains(e.Detail, long[:100]) || !utf8.ValidString(e.Detail) {
			t.Errorf("detail of %d bytes echoes the input: %.120q", len(e.Detail), e.Detail)
		}
	}
}

func TestNewQueryParserConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		p    Policy
	}{
		{"hidden field filterable", Policy{Filter: map[string]Type{"secret": String}, Hidden: []string{"secret"}}},
		{"descendant of hidden filterable", Policy{Filter: map[string]Type{"password_hash.x": String}, Hidden: []string{"password_hash"}}},
		{"ancestor of hidden filterable", Policy{Filter: map[string]Type{"profile": String}, Hidden: []string{"profile.secret"}}},
		{"hidden field sortable", Policy{Sort: []string{"secret"}, Hidden: []string{"secret"}}},
		{"ancestor of hidden sortable", Policy{Sort: []string{"profile"}, Hidden: []string{"profile.secret"}}},
		{"hidden field projectable", Policy{Project: []string{"secret"}, Hidden: []string{"secret"}}},
		{"ancestor of hidden projectable", Policy{Project: []string{"profile"}, Hidden: []string{"profile.secret"}}},
		{"_id hidden", Policy{Hidden: []string{"_id"}}},
		{"invalid type", Policy{Filter: map[string]Type{"a": Type(9)}}},
		{"zero type", Policy{Filter: map[string]Type{"a": 0}}},
		{"operator field name", Policy{Filter: map[string]Type{"$where": String}}},
		{"dollar inside name", Policy{Filter: map[string]Type{"a.$b": String}}},
		{"empty segment", Policy{Sort: []string{"a..b"}}},
		{"bracket in name", Policy{Filter: map[string]Type{"a[b]": String}}},
		{"comma in name", Policy{Project: []string{"a,b"}}},
		{"leading minus", Policy{Sort: []string{"-a"}}},
		{"unknown operator", Policy{Operators: []string{"where"}}},
		{"operator with dollar", Policy{Operators: []string{"$eq"}}},
		{"expr never allowed", Policy{Operators: []string{"expr"}}},
		{"unknown default sort field", Policy{DefaultSort: "age"}},
		{"malformed default sort", Policy{Sort: []string{"a"}, DefaultSort: "a,,"}},
		{"default limit above max", Policy{DefaultLimit: 50, MaxLimit: 10}},
		{"negative limit", Policy{MaxSkip: -1}},
		{"short cursor key", Policy{CursorKey: []byte("short")}},
		{"reserved extra parameter", Policy{ExtraParameters: []string{"limit"}}},
		{"extra parameter that is a field", Policy{Filter: map[string]Type{"a": Int}, ExtraParameters: []string{"a"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			qp, err := NewQueryParser(tt.p)
			if err == nil {
				t.Fatalf("NewQueryParser accepted the policy: %+v", qp)
			}
			var e *Error
			if errors.As(err, &e) {
				t.Errorf("configuration error is an *Error (%v); it must be a plain error", err)
			}
		})
	}
}

func TestParseID(t *testing.T) {
	qp := mustQueryParser(t, Policy{})
	if v, err := qp.ParseID(queryOIDHex); err != nil || v != queryOID {
		t.Errorf("ParseID = %v, %v", v, err)
	}
	// Whatever the bytes, a bad ObjectID is invalid_object_id, as in the
	// query string and filter=.
	for _, s := range []string{"", "xyz", queryOIDHex + "0", strings.Replace(queryOIDHex, "a", "g", 1),
		"\xff", "\x00", queryOIDHex[:23] + "\x00", queryOIDHex[:23] + "\xff", "{\"$ne\":null}"} {
		if _, err := qp.ParseID(s); !errors.Is(err, ErrInvalidObjectID) {
			t.Errorf("ParseID(%q) = %v, want invalid_object_id", s, err)
		}
	}
	qpInt := mustQueryParser(t, Policy{Filter: map[string]Type{"_id": Int}})
	if v, err := qpInt.ParseID("42"); err != nil || v != int64(42) {
		t.Errorf("int ParseID = %#v, %v", v, err)
	}
	if _, err := qpInt.ParseID(queryOIDHex); !errors.Is(err, ErrInvalidParameter) {
		t.Errorf("int ParseID(hex) = %v, want invalid_parameter", err)
	}
	qpStr := mustQueryParser(t, Policy{Filter: map[string]Type{"_id": String}})
	if v, err := qpStr.ParseID("ada"); err != nil || v != "ada" {
		t.Errorf("string ParseID = %#v, %v", v, err)
	}
	for _, s := range []string{"a\x00", "\xff", strings.Repeat("é", maxPathID/2+1)} {
		if _, err := qpStr.ParseID(s); !errors.Is(err, ErrInvalidParameter) {
			t.Errorf("string ParseID(%.20q…) = %v, want invalid_parameter", s, err)
		}
	}
	// The longest id a client can create still anchors a reference token,
	// so a listing can always continue after it.
	longest := strings.Repeat("x", maxPathID)
	if _, err := qpStr.ParseID(longest); err != nil {
		t.Fatalf("ParseID of %d bytes: %v", maxPathID, err)
	}
	q, err := qpStr.Parse("")
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := bson.Marshal(bson.D{{Key: "_id", Value: longest}})
	if _, _, err := docRef(q, doc); err != nil {
		t.Errorf("a document with an id of %d bytes cannot anchor a reference token: %v", maxPathID, err)
	}
	doc, _ = bson.Marshal(bson.D{{Key: "_id", Value: longest + "x"}})
	if _, _, err := docRef(q, doc); err == nil {
		t.Errorf("a reference token anchored an id longer than maxRefID: the bound of ParseID is not the tightest")
	}
}

func TestHiddenIsNormalised(t *testing.T) {
	qp := mustQueryParser(t, Policy{Hidden: []string{"z", "a.b", "a", "z", "a.c.d"}})
	if h := qp.hidden; !slices.Equal(h, []string{"a", "z"}) {
		t.Errorf("hidden = %v, want [a z]", h)
	}
	q, err := qp.Parse("")
	if err != nil {
		t.Fatal(err)
	}
	sameQueryDoc(t, "Projection", q.Projection, qD{{Key: "a", Value: int32(0)}, {Key: "z", Value: int32(0)}})
}

func TestParseIsSafeForConcurrentUse(t *testing.T) {
	qp := mustQueryParser(t, queryTestPolicy())
	done := make(chan error)
	for range 8 {
		go func() {
			for range 200 {
				q, err := qp.Parse("age[gte]=30&sort=-age&fields=name")
				if err == nil {
					q.Projection[0].Key = "mutated" // must not leak into other parses
					q.Sort[0].Key = "mutated"
				}
				if err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	q, _ := qp.Parse("")
	sameQueryDoc(t, "Projection", q.Projection, queryNoHidden)
	sameQueryDoc(t, "Sort", q.Sort, querySortID)
}

func BenchmarkParseQuery(b *testing.B) {
	qp := mustQueryParser(b, queryTestPolicy())
	const query = "age[gte]=30&age[lt]=40&tags[in]=go,db&sort=-age,name&limit=50&fields=name,email"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := qp.Parse(query); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDateRule checks that dates take the same forms and the same range,
// years 0000 to 9999 UTC, in the query string and in every form of filter=.
func TestDateRule(t *testing.T) {
	qp := mustQueryParser(t, queryTestPolicy())
	day := bson.NewDateTimeFromTime(time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC))
	first := bson.DateTime(-62167219200000) // 0000-01-01T00:00:00.000Z
	last := bson.DateTime(253402300799999)  // 9999-12-31T23:59:59.999Z
	forms := func(text, millis string) []string {
		return []string{
			"created=" + url.QueryEscape(text),
			filterParam(`{"created":"` + text + `"}`),
			filterParam(`{"created":{"$date":"` + text + `"}}`),
			filterParam(`{"created":{"$date":` + millis + `}}`),
			filterParam(`{"created":{"$date":{"$numberLong":"` + millis + `"}}}`),
		}
	}
	accepted := []struct {
		text, millis string
		want         bson.DateTime
	}{
		{"2021-01-01", "1609459200000", day},
		{"2021-01-01T00:00:00Z", "1609459200000", day},
		{"2021-01-01T01:00:00+01:00", "1609459200000", day},
		{"0000-01-01", "-62167219200000", first},
		{"9999-12-31T23:59:59.999Z", "253402300799999", last},
		{"1969-12-31T23:59:59.999Z", "-1", bson.DateTime(-1)},
	}
	for _, tt := range accepted {
		for _, query := range forms(tt.text, tt.millis) {
			q, err := qp.Parse(query)
			if err != nil {
				t.Errorf("%s: %v", query, err)
				continue
			}
			sameQueryDoc(t, query, q.Filter, qD{{Key: "created", Value: tt.want}})
		}
		// Inside operators and lists too.
		q, err := qp.Parse(filterParam(`{"created":{"$gte":{"$date":"` + tt.text + `"},"$in":[{"$date":` + tt.millis + `},"` + tt.text + `"]}}`))
		if err != nil {
			t.Errorf("%s in operators: %v", tt.text, err)
			continue
		}
		sameQueryDoc(t, tt.text+" in operators", q.Filter, qD{{Key: "created", Value: qD{{Key: "$gte", Value: tt.want}, {Key: "$in", Value: qA{tt.want, tt.want}}}}})
	}

	outOfRange := []struct{ text, millis string }{
		{"0000-01-01T00:00:00+00:01", "-62167219200001"},          // a millisecond before year 0000
		{"9999-12-31T23:59:59-00:01", "253402300800000"},          // year 10000
		{"9999-12-31T23:59:59.999-01:00", "-9223372036854775808"}, // -2^63 ms
		{"10000-01-01", "9223372036854775807"},
		{"-0001-01-01", "99999999999999999999"},
	}
	for _, tt := range outOfRange {
		for i, query := range forms(tt.text, tt.millis) {
			_, err := qp.Parse(query)
			var e *Error
			if !errors.Is(err, ErrInvalidParameter) || !errors.As(err, &e) {
				t.Errorf("%s: err = %v, want invalid_parameter", query, err)
				continue
			}
			// The text forms of years beyond four digits are not dates at
			// all; everything else is named out of range.
			if strings.HasPrefix(tt.text, "9999") || strings.HasPrefix(tt.text, "0000") || i >= 3 {
				if !strings.Contains(e.Detail, "out of range") || !strings.Contains(e.Detail, "0000 to 9999") {
					t.Errorf("%s: detail %q does not say out of range", query, e.Detail)
				}
			}
		}
	}

	for _, query := range []string{
		"created=2021-13-01",
		"created=2021-01-01T00:00:00",
		"created=1609459200000",
		filterParam(`{"created":{"$date":"soon"}}`),
		filterParam(`{"created":{"$date":1.5}}`),
		filterParam(`{"created":{"$date":1e12}}`),
		filterParam(`{"created":{"$date":true}}`),
		filterParam(`{"created":{"$date":null}}`),
		filterParam(`{"created":{"$date":[1]}}`),
		filterParam(`{"created":{"$date":{"$numberLong":1}}}`),
		filterParam(`{"created":{"$date":{"$numberLong":"1","x":1}}}`),
		filterParam(`{"created":{"$date":{"$numberInt":"1"}}}`),
		filterParam(`{"created":{"$date":"2021-01-01","x":1}}`),
		filterParam(`{"created":1609459200000}`),
	} {
		if _, err := qp.Parse(query); !errors.Is(err, ErrInvalidParameter) {
			t.Errorf("%s: err = %v, want invalid_parameter", query, err)
		}
	}
}
