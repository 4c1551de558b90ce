package mongohttp

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// constraintTestPolicy declares one rule of each kind, nested and in
// arrays.
func constraintTestPolicy() Policy {
	return Policy{
		Write: map[string]Type{
			"name": String, "email": String, "password": String, "age": Int, "score": Float,
			"tags": ArrayOf(String), "role": String, "profile.city": String, "profile.zip": String, "note": String,
		},
		Constraints: map[string]Constraint{
			"name":         {Required: true, MinLength: 1, MaxLength: 5},
			"email":        {Required: true, Pattern: `^[^@ ]+@[^@ ]+$`},
			"password":     {WriteOnly: true, MinLength: 8},
			"age":          {Minimum: Bound(0.0), Maximum: Bound(150.5)},
			"score":        {Minimum: Bound(-1.5), Maximum: Bound(1.5)},
			"tags":         {MaxLength: 3},
			"role":         {Enum: []string{"admin", "guest"}},
			"profile.city": {Required: true},
		},
	}
}

func constraintTestSchema(t testing.TB) writeSchema {
	t.Helper()
	qp, err := NewQueryParser(constraintTestPolicy())
	if err != nil {
		t.Fatal(err)
	}
	return qp.write
}

func TestDecodeBodyConstraints(t *testing.T) {
	w := constraintTestSchema(t)
	const ok = `"name":"ann","email":"a@b","profile":{"city":"x"}`
	tests := []struct {
		name  string
		body  string
		patch bool
		want  []string // "pointer code" of each field error, in order; nil: accepted
	}{
		{"valid", `{` + ok + `}`, false, nil},
		{"valid at the bounds", `{` + ok + `,"age":150,"score":-1.5,"tags":["abc"],"role":"guest","password":"12345678"}`, false, nil},
		{"lengths count characters", `{"name":"ééééé","email":"a@b","profile":{"city":"x"}}`, false, nil},
		{"all missing", `{}`, false, []string{"/email required", "/name required", "/profile/city required"}},
		{"nested missing", `{"name":"ann","email":"a@b","profile":{}}`, false, []string{"/profile/city required"}},
		{"missing and invalid together", `{"name":"","email":"nope","age":-1,"zzz":1}`, false,
			[]string{"/name min_length", "/email pattern", "/age minimum", "/zzz not_writable", "/profile/city required"}},
		{"too long", `{"name":"abcdef","email":"a@b","profile":{"city":"x"}}`, false, []string{"/name max_length"}},
		{"int above, rounded inward", `{` + ok + `,"age":151}`, false, []string{"/age maximum"}},
		{"float bounds", `{` + ok + `,"score":1.6}`, false, []string{"/score maximum"}},
		{"each element", `{` + ok + `,"tags":["a","abcd","b","efgh"]}`, false, []string{"/tags/1 max_length", "/tags/3 max_length"}},
		{"enum", `{` + ok + `,"role":"root"}`, false, []string{"/role enum"}},
		{"write-only checked", `{` + ok + `,"password":"short"}`, false, []string{"/password min_length"}},
		{"wrong type is not also missing", `{"name":1,"email":"a@b","profile":{"city":"x"}}`, false, []string{"/name invalid_type"}},
		{"patch needs nothing", `{"age":3}`, true, nil},
		{"patch still checks", `{"name":"abcdef","age":200}`, true, []string{"/name max_length", "/age maximum"}},
		{"patch removes optional", `{"age":null,"role":null}`, true, nil},
		{"patch cannot remove required", `{"name":null}`, true, []string{"/name required"}},
		{"patch cannot remove object holding required", `{"profile":null}`, true, []string{"/profile required"}},
		{"patch may remove the optional sibling", `{"profile":{"zip":null}}`, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := w.decodeBody([]byte(tt.body), tt.patch)
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if doc == nil {
					t.Fatal("no document")
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error %v, want field errors", err)
			}
			var got []string
			for _, f := range ve.Fields {
				got = append(got, f.Pointer+" "+f.Code)
				if f.Detail == "" {
					t.Errorf("%s %s has no detail", f.Pointer, f.Code)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("field errors %q, want %q", got, tt.want)
			}
		})
	}
}

// TestCheckScopeJoinsErrors: a body's field errors and its conflicts with
// the scope come back in one list, and a field the scope fixes counts as
// present.
func TestCheckScopeJoinsErrors(t *testing.T) {
	w := constraintTestSchema(t)
	body, err := w.decodeBody([]byte(`{"name":"","email":"a@b","role":"guest"}`), false)
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("decoding: %v", err)
	}
	fixed := bson.D{{Key: "role", Value: "admin"}, {Key: "profile.city", Value: "Oslo"}}
	err = checkScope(body, ve, fixed)
	if !errors.As(err, &ve) {
		t.Fatalf("checkScope: %v", err)
	}
	var got []string
	for _, f := range ve.Fields {
		got = append(got, f.Pointer+" "+f.Code)
	}
	if want := []string{"/name min_length", "/role conflicts_with_scope"}; !slices.Equal(got, want) {
		t.Fatalf("errors %q, want %q", got, want)
	}
}

