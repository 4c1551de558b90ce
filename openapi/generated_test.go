package openapi

import (
	"fmt"
	"math/big"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// TestEveryParameter makes requests from the document itself: for every
// query parameter of every operation, values its schema accepts and values
// it refuses, and for filter= documents on every field with every operator
// the policy allows and some it does not. The service must agree with the
// document on each.
func TestEveryParameter(t *testing.T) {
	s := mustSamples(t)
	c, err := theChecker()
	if err != nil {
		t.Fatal(err)
	}
	// A concrete path for each templated one; a path missing here fails the
	// test, so that new routes get covered.
	xs := c.everyParameter(t, s, service.quick, map[string]string{
		"/users/{id}":               "/users/" + s.userID,
		"/users/{id}/posts":         "/users/" + s.authorID + "/posts",
		"/users/{id}/stats":         "/users/" + s.authorID + "/stats",
		"/users/{id}/posts/changes": "/users/" + s.authorID + "/posts/changes",
		"/posts/{id}":               "/posts/" + s.postID,
	})
	if len(xs) < 1000 {
		t.Fatalf("only %d requests made from the document", len(xs))
	}
	c.runAll(t, xs)
}

// everyParameter makes the requests of TestEveryParameter for the
// document of c, sent to base, with concrete paths for the templated ones.
func (c *checker) everyParameter(t *testing.T, s *sampleDocs, base string, concrete map[string]string) []exchange {
	var xs []exchange
	for _, path := range c.doc.Paths.InMatchingOrder() {
		op := c.doc.Paths.Find(path).Get
		if op == nil {
			continue
		}
		target := path
		if strings.Contains(path, "{") {
			if target = concrete[path]; target == "" {
				t.Errorf("no concrete path for %s", path)
				continue
			}
		}
		for _, p := range op.Parameters {
			if p.Value.In != "query" {
				continue
			}
			for _, v := range valuesFor(c.doc, s, op, p.Value) {
				v.target = target + "?" + v.target
				xs = append(xs, v)
			}
		}
		for _, q := range []string{url.QueryEscape("age[eq"), url.QueryEscape("[eq]") + "=1", "=1", "%zz=1", "a=%00"} {
			xs = append(xs, exchange{target: target + "?" + q})
		}
	}
	for i := range xs {
		xs[i].base = base
	}
	return xs
}

// valuesFor returns query strings (in target) for parameter p: each
// value, escaped, and what the document expects of it is left to the
// checker, except for the checks made on arrival, which are marked.
func valuesFor(doc *openapi3.T, s *sampleDocs, op *openapi3.Operation, p *openapi3.Parameter) []exchange {
	name := url.QueryEscape(p.Name)
	var xs []exchange
	add := func(raw string, runtime ...string) {
		x := exchange{target: name + "=" + raw}
		if len(runtime) > 0 {
			x.runtime = runtime[0]
		}
		xs = append(xs, x)
	}
	if p.Content != nil {
		docs, runtime := filterDocuments(op, s)
		for _, f := range docs {
			add(url.QueryEscape(f))
		}
		for _, r := range runtime {
			add(url.QueryEscape(r[0]), r[1])
		}
		return xs
	}
	schema := p.Schema.Value
	switch {
	case p.Name == "since":
		// A resume token is opaque: the schema cannot tell a forged one.
		add("x", "invalid_resume_token")
		add("0")
		add("")
		return xs
	case p.Name == "after":
		add("abc", "invalid_cursor")
		add("")
		add(url.QueryEscape("a b"))
		add(strings.Repeat("A", 1025))
		return xs
	case p.Name == "sort":
		items := enumStrings(schema.Items.Value)
		for _, it := range items {
			add(it)
		}
		field := items[len(items)-1][1:]
		add(field+",-"+field, "invalid_parameter")
		add(field + "," + field)
		add(items[0] + "," + items[len(items)-1])
		add("nope")
		add("")
		add("," + field)
		return xs
	case strings.HasSuffix(p.Name, "[regex]"):
		limit := int(*schema.MaxLength)
		add(url.QueryEscape("^a"))
		add(strings.Repeat("a", limit))
		add(strings.Repeat("a", limit+1))
		add(url.QueryEscape("(?=a)"), "invalid_parameter")
		add(url.QueryEscape(strings.Repeat("é", limit/2+1)), "limit_exceeded") // within the characters, past the bytes
		add("a%00")
		return xs
	case p.Name == "fields":
		items := enumStrings(schema.Items.Value)
		for _, it := range items {
			add(url.QueryEscape(it))
		}
		for _, a := range items {
			for _, b := range items {
				if strings.HasPrefix(b, a+".") {
					add(a+","+b, "invalid_parameter")
				}
			}
		}
		add(items[0] + "," + items[0])
		add("nope")
		add("")
		return xs
	}
	ok, bad := scalarValues(doc, s, schema)
	if schema.Type.Is("array") {
		ok, bad = scalarValues(doc, s, schema.Items.Value)
		for _, v := range ok {
			add(url.QueryEscape(v))
		}
		if len(ok) > 1 {
			add(url.QueryEscape(ok[0]) + "," + url.QueryEscape(ok[1]))
		}
		for _, v := range bad {
			add(url.QueryEscape(ok[0]) + "," + url.QueryEscape(v))
		}
		add(strings.Repeat(url.QueryEscape(ok[0])+",", int(*schema.MaxItems)) + url.QueryEscape(ok[0]))
		return xs
	}
	for _, v := range ok {
		add(url.QueryEscape(v))
	}
	for _, v := range bad {
		add(url.QueryEscape(v))
	}
	return xs
}

// scalarValues returns values a scalar schema takes and values it does
// not, as query-string text.
func scalarValues(doc *openapi3.T, s *sampleDocs, schema *openapi3.Schema) (ok, bad []string) {
	switch {
	case schema.Type.Is("boolean"):
		return []string{"true", "false"}, []string{"1", "yes", "TRUE", ""}
	case schema.Type.Is("integer"):
		lo, hi := bound(schema.Min), bound(schema.Max)
		one := big.NewInt(1)
		ok = []string{lo.String(), hi.String()}
		if lo.Sign() < 0 && hi.Sign() > 0 {
			ok = append(ok, "0", "-1")
		}
		bad = []string{new(big.Int).Sub(lo, one).String(), new(big.Int).Add(hi, one).String(), "abc", "5.0", "1e1", "", " 5", "0x10"}
		return ok, bad
	case schema.Type.Is("number"):
		return []string{"1.5", "-2", "1e3"}, []string{"abc", "NaN", "Infinity", "Inf", "1e400", "", "0x1p-2", "1_000"}
	case len(schema.Enum) > 0:
		return enumStrings(schema), []string{"nope", ""}
	case schema.Pattern == "^[0-9a-fA-F]{24}$":
		return []string{s.userID, strings.ToUpper(s.userID)}, []string{"bob", s.userID[:23], s.userID + "0", "", "zzzzzzzzzzzzzzzzzzzzzzzz"}
	case strings.Contains(schema.Pattern, "02-29"): // a date or date-time
		return []string{"2024-02-29", "2022-01-01", "2024-05-01T12:00:00Z", "2024-05-01T12:00:00.123+02:00", "2024-05-01T12:00:00,5Z", "2000-02-29T00:00:00-00:00"},
			[]string{"2023-02-29", "1900-02-29", "2024-04-31", "2024-13-01", "2024-05-01T24:00:00Z", "2024-05-01T12:00:60Z", "2024-05-01t12:00:00z",
				"2024-05-01T12:00:00", "2024-05-01T12:00:00+24:00", "yesterday", "2024-5-1", ""}
	case schema.Type.Is("string"):
		return []string{"x", "", "a,b", "São Paulo", `{"$ne":null}`}, nil
	}
	return nil, nil
}

func bound(f *float64) *big.Int {
	b, _ := new(big.Float).SetFloat64(*f).Int(nil)
	return b
}

func enumStrings(schema *openapi3.Schema) []string {
	var out []string
	for _, v := range schema.Enum {
		out = append(out, fmt.Sprint(v))
	}
	return out
}

// filterDocuments returns filter= values for an operation: for each field,
// by its type (read from the field's equality parameter), documents the
// filter schema accepts and documents it refuses, with the operators the
// operation lists.
func filterDocuments(op *openapi3.Operation, s *sampleDocs) (docs []string, runtime [][2]string) {
	ops := map[string]bool{}
	for _, p := range op.Parameters {
		if _, rest, bracket := strings.Cut(p.Value.Name, "["); bracket {
			ops[strings.TrimSuffix(rest, "]")] = true
		}
	}
	types := map[string]string{}
	var fields []string
	for _, f := range fieldsOf(op) {
		types[f.name] = f.typ
		fields = append(fields, f.name)
	}
	for _, f := range fields {
		key := fmt.Sprintf("%q", f)
		if ops["regex"] && types[f] == "String" && slices.ContainsFunc(op.Parameters, func(p *openapi3.ParameterRef) bool { return p.Value.Name == f+"[regex]" }) {
			docs = append(docs,
				`{`+key+`:{"$regex":"^a"}}`,
				`{`+key+`:{"$regex":"^a","$options":"i"}}`,
				`{`+key+`:{"$regex":"^a","$options":"q"}}`,
				`{`+key+`:{"$regularExpression":{"pattern":"^a","options":"i"}}}`,
				`{`+key+`:{"$not":{"$regularExpression":{"pattern":"^a","options":""}}}}`,
				`{`+key+`:{"$regex":"`+strings.Repeat("a", 100)+`"}}`,
			)
			runtime = append(runtime, [2]string{`{` + key + `:{"$regex":"(?=a)"}}`, "invalid_parameter"})
		}
		for _, g := range fields {
			if sub, ok := strings.CutPrefix(g, f+"."); ok {
				good, _ := filterValues(types[g], s)
				docs = append(docs,
					`{`+key+`:{"$elemMatch":{`+fmt.Sprintf("%q", sub)+`:`+good[0]+`}}}`,
					`{`+key+`:{"$elemMatch":{"$or":[{`+fmt.Sprintf("%q", sub)+`:`+good[0]+`}]}}}`,
					`{`+key+`:{"$elemMatch":{"nope":1}}}`,
					`{`+key+`:{"$elemMatch":{}}}`,
				)
			}
		}
		good, wrong := filterValues(types[f], s)
		for _, v := range good {
			docs = append(docs, `{`+key+`:{"$gt":`+v+`}}`)
		}
		v := good[0]
		docs = append(docs,
			`{`+key+`:`+v+`}`,
			`{`+key+`:{"$gt":`+v+`,"$lte":`+v+`}}`,
			`{`+key+`:{"$in":[`+v+`,null]}}`,
			`{`+key+`:{"$ne":[`+v+`]}}`,
			`{`+key+`:{"$not":{"$gte":`+v+`}}}`,
			`{"$or":[{`+key+`:`+v+`},{`+key+`:{"$exists":false}}]}`,
			`{"$nor":[{"$and":[{`+key+`:[`+v+`]}]}]}`,
		)
		for _, w := range wrong {
			docs = append(docs, `{`+key+`:`+w+`}`, `{`+key+`:{"$in":[`+v+`,`+w+`]}}`)
		}
		docs = append(docs,
			`{`+key+`:null}`,
			`{`+key+`:{"$gt":null}}`,
			`{`+key+`:{}}`,
			`{`+key+`:{"x":1}}`,
			`{`+key+`:{"$gt":`+v+`,"x":1}}`,
			`{`+key+`:{"$not":{"$not":{"$gt":`+v+`}}}}`,
			`{`+key+`:{"$not":`+v+`}}`,
			`{`+key+`:{"$exists":1}}`,
			`{`+key+`:{"$in":`+v+`}}`,
			`{`+key+`:{"$where":"1"}}`,
			`{`+key+`:{"$regex":"a"}}`,
			`{`+key+`:{"$elemMatch":{"$gt":`+v+`}}}`,
			`{`+key+`:{"$size":1}}`,
			`{`+key+`:{"$size":-1}}`,
			`{`+key+`:{"$size":2.5}}`,
			`{`+key+`:{"$all":[`+v+`]}}`,
			`{`+key+`:{"$all":[null]}}`,
			`{`+key+`:{"$options":"i"}}`,
			`{`+fmt.Sprintf("%q", f+".x")+`:`+v+`}`,
		)
	}
	docs = append(docs,
		`{}`, `{"$or":[]}`, `{"$or":[1]}`, `{"$or":{}}`, `{"$and":[{}]}`, `{"$where":"1"}`, `{"$expr":{}}`,
		`{`, `[]`, `null`, `{} x`, ``, `{"password_hash":"x"}`, `{"nope":1}`,
	)
	return docs, runtime
}

type fieldOf struct{ name, typ string }

// fieldsOf returns the filterable fields of a list operation, sorted, with
// their types, read from their eq parameters.
func fieldsOf(op *openapi3.Operation) []fieldOf {
	var fs []fieldOf
	for _, p := range op.Parameters {
		if field, ok := strings.CutSuffix(p.Value.Name, "[eq]"); ok {
			fs = append(fs, fieldOf{field, typeOf(p.Value.Schema)})
		}
	}
	slices.SortFunc(fs, func(a, b fieldOf) int { return strings.Compare(a.name, b.name) })
	return fs
}

// typeOf names the policy type a parameter schema stands for.
func typeOf(ref *openapi3.SchemaRef) string {
	switch {
	case strings.HasSuffix(ref.Ref, "/ObjectId"):
		return "ObjectID"
	case strings.HasSuffix(ref.Ref, "/DateTimeOrDate"):
		return "Date"
	case ref.Value.Type.Is("integer"):
		return "Int"
	case ref.Value.Type.Is("number"):
		return "Float"
	case ref.Value.Type.Is("boolean"):
		return "Bool"
	}
	return "String"
}

// filterValues returns JSON values a field of the type takes in filter=
// and values it refuses.
func filterValues(typ string, s *sampleDocs) (good, wrong []string) {
	id := fmt.Sprintf("%q", s.userID)
	switch typ {
	case "ObjectID":
		return []string{id, strings.ToUpper(id), `{"$oid":` + id + `}`}, []string{`"bob"`, `5`, `{"$oid":"bob"}`, `{"$oid":5}`, `true`}
	case "Date":
		return []string{`"2024-01-01"`, `"2024-01-01T00:00:00Z"`, `{"$date":"2024-01-01T00:00:00Z"}`, `{"$date":{"$numberLong":"0"}}`},
			[]string{`"yesterday"`, `5`, `"2023-02-29"`, `{"$date":"2024-01-01"}`, `{"$date":"nope"}`}
	case "Int":
		return []string{`30`, `30.0`, `1e1`, `-9223372036854775808`, `9223372036854775807`, `{"$numberLong":"30"}`, `{"$numberInt":"-2147483648"}`,
				`{"$numberLong":"+007"}`, `{"$numberLong":"-9223372036854775808"}`, `{"$numberDouble":"3e1"}`},
			[]string{`"30"`, `30.5`, `1e30`, `9223372036854775808`, `true`, `{"$numberLong":30}`, `{"$numberLong":"9223372036854775808"}`,
				`{"$numberInt":"2147483648"}`, `{"$numberLong":"1_000"}`, `{"$numberDouble":"Infinity"}`, `{"$numberDouble":"0x1p4"}`}
	case "Float":
		return []string{`1.5`, `30`, `-1.7976931348623157e308`, `{"$numberDouble":"1.5"}`, `{"$numberInt":"3"}`},
			[]string{`"1.5"`, `true`, `1e400`, `{"$numberDouble":"Infinity"}`, `{"$numberDouble":"0x1p-2"}`}
	case "Bool":
		return []string{`true`}, []string{`"true"`, `1`}
	}
	return []string{`"x"`, `""`}, []string{`30`, `true`, `{"$oid":` + id + `}`}
}
