package mongohttp

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// FuzzParseQuery checks that Parse never panics, that every error is a 400
// *Error with a short detail, and that whatever it accepts references only
// fields and operators the policy allows, never a hidden field, and can be
// encoded by the driver.
func FuzzParseQuery(f *testing.F) {
	pol := queryTestPolicy()
	qp := mustQueryParser(f, pol)
	// A valid token lets the fuzzer reach the keyset path; the committed
	// corpus in testdata holds the other seeds.
	doc := qD{{Key: "_id", Value: queryOID}, {Key: "age", Value: int32(40)}, {Key: "name", Value: "Ada"}}
	for _, query := range []string{"sort=-age,name&age[lt]=50", `sort=-age,name&filter={"name":{"$in":["a","b"]}}`} {
		f.Add(query + "&after=" + afterToken(f, qp, query, doc))
	}
	// One input, one answer: ObjectIDs, dates, NUL bytes, operator syntax.
	for _, seed := range []string{
		"owner=%00", "owner[in]=" + queryOIDHex + ",%ff", "age[]=1", "age[gte][lt]=1", "[gte]=1", "age[=1",
		`{"owner":{"$oid":"zz"}}`, `{"owner":{"$in":[{"$oid":"` + queryOIDHex + `"},"zz"]}}`, `{"owner":["\u0000"]}`,
		`{"created":{"$date":"2021-01-01"}}`, `{"created":{"$date":{"$numberLong":"-9223372036854775808"}}}`,
		`{"created":{"$gte":{"$date":253402300799999},"$lt":"9999-12-31T23:59:59-01:00"}}`,
		`{"$or":[{"na\u0000me":1}]}`, `{"name":{"$ne":"a\u0000"}}`,
		`{"name":{"$regex":"(a|ab)*","$options":"i"}}`, `{"name":{"$regex":"(a{,3})+","$options":"x"}}`,
		"name[regex]=" + url.QueryEscape(`(\w+\s?)+`), "name[regex]=" + url.QueryEscape(`(foo|bar)+`),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, query string) {
		// The input is tried as a query string and, so that mutations of
		// JSON need not stay URL-encoded to reach the validator, as filter=.
		for _, s := range []string{query, "filter=" + url.QueryEscape(query)} {
			q, err := qp.Parse(s)
			if err != nil {
				var e *Error
				if !errors.As(err, &e) || e.Status != 400 {
					t.Fatalf("error %v is not a 400 *Error", err)
				}
				if len(e.Detail) > 1024 || !utf8.ValidString(e.Detail) {
					t.Fatalf("detail is %d bytes or not UTF-8: %.200q", len(e.Detail), e.Detail)
				}
				continue
			}
			checkQuery(t, pol, q)
		}
	})
}

// checkQuery asserts that q stays inside pol. It reads the Policy, not the
// compiled parser, so a compilation mistake cannot hide itself.
func checkQuery(t *testing.T, pol Policy, q *Query) {
	t.Helper()
	if err := (policyCheck{pol: pol}).query(q); err != nil {
		t.Fatalf("%v\nFilter %s\nSort %s\nProjection %s", err, showDoc(q.Filter), showDoc(q.Sort), showDoc(q.Projection))
	}
}