func TestConstraintChecks(t *testing.T) {
	base := map[string]Type{"s": String, "n": Int, "f": Float, "d": Date, "b": Bool, "list": ArrayOf(Int)}
	for _, tt := range []struct {
		name string
		c    map[string]Constraint
		want string // in the error; "" for accepted
	}{
		{"fine", map[string]Constraint{"s": {MinLength: 1, MaxLength: 3, Pattern: "^a", Enum: []string{"a"}}, "n": {Minimum: Bound(1.5)}, "list": {Maximum: Bound(3.0)}}, ""},
		{"not writable", map[string]Constraint{"zzz": {Required: true}}, "not in Policy.Write"},
		{"length on int", map[string]Constraint{"n": {MinLength: 1}}, "apply to String"},
		{"pattern on date", map[string]Constraint{"d": {Pattern: "x"}}, "apply to String"},
		{"range on string", map[string]Constraint{"s": {Maximum: Bound(1.0)}}, "apply to Int and Float"},
		{"range on bool", map[string]Constraint{"b": {Minimum: Bound(1.0)}}, "apply to Int and Float"},
		{"negative length", map[string]Constraint{"s": {MinLength: -1}}, "range"},
		{"inverted lengths", map[string]Constraint{"s": {MinLength: 3, MaxLength: 2}}, "range"},
		{"inverted range", map[string]Constraint{"f": {Minimum: Bound(2.0), Maximum: Bound(1.0)}}, "no"},
		{"no integer in range", map[string]Constraint{"n": {Minimum: Bound(1.2), Maximum: Bound(1.8)}}, "no"},
		{"bad pattern", map[string]Constraint{"s": {Pattern: "("}}, "Pattern"},
		{"flags", map[string]Constraint{"s": {Pattern: "(?i)a"}}, "Pattern"},
		{"nul in enum", map[string]Constraint{"s": {Enum: []string{"a\x00"}}}, "Enum"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewQueryParser(Policy{Write: base, Constraints: tt.c})
			switch {
			case tt.want == "" && err != nil:
				t.Fatal(err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want one saying %q", err, tt.want)
			}
		})
	}
}

// TestWriteOnlyIsHidden: a write-only field is writable but hidden: never
// projected, filtered or sorted.
func TestWriteOnlyIsHidden(t *testing.T) {
	p := Policy{Write: map[string]Type{"password": String, "name": String},
		Constraints: map[string]Constraint{"password": {WriteOnly: true}}}
	qp, err := NewQueryParser(p)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(qp.hidden, []string{"password"}) || !slices.Equal(qp.write.writeOnly, []string{"password"}) {
		t.Fatalf("hidden %q, write-only %q", qp.hidden, qp.write.writeOnly)
	}
	for _, bad := range []Policy{
		{Filter: map[string]Type{"password": String}},
		{Sort: []string{"password"}},
		{Project: []string{"password"}},
	} {
		bad.Write, bad.Constraints = p.Write, p.Constraints
		if _, err := NewQueryParser(bad); err == nil || !strings.Contains(err.Error(), "write-only") {
			t.Errorf("%+v: %v, want a write-only error", bad, err)
		}
	}
}

func TestPortablePattern(t *testing.T) {
	for _, tt := range []struct {
		pattern string
		ok      bool
	}{
		{`^[a-z]+@[a-z]+\.[a-z]{2,}$`, true},
		{`^\d{3}-\d{4}$`, true},
		{`(?:ab)+`, true},
		{`^[\w.\-]+$`, true},
		{`\x41`, true},
		{`a\/b`, true},
		{`\bword\b`, true},
		{`(?i)abc`, false},
		{`(?P<x>a)`, false},
		{`\Aabc\z`, false},
		{`\pL`, false},
		{`\p{L}`, false},
		{`\s`, false},
		{`\S`, false},
		{`\Qa.b\E`, false},
		{`[[:alpha:]]`, false},
		{`a{`, false},
		{`a}`, false},
		{`a]`, false},
		{`[]a]`, false},
		{`\-`, false},
		{`[\b]`, false},
		{`\x4`, false},
		{`\`, false},
		{`\e`, false},
	} {
		_, err := compilePattern(tt.pattern)
		if (err == nil) != tt.ok {
			t.Errorf("compilePattern(%q): %v, want ok %v", tt.pattern, err, tt.ok)
		}
	}
	// The dot is ECMA-262's: no line terminator.
	re, err := compilePattern(`^a.b$`)
	if err != nil {
		t.Fatal(err)
	}
	for s, want := range map[string]bool{"axb": true, "aéb": true, "a\nb": false, "a\rb": false, "a\u2028b": false, "a\u2029b": false} {
		if re.MatchString(s) != want {
			t.Errorf("^a.b$ on %q: %v", s, !want)
		}
	}
	// Unanchored: a match anywhere, as JSON Schema says.
	if re, _ := compilePattern(`b`); !re.MatchString("abc") {
		t.Error("pattern b does not match abc")
	}
}
