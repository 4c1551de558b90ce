package mongohttp

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// statsAggregation groups by a unit the client chooses, over a date range
// and with a bounded top, like a service would write it.
func statsAggregation() Aggregation {
	return Aggregation{
		Pipeline: mongo.Pipeline{
			{{Key: "$match", Value: bson.D{{Key: "day", Value: bson.D{{Key: "$gte", Value: Arg("since")}}}}}},
			{{Key: "$group", Value: bson.M{"_id": Arg("unit"), "n": bson.M{"$sum": 1}}}},
			{{Key: "$sort", Value: bson.D{{Key: "n", Value: -1}}}},
			{{Key: "$limit", Value: Arg("top")}},
			{{Key: "$set", Value: bson.D{{Key: "label", Value: Arg("label")}, {Key: "ids", Value: []any{Arg("owner")}}}}},
		},
		Params: map[string]Param{
			"since": {Type: Date, Min: "2020-01-01", Max: "2030-01-01", Default: "2020-01-01"},
			"unit":  {Choices: map[string]any{"month": "$month", "year": "$year"}, Default: "month"},
			"top":   {Type: Int, Min: "1", Max: "50", Default: "10"},
			"label": {Type: String, MaxLength: 8, Default: "stats"},
			"owner": {Type: ObjectID, Default: "5feee5b37448184aad5332d6"},
		},
	}
}

func aggregationPolicy() Policy {
	return Policy{
		Filter:          map[string]Type{"kind": String, "n": Int},
		Hidden:          []string{"secret"},
		ExtraParameters: []string{"pretty"},
	}
}