func (c policyCheck) query(q *Query) error {
	pol := c.pol
	client, err := clientFilter(q)
	if err != nil {
		return err
	}
	if err := c.doc(client, "", true); err != nil {
		return err
	}
	for _, d := range []bson.D{q.Filter, q.CountFilter, q.Sort, q.Projection} {
		if _, err := bson.Marshal(d); err != nil {
			return fmt.Errorf("the driver cannot encode %#v: %v", d, err)
		}
	}
	hasID := false
	for _, e := range q.Sort {
		hasID = hasID || e.Key == "_id"
		if e.Key != "_id" && !slices.Contains(pol.Sort, e.Key) {
			return fmt.Errorf("Sort names %q", e.Key)
		}
		if d := direction(e.Value); d != 1 && d != -1 {
			return fmt.Errorf("Sort direction %v", e.Value)
		}
	}
	if !hasID {
		return errors.New("Sort has no _id tie-breaker")
	}
	for _, e := range q.Projection {
		switch e.Value {
		case int32(0):
			if !slices.Contains(pol.Hidden, e.Key) {
				return fmt.Errorf("Projection excludes %q, which is not hidden", e.Key)
			}
		case int32(1):
			if e.Key != "_id" && !slices.Contains(pol.Project, e.Key) && !slices.Contains(pol.Sort, e.Key) {
				return fmt.Errorf("Projection includes %q", e.Key)
			}
			if c.hidden(e.Key) {
				return fmt.Errorf("Projection includes hidden %q", e.Key)
			}
		default:
			return fmt.Errorf("Projection value %v", e.Value)
		}
	}
	if q.Limit < 1 || q.Limit > 100 || q.Skip < 0 || q.Skip > 1000 {
		return fmt.Errorf("limit %d, skip %d", q.Limit, q.Skip)
	}
	switch q.Count {
	case CountNone, CountExact, CountEstimated:
	default:
		return fmt.Errorf("count %q", q.Count)
	}
	return nil
}

// clientFilter is q.Filter without the keyset condition of an after token,
// which must be the parser's own for the token's anchor, and last; the
// rest must be q.CountFilter.
func clientFilter(q *Query) (bson.D, error) {
	if q.anchor == nil {
		return q.Filter, nil
	}
	same := func(a, b any) bool {
		x, err1 := bson.Marshal(a)
		y, err2 := bson.Marshal(b)
		return err1 == nil && err2 == nil && string(x) == string(y)
	}
	ks := keyset(q.Sort, q.anchor)
	var rest bson.D
	switch {
	case same(q.Filter, ks):
		rest = qD{}
	case len(q.Filter) == 1 && q.Filter[0].Key == "$and":
		parts, _ := q.Filter[0].Value.(bson.A)
		if len(parts) < 2 || !same(parts[len(parts)-1], ks) {
			return nil, errors.New("the filter does not end with the keyset condition")
		}
		if len(parts) == 2 {
			rest, _ = parts[0].(bson.D)
		} else {
			rest = qD{{Key: "$and", Value: parts[:len(parts)-1]}}
		}
	default:
		return nil, errors.New("the filter holds no keyset condition")
	}
	if !same(rest, q.CountFilter) {
		return nil, fmt.Errorf("the filter without the keyset is %s, CountFilter %s", showDoc(rest), showDoc(q.CountFilter))
	}
	return rest, nil
}

// TestPolicyCheckCatchesLeaks makes sure the fuzz oracle would notice.
func TestPolicyCheckCatchesLeaks(t *testing.T) {
	c := policyCheck{pol: queryTestPolicy()}
	ok := func() *Query {
		return &Query{Filter: qD{}, CountFilter: qD{}, Projection: qD{}, Sort: querySortID, Limit: 20}
	}
	bad := map[string]func(q *Query){
		"$where":                 func(q *Query) { q.Filter = qD{{Key: "$where", Value: "1"}} },
		"hidden field":           func(q *Query) { q.Filter = qD{{Key: "password_hash", Value: "x"}} },
		"path into hidden field": func(q *Query) { q.Filter = qD{{Key: "password_hash.x", Value: "x"}} },
		"$expr in $or":           func(q *Query) { q.Filter = qD{{Key: "$or", Value: qA{qD{{Key: "$expr", Value: 1}}}}} },
		"$function in $not": func(q *Query) {
			q.Filter = qD{{Key: "age", Value: qD{{Key: "$not", Value: qD{{Key: "$function", Value: 1}}}}}}
		},
		"hidden in $elemMatch": func(q *Query) {
			q.Filter = qD{{Key: "items", Value: qD{{Key: "$elemMatch", Value: qD{{Key: "secret", Value: 1}}}}}}
		},
		"document literal": func(q *Query) { q.Filter = qD{{Key: "name", Value: qD{{Key: "a", Value: 1}}}} },
		"nested $and": func(q *Query) {
			q.Filter = qD{{Key: "$or", Value: qA{qD{{Key: "$and", Value: qA{qD{{Key: "$where", Value: 1}}}}}}}}
		},
		"sort hidden":    func(q *Query) { q.Sort = qD{{Key: "password_hash", Value: int32(1)}, {Key: "_id", Value: int32(1)}} },
		"no tie-breaker": func(q *Query) { q.Sort = qD{{Key: "age", Value: int32(1)}} },
		"project hidden": func(q *Query) { q.Projection = qD{{Key: "profile.secret", Value: int32(1)}} },
		"limit":          func(q *Query) { q.Limit = 101 },
	}
	if err := c.query(ok()); err != nil {
		t.Fatalf("a valid query fails the check: %v", err)
	}
	for name, spoil := range bad {
		q := ok()
		spoil(q)
		if err := c.query(q); err == nil {
			t.Errorf("%s: not caught", name)
		}
	}
}

type policyCheck struct{ pol Policy }

func (c policyCheck) op(name string) bool {
	ops := c.pol.Operators
	if ops == nil {
		ops = DefaultOperators()
	}
	return slices.Contains(ops, name)
}

// hidden reports whether path is, contains or is inside a hidden field.
func (c policyCheck) hidden(path string) bool {
	for _, h := range c.pol.Hidden {
		if path == h || strings.HasPrefix(h, path+".") || strings.HasPrefix(path, h+".") {
			return true
		}
	}
	return false
}

func (c policyCheck) field(path string) error {
	_, listed := c.pol.Filter[path]
	if (!listed && path != "_id") || c.hidden(path) {
		return fmt.Errorf("field %q is not filterable", path)
	}
	return nil
}

// doc walks a filter document; at the top a $and may also be the parser's
// own combination of query-string conditions, filter= and the keyset.
func (c policyCheck) doc(d bson.D, prefix string, top bool) error {
	for _, e := range d {
		if strings.HasPrefix(e.Key, "$") {
			name := e.Key[1:]
			if !(top && name == "and") && (!slices.Contains([]string{"and", "or", "nor"}, name) || !c.op(name)) {
				return fmt.Errorf("logical operator %q", e.Key)
			}
			a, ok := e.Value.(bson.A)
			if !ok {
				return fmt.Errorf("%s of %T", e.Key, e.Value)
			}
			for _, x := range a {
				sub, ok := x.(bson.D)
				if !ok {
					return fmt.Errorf("%s clause %T", e.Key, x)
				}
				if err := c.doc(sub, prefix, top && name == "and"); err != nil {
					return err
				}
			}
			continue
		}
		if err := c.field(prefix + e.Key); err != nil {
			return err
		}
		if err := c.value(prefix+e.Key, e.Value); err != nil {
			return err
		}
	}
	return nil
}

func (c policyCheck) value(path string, v any) error {
	switch v := v.(type) {
	case bson.D:
		return c.ops(path, v)
	case bson.A:
		for _, x := range v {
			if err := c.scalar(x); err != nil {
				return err
			}
		}
		return nil
	case bson.Regex:
		if !c.op("regex") {
			return fmt.Errorf("regex value on %q", path)
		}
		return nil
	}
	return c.scalar(v)
}

func (c policyCheck) scalar(v any) error {
	switch v.(type) {
	case nil, string, int64, float64, bool, bson.DateTime, bson.ObjectID:
		return nil
	case int32: // keyset values keep the type of the document's value
		return nil
	}
	return fmt.Errorf("value of type %T", v)
}