func TestAggregationDeclarations(t *testing.T) {
	qp := mustQueryParser(t, aggregationPolicy())
	one := mongo.Pipeline{{{Key: "$limit", Value: Arg("top")}}}
	top := map[string]Param{"top": {Type: Int}}
	reduce := func(*http.Request, map[string][]bson.Raw) (any, error) { return nil, nil }
	for _, tt := range []struct {
		name string
		a    Aggregation
		want string
	}{
		{"nothing", Aggregation{}, "set Aggregation.Pipeline or Aggregation.Facets"},
		{"both", Aggregation{Pipeline: one, Facets: map[string]mongo.Pipeline{"a": one}, Params: top}, "not both"},
		{"facets without reduce", Aggregation{Facets: map[string]mongo.Pipeline{"a": one}, Params: top}, "need Aggregation.Reduce"},
		{"reduce without facets", Aggregation{Pipeline: one, Params: top, Reduce: reduce}, "Reduce goes with Facets"},
		{"empty facets", Aggregation{Facets: map[string]mongo.Pipeline{}, Reduce: reduce}, "Facets is empty"},
		{"arg without param", Aggregation{Pipeline: one}, `Arg("top") has no Param`},
		{"param never placed", Aggregation{Pipeline: mongo.Pipeline{{{Key: "$limit", Value: 1}}}, Params: top}, "never placed"},
		{"not a stage", Aggregation{Pipeline: mongo.Pipeline{{{Key: "limit", Value: 1}}}}, "not a stage"},
		{"two keys", Aggregation{Pipeline: mongo.Pipeline{{{Key: "$limit", Value: 1}, {Key: "$skip", Value: 1}}}}, "not a stage"},
		{"negative max results", Aggregation{Pipeline: one, Params: top, MaxResults: -1}, "MaxResults"},
		{"reserved name", Aggregation{Pipeline: mongo.Pipeline{{{Key: "$limit", Value: Arg("limit")}}}, Params: map[string]Param{"limit": {Type: Int}}}, "reserved"},
		{"filterable name", Aggregation{Pipeline: mongo.Pipeline{{{Key: "$limit", Value: Arg("n")}}}, Params: map[string]Param{"n": {Type: Int}}}, "filterable"},
		{"extra name", Aggregation{Pipeline: mongo.Pipeline{{{Key: "$limit", Value: Arg("pretty")}}}, Params: map[string]Param{"pretty": {Type: Int}}}, "ExtraParameters"},
		{"bad name", Aggregation{Pipeline: mongo.Pipeline{{{Key: "$limit", Value: Arg("a[b]")}}}, Params: map[string]Param{"a[b]": {Type: Int}}}, "invalid name"},
		{"no type", Aggregation{Pipeline: one, Params: map[string]Param{"top": {}}}, "invalid type"},
		{"array type", Aggregation{Pipeline: one, Params: map[string]Param{"top": {Type: ArrayOf(Int)}}}, "invalid type"},
		{"bad min", Aggregation{Pipeline: one, Params: map[string]Param{"top": {Type: Int, Min: "one"}}}, "Min"},
		{"min above max", Aggregation{Pipeline: one, Params: map[string]Param{"top": {Type: Int, Min: "5", Max: "1"}}}, "Min is above its Max"},
		{"bounded string", Aggregation{Pipeline: one, Params: map[string]Param{"top": {Type: String, Max: "z"}}}, "bounds Int, Float and Date"},
		{"default out of bounds", Aggregation{Pipeline: one, Params: map[string]Param{"top": {Type: Int, Max: "5", Default: "6"}}}, "Default"},
		{"default not a choice", Aggregation{Pipeline: one, Params: map[string]Param{"top": {Choices: map[string]any{"a": 1}, Default: "b"}}}, "Default"},
		{"choices of ints", Aggregation{Pipeline: one, Params: map[string]Param{"top": {Type: Int, Choices: map[string]any{"a": 1}}}}, "with Choices is a String"},
		{"arg in a choice", Aggregation{Pipeline: one, Params: map[string]Param{"top": {Choices: map[string]any{"a": Arg("top")}}}}, "no Param"},
		{"negative length", Aggregation{Pipeline: one, Params: map[string]Param{"top": {Type: String, MaxLength: -1}}}, "MaxLength"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := compileAggregation(tt.a, qp)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("compileAggregation: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestAggregationRequests(t *testing.T) {
	plan, err := compileAggregation(statsAggregation(), mustQueryParser(t, aggregationPolicy()))
	if err != nil {
		t.Fatal(err)
	}
	// Defaults fill what the request leaves out; the values land where the
	// pipeline put their placeholders, and nowhere else.
	filter, args, err := plan.parse("kind=a&top=3&unit=year&since=2024-05-01&pretty=1")
	if err != nil {
		t.Fatal(err)
	}
	sameQueryDoc(t, "filter", filter, bson.D{{Key: "kind", Value: "a"}})
	var stages bson.A
	for _, s := range plan.pipeline {
		stages = append(stages, substitute(s, args))
	}
	got, _ := bson.MarshalExtJSON(bson.D{{Key: "p", Value: stages}}, false, false)
	want := `{"p":[{"$match":{"day":{"$gte":{"$date":"2024-05-01T00:00:00Z"}}}},{"$group":{"_id":"$year","n":{"$sum":1}}},` +
		`{"$sort":{"n":-1}},{"$limit":3},{"$set":{"label":"stats","ids":[{"$oid":"5feee5b37448184aad5332d6"}]}}]}`
	if string(got) != want {
		t.Fatalf("pipeline\n%s\nwant\n%s", got, want)
	}
	if args["top"] != int64(3) || args["since"] != bson.NewDateTimeFromTime(time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("args %v", args)
	}
	// The compiled pipeline is not changed by a request.
	_, args2, _ := plan.parse("")
	if substitute(plan.pipeline[3], args2).(bson.D)[0].Value != int64(10) {
		t.Fatal("default top not used")
	}

	for _, tt := range []struct {
		query string
		want  *Error
		in    string
	}{
		{"top=0", ErrInvalidParameter, "between 1 and 50"},
		{"top=51", ErrInvalidParameter, "between 1 and 50"},
		{"top=1.5", ErrInvalidParameter, "takes an integer"},
		{"top=99999999999999999999", ErrInvalidParameter, "takes an integer"},
		{"top=", ErrInvalidParameter, "takes an integer"},
		{"top=3&top=4", ErrInvalidParameter, "more than once"},
		{"top=%00", ErrInvalidParameter, "NUL"},
		{"since=2019-12-31", ErrInvalidParameter, "between 2020-01-01T00:00:00.000Z and 2030-01-01T00:00:00.000Z"},
		{"since=yesterday", ErrInvalidParameter, "takes a date"},
		{"since=10000-01-01", ErrInvalidParameter, "takes a date"},
		{"unit=day", ErrInvalidParameter, "one of month, year"},
		{"unit=$month", ErrInvalidParameter, "one of month, year"},
		{"label=$secret", ErrInvalidParameter, `may not start with "$"`},
		{"label=" + strings.Repeat("x", 9), ErrLimitExceeded, "longer than 8 bytes"},
		{"label=%ff", ErrInvalidParameter, "UTF-8"},
		{"owner=xyz", ErrInvalidObjectID, "parameter \"owner\""},
		{"owner=%00", ErrInvalidObjectID, ""},
		{"top[gte]=3", ErrFieldNotAllowed, ""},
		{"sort=n", ErrUnknownParameter, "does not apply"},
		{"limit=5", ErrUnknownParameter, "does not apply"},
		{"embed=x", ErrUnknownParameter, "does not apply"},
		{"after=x", ErrUnknownParameter, "does not apply"},
		{"nope=1", ErrFieldNotAllowed, "accepted: _id, kind, n, filter, label, owner, since, top, unit"},
		{"nope[eq]=1", ErrFieldNotAllowed, "accepted: _id, kind, n, filter, label, owner, since, top, unit"},
		{"secret=x", ErrFieldNotAllowed, ""},
		{"secret[eq]=x", ErrFieldNotAllowed, ""},
		{"$where=1", ErrOperatorNotAllowed, ""},
		{"a.b=1", ErrFieldNotAllowed, ""},
		{"n=x", ErrInvalidParameter, ""},
		{"kind[regex]=a", ErrOperatorNotAllowed, ""},
		{`filter={"secret":"x"}`, ErrFieldNotAllowed, ""},
		{`filter={"$where":"1"}`, ErrOperatorNotAllowed, ""},
		{`filter={"$expr":{"$eq":["$a","$b"]}}`, ErrOperatorNotAllowed, ""},
		{"filter=" + strings.Repeat("%5B", 3000), ErrLimitExceeded, ""},
	} {
		_, _, err := plan.parse(tt.query)
		if !errors.Is(err, tt.want) || !strings.Contains(AsError(err).Detail, tt.in) {
			t.Errorf("parse(%q): %v, want %s containing %q", tt.query, err, tt.want.Code, tt.in)
		}
	}

	// A parameter without a default must be given.
	a := statsAggregation()
	p := a.Params["top"]
	p.Default = ""
	a.Params["top"] = p
	plan, err = compileAggregation(a, mustQueryParser(t, aggregationPolicy()))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := plan.parse("unit=year"); !errors.Is(err, ErrInvalidParameter) || !strings.Contains(err.Error(), `"top" is required`) {
		t.Fatalf("missing required parameter: %v", err)
	}
}

// FuzzEmbedAndAggregationQuery checks that the parsers of embed= and of an
// aggregation's query string never panic, answer every error with a 400
// *Error, and accept only declared relations and parameter values within
// their bounds, none of which reads as a field path.
func FuzzEmbedAndAggregationQuery(f *testing.F) {
	for _, seed := range []string{
		"embed=author.team,tags", "embed=author,author", "embed=%00", "fields=title&embed=tags",
		"top=3&unit=year&since=2024-05-01", "label=$x", "owner=%00", "top=99999999999999999999",
		`kind=a&filter={"n":{"$gt":1}}`, "since=2019-12-31", "unit=", "top[gte]=1", "sort=n",
	} {
		f.Add(seed)
	}
	embedder := mustQueryParser(f, relationPolicies(f))
	plan, err := compileAggregation(statsAggregation(), mustQueryParser(f, aggregationPolicy()))
	if err != nil {
		f.Fatal(err)
	}
	check := func(t *testing.T, err error) {
		t.Helper()
		var e *Error
		if !errors.As(err, &e) || e.Status != 400 || len(e.Detail) > 1024 {
			t.Fatalf("error %v is not a 400 *Error with a short detail", err)
		}
	}
	f.Fuzz(func(t *testing.T, query string) {
		if q, err := embedder.Parse(query); err != nil {
			check(t, err)
		} else {
			for _, path := range q.Embed {
				if embedder.relation(path) == nil {
					t.Fatalf("undeclared relation %q accepted", path)
				}
			}
		}
		if _, _, err := embedder.parseOne(query); err != nil {
			check(t, err)
		}
		_, args, err := plan.parse(query)
		if err != nil {
			check(t, err)
			return
		}
		for name, v := range args {
			p := plan.params[name]
			if s, ok := v.(string); ok && p.choices == nil && (strings.HasPrefix(s, "$") || len(s) > p.maxLength) {
				t.Fatalf("parameter %s accepted %q", name, s)
			}
			if (p.min != nil && compareScalar(v, p.min) < 0) || (p.max != nil && compareScalar(v, p.max) > 0) {
				t.Fatalf("parameter %s accepted %v outside its bounds", name, v)
			}
		}
	})
}