func (c policyCheck) ops(path string, d bson.D) error {
	for _, e := range d {
		name := strings.TrimPrefix(e.Key, "$")
		if name == e.Key {
			return fmt.Errorf("plain key %q in the operators of %q", e.Key, path)
		}
		if name == "options" {
			name = "regex"
		}
		if !c.op(name) || slices.Contains([]string{"and", "or", "nor"}, name) {
			return fmt.Errorf("operator %q on %q", e.Key, path)
		}
		var err error
		switch name {
		case "not":
			err = c.value(path, e.Value)
		case "elemMatch":
			body, _ := e.Value.(bson.D)
			if len(body) > 0 && strings.HasPrefix(body[0].Key, "$") && body[0].Key != "$and" && body[0].Key != "$or" && body[0].Key != "$nor" {
				err = c.ops(path, body)
			} else {
				err = c.doc(body, path+".", false)
			}
		case "regex", "size", "exists":
		default:
			err = c.value(path, e.Value)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// FuzzRegex checks that the regex check never panics and that it answers
// a 400 *Error with a short detail (internal/regexcheck fuzzes the check's
// own workings).
func FuzzRegex(f *testing.F) {
	qp := mustQueryParser(f, queryTestPolicy())
	for _, p := range append(append([]string{`\Q|\E`, `[^]|]`, `(?i:a|b)`, `(a{,3})+`, `a{1,2}{`}, regexAllowed...), regexRefused...) {
		f.Add(p, "")
		f.Add(p, "is")
	}
	f.Fuzz(func(t *testing.T, pattern, options string) {
		if !validRegexOptions(options) {
			options = ""
		}
		_, err := qp.checkRegex("name", String, pattern, options)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Status != 400 || len(e.Detail) > 1024 {
				t.Fatalf("error %v is not a 400 *Error with a short detail", err)
			}
		}
	})
}

// FuzzChangeToken checks that a resume token is accepted only as it was
// made: any other string is invalid_resume_token (400), never a panic,
// and a valid one resumes only where it was made.
func FuzzChangeToken(f *testing.F) {
	b := testBinding()
	now := time.Now()
	good, err := b.sign(changeToken{W: now.UnixMilli()})
	if err != nil {
		f.Fatal(err)
	}
	anchored, err := b.sign(changeToken{W: now.UnixMilli(), Anchor: bson.RawValue{Type: bson.TypeString, Value: []byte("\x02\x00\x00\x00a\x00")}})
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{good, anchored, "", "0", "AQ", good[:len(good)-1], good + "A", strings.ToUpper(good)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := b.read(s, now, time.Hour)
		if err != nil {
			if !errors.Is(err, ErrInvalidResumeToken) {
				t.Fatalf("%q: %v, want invalid_resume_token", s, err)
			}
			return
		}
		if s != good && s != anchored {
			// Another string that decodes to the same bytes would be a
			// second spelling of a token: base64url without padding has one.
			again, err := b.sign(tok)
			if err != nil || again != s {
				t.Fatalf("%q was accepted but is not a token this binding makes (%q)", s, again)
			}
		}
	})
}

// FuzzETags checks that the parser of If-Match and If-None-Match never
// panics, refuses with one of its two errors, and that what it accepts is
// "*" alone or well-formed tags taken verbatim from the input, which parse
// again to the same list.
func FuzzETags(f *testing.F) {
	for _, s := range []string{"", ",", "*", " * ", `"a"`, `W/"a", "b"`, `"a,b"`, `*, "a"`, `"a`, "abc", "\"\x80\"", `"6b16b0.x", W/"y"`, ` , ,"" `} {
		f.Add(s, "")
		f.Add(s, `"z"`)
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		l, err := parseETags([]string{a, b})
		if err != nil {
			if !errors.Is(err, errMalformedETags) && !errors.Is(err, errTooManyETags) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if !l.present || (l.any && len(l.strong)+len(l.weak) > 0) {
			t.Fatalf("%q, %q parsed to %+v", a, b, l)
		}
		var parts []string
		for _, tag := range l.strong {
			if len(tag) < 2 || tag[0] != '"' || tag[len(tag)-1] != '"' || !strings.Contains(a+"\n"+b, tag) {
				t.Fatalf("%q, %q gave the strong tag %q", a, b, tag)
			}
			for i := 1; i < len(tag)-1; i++ {
				if !etagChar(tag[i]) {
					t.Fatalf("%q, %q gave the strong tag %q", a, b, tag)
				}
			}
			parts = append(parts, tag)
		}
		for _, tag := range l.weak {
			parts = append(parts, "W/"+tag)
		}
		if l.any {
			parts = append(parts, "*")
		}
		again, err := parseETags([]string{strings.Join(parts, ", ")})
		if err != nil || again.any != l.any || !slices.Equal(again.strong, l.strong) || !slices.Equal(again.weak, l.weak) {
			t.Fatalf("%q, %q: %+v, then %+v, %v", a, b, l, again, err)
		}
		for _, tag := range l.strong {
			if !l.matchesStrong(tag) || !etagMatches([]string{a, b}, tag) {
				t.Fatalf("%q, %q does not match its own tag %q", a, b, tag)
			}
		}
	})
}

// FuzzCanonicalPath checks that canonicalPath keeps a path's meaning (it
// unescapes to the same bytes), is idempotent, and leaves no escape of an
// unreserved character but "." nor lower-case hex.
func FuzzCanonicalPath(f *testing.F) {
	for _, s := range []string{"/posts", "/pos%74s", "/a%2fb", "/%2e%2e", "/%", "/%4", "/%zz", "/caf%c3%a9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		c := canonicalPath(p)
		if canonicalPath(c) != c {
			t.Fatalf("%q → %q → %q", p, c, canonicalPath(c))
		}
		if want, err := url.PathUnescape(p); err == nil {
			if got, err := url.PathUnescape(c); err != nil || got != want {
				t.Fatalf("%q unescapes to %q, its canonical form %q to %q (%v)", p, want, c, got, err)
			}
		}
		for i := 0; i+2 < len(c); i++ {
			if c[i] == '%' && isHex(c[i+1]) && isHex(c[i+2]) {
				d := unhex(c[i+1])<<4 | unhex(c[i+2])
				if (unreserved(d) && d != '.') || strings.ContainsAny(c[i+1:i+3], "abcdef") {
					t.Fatalf("%q → %q keeps the escape %q", p, c, c[i:i+3])
				}
			}
		}
	})
}

// FuzzConstrainedBody checks the body decoder under a policy with
// constraints: every error is a 400 or a 422 listing fields by pointer,
// and a body it accepts satisfies every constraint (checked here from the
// decoded values, independently of the decoder's own checks).
func FuzzConstrainedBody(f *testing.F) {
	p := constraintTestPolicy()
	w := constraintTestSchema(f)
	for _, s := range []string{
		`{"name":"ann","email":"a@b","profile":{"city":"x"}}`,
		`{"name":"ééééé","email":"a@b","profile":{"city":"x","zip":"1"},"age":150,"score":1.5,"tags":["abc"],"role":"admin","password":"12345678"}`,
		`{"name":"","email":"nope","age":-1,"zzz":1}`,
		`{"name":null,"profile":null,"age":1e2}`,
		`{"tags":["a","abcd"],"role":"root","score":-1.6}`,
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, body string, patch bool) {
		doc, err := w.decodeBody([]byte(body), patch)
		if err != nil {
			var ve *ValidationError
			if errors.As(err, &ve) {
				for _, fe := range ve.Fields {
					if fe.Code == "" || (fe.Pointer != "" && !strings.HasPrefix(fe.Pointer, "/")) {
						t.Fatalf("field error %+v", fe)
					}
				}
				return
			}
			if e := AsError(err); e.Status != 400 {
				t.Fatalf("error %v is neither a 400 nor a validation error", err)
			}
			return
		}
		raw, err := bson.Marshal(stripRemovals(doc))
		if err != nil {
			t.Fatal(err)
		}
		for path, c := range p.Constraints {
			v, err := bson.Raw(raw).LookupErr(strings.Split(path, ".")...)
			if err != nil {
				if c.Required && !patch {
					t.Fatalf("%s is required, and %s was accepted without it", path, body)
				}
				continue
			}
			values := []bson.RawValue{v}
			if arr, ok := v.ArrayOK(); ok {
				values, _ = arr.Values()
			}
			for _, v := range values {
				checkConstraint(t, path, c, v)
			}
		}
	})
}

// checkConstraint checks one accepted value against its constraint.
func checkConstraint(t *testing.T, path string, c Constraint, v bson.RawValue) {
	t.Helper()
	if s, ok := v.StringValueOK(); ok {
		n := utf8.RuneCountInString(s)
		re, _ := compilePattern(c.Pattern)
		if n < c.MinLength || (c.MaxLength > 0 && n > c.MaxLength) || (re != nil && c.Pattern != "" && !re.MatchString(s)) ||
			(c.Enum != nil && !slices.Contains(c.Enum, s)) {
			t.Fatalf("%s: %q was accepted against %+v", path, s, c)
		}
		return
	}
	var f float64
	switch v.Type {
	case bson.TypeInt32:
		f = float64(v.Int32())
	case bson.TypeInt64:
		f = float64(v.Int64())
	case bson.TypeDouble:
		f = v.Double()
	default:
		return
	}
	if (c.Minimum != nil && f < *c.Minimum) || (c.Maximum != nil && f > *c.Maximum) {
		t.Fatalf("%s: %v was accepted against [%v, %v]", path, f, c.Minimum, c.Maximum)
	}
}

// FuzzConstraintPattern checks that a Constraint.Pattern either is refused
// or compiles to a matcher that agrees with RE2's reading of the pattern
// on every text without the line terminators whose dot differs.
func FuzzConstraintPattern(f *testing.F) {
	for _, s := range []string{`^[a-z]+@[a-z]+$`, `a.b`, `(?:ab)+\d{2,}`, `[\w.\-]+`, `\x41.`, `(?i)a`, `a{`, `[]a]`, `\s`} {
		f.Add(s, "ab")
		f.Add(s, "a\nb")
	}
	f.Fuzz(func(t *testing.T, pattern, text string) {
		re, err := compilePattern(pattern)
		if err != nil {
			return
		}
		plain, err := regexp.Compile(pattern)
		if err != nil {
			t.Fatalf("%q compiles here but not as RE2: %v", pattern, err)
		}
		if strings.ContainsAny(text, "\r\u2028\u2029") || !utf8.ValidString(text) {
			return
		}
		if re.MatchString(text) != plain.MatchString(text) {
			t.Fatalf("%q on %q: %v here, %v in RE2", pattern, text, re.MatchString(text), plain.MatchString(text))
		}
	})
}

// FuzzIntNumber checks the body decoder's reading of integers against
// exact rational arithmetic: a JSON number is an integer field's value
// when, and only when, it denotes exactly an integer that fits in an
// int64, and then it is that integer.
func FuzzIntNumber(f *testing.F) {
	for _, s := range []string{"0", "-0", "42", "1e3", "3.0", "1.5", "1e-400", "0e-400", "0.0", "-9223372036854775808",
		"9223372036854775808", "9.223372036854775807e18", "1.0000000000000000001", "12E+2", "1e19", "100e-2", "0.001e3"} {
		f.Add(s)
	}
	number := regexp.MustCompile(`^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$`)
	f.Fuzz(func(t *testing.T, s string) {
		if !number.MatchString(s) || len(s) > 64 {
			return
		}
		got, ok := parseIntNumber(s)
		// big.Rat reads exponents of any size: keep them small enough.
		if _, exp, found := strings.Cut(strings.ToLower(s), "e"); found && len(strings.TrimLeft(exp, "+-0")) > 4 {
			if ok && got != 0 {
				t.Fatalf("%s read as %d", s, got)
			}
			return
		}
		r, valid := new(big.Rat).SetString(s)
		if !valid {
			t.Fatalf("big.Rat cannot read %q", s)
		}
		want := r.IsInt() && r.Num().IsInt64()
		if ok != want || ok && got != r.Num().Int64() {
			t.Fatalf("parseIntNumber(%q) = %d, %v; the number is %s", s, got, ok, r.RatString())
		}
	})
}

// FuzzLoneSurrogate checks the filter= check for unpaired surrogate
// escapes against encoding/json, which reads each as U+FFFD.
func FuzzLoneSurrogate(f *testing.F) {
	for _, s := range []string{`{"a":"\ud800"}`, `{"a":"\ud83d\ude00"}`, `{"a":"\\ud800"}`, `{"a":"\udc00\ud800"}`,
		`{"\ud800":1}`, `{"a":"\ud800\u0041"}`, `{"a":"\ufffd"}`, `{"a":"x\\\ud800"}`, `{"a":"\uD83D\uDE00"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !json.Valid([]byte(s)) || !utf8.ValidString(s) {
			return
		}
		if got, want := loneSurrogate(s), notText(s); got != want {
			t.Fatalf("loneSurrogate(%q) = %v; encoding/json finds %v", s, got, want)
		}
	})
}
