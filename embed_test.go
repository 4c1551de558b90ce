package mongohttp

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/mongohttp/mongohttp/bsonjson"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// offline is a client that never connects: compiling policies and making
// handlers need no server.
var offline = func() *Client {
	mc, err := mongo.Connect()
	if err != nil {
		panic(err)
	}
	return Wrap(mc)
}()

// offlineCollection is a handle on a collection of offline.
func offlineCollection(t testing.TB, name string) *mongo.Collection {
	t.Helper()
	return offline.Database("db").Collection(name)
}

// relationPolicies are posts whose author is a user and whose tags are
// documents of a tags collection; users have a team. Users hide their
// password hash.
func relationPolicies(t testing.TB) Policy {
	teams := Policy{Hidden: []string{"budget"}}
	users := Policy{
		Project: []string{"name", "email"},
		Hidden:  []string{"password_hash"},
		Relations: map[string]Relation{
			"team": {Local: "team_id", Coll: offlineCollection(t, "teams"), Policy: teams},
		},
	}
	return Policy{
		Filter:  map[string]Type{"title": String},
		Project: []string{"title"},
		Hidden:  []string{"draft"},
		Relations: map[string]Relation{
			"author": {Local: "author_id", Coll: offlineCollection(t, "users"), Policy: users},
			"tags":   {Local: "tag_ids", Coll: offlineCollection(t, "tags")},
		},
	}
}

func TestRelationDeclarations(t *testing.T) {
	users := offlineCollection(t, "users")
	bad := []struct {
		name string
		rels map[string]Relation
		want string
	}{
		{"no collection", map[string]Relation{"author": {Local: "author_id"}}, "Coll is nil"},
		{"hidden local", map[string]Relation{"author": {Local: "draft", Coll: users}}, "Local"},
		{"local under hidden", map[string]Relation{"author": {Local: "draft.by", Coll: users}}, "Local"},
		{"no local", map[string]Relation{"author": {Coll: users}}, "Local"},
		{"dotted name", map[string]Relation{"a.b": {Local: "author_id", Coll: users}}, "invalid relation name"},
		{"id name", map[string]Relation{"_id": {Local: "author_id", Coll: users}}, "invalid relation name"},
		{"operator name", map[string]Relation{"$x": {Local: "author_id", Coll: users}}, "invalid relation name"},
		{"name over hidden", map[string]Relation{"draft": {Local: "author_id", Coll: users}}, "hidden field"},
		{"hidden foreign", map[string]Relation{"author": {Local: "author_id", Coll: users, Foreign: "h", Policy: Policy{Hidden: []string{"h"}}}}, "Foreign"},
		{"fields not projectable", map[string]Relation{"author": {Local: "author_id", Coll: users, Fields: []string{"name"}}}, "Fields"},
		{"bad related policy", map[string]Relation{"author": {Local: "author_id", Coll: users, Policy: Policy{MaxLimit: -1}}}, "Policy"},
		{"bad nested", map[string]Relation{"author": {Local: "author_id", Coll: users, Policy: Policy{
			Relations: map[string]Relation{"team": {Local: "team_id"}},
		}}}, `Relations["author.team"]: Coll is nil`},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			p := Policy{Hidden: []string{"draft"}, Relations: tt.rels}
			_, err := NewQueryParser(p)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewQueryParser: %v, want an error containing %q", err, tt.want)
			}
		})
	}

	// Policies that refer to each other compile: nesting stops at
	// MaxEmbedDepth.
	cyclic := Policy{Relations: map[string]Relation{}}
	cyclic.Relations["parent"] = Relation{Local: "parent_id", Coll: users, Policy: cyclic}
	qp, err := NewQueryParser(cyclic)
	if err != nil {
		t.Fatal(err)
	}
	if got := relationPaths(qp.relations); !slices.Equal(got, []string{"parent", "parent.parent"}) {
		t.Fatalf("embeddable paths %v", got)
	}
}

func TestParseEmbed(t *testing.T) {
	qp := mustQueryParser(t, relationPolicies(t))
	q, err := qp.Parse("embed=author.team,tags&fields=title")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(q.Embed, []string{"author.team", "tags"}) {
		t.Fatalf("Embed %v", q.Embed)
	}
	// The Local fields are added to an inclusion projection.
	want := bson.D{{Key: "title", Value: int32(1)}, {Key: "author_id", Value: int32(1)}, {Key: "tag_ids", Value: int32(1)}}
	sameQueryDoc(t, "projection with fields=", q.Projection, want)
	// Without fields=, the exclusion of hidden fields keeps them.
	q, _ = qp.Parse("embed=author")
	sameQueryDoc(t, "projection without fields=", q.Projection, bson.D{{Key: "draft", Value: int32(0)}})
	projection, embed, err := qp.parseOne("embed=tags&fields=title")
	if err != nil || !slices.Equal(embed, []string{"tags"}) || len(projection) != 2 {
		t.Fatalf("parseOne: %s %v %v", showDoc(projection), embed, err)
	}

	for _, tt := range []struct {
		query string
		want  *Error
		in    string
	}{
		{"embed=nope", ErrUnknownParameter, "unknown relation"},
		{"embed=author.nope", ErrUnknownParameter, "embeddable: author, author.team, tags"},
		{"embed=team", ErrUnknownParameter, "unknown relation"},
		{"embed=author.team.x", ErrUnknownParameter, "unknown relation"},
		{"embed=author,author", ErrInvalidParameter, "twice"},
		{"embed=author,", ErrInvalidParameter, "empty relation"},
		{"embed=", ErrInvalidParameter, "empty relation"},
		{"embed=author&embed=tags", ErrInvalidParameter, "more than once"},
		{"embed=%00", ErrInvalidParameter, "NUL"},
		{"embed=%ff", ErrInvalidParameter, "UTF-8"},
		{"embed=" + strings.Repeat("a", 200), ErrUnknownParameter, "…"},
		{"embed[in]=author", ErrFieldNotAllowed, ""},
	} {
		for what, parse := range map[string]func(string) error{
			"Parse":    func(s string) error { _, err := qp.Parse(s); return err },
			"parseOne": func(s string) error { _, _, err := qp.parseOne(s); return err },
		} {
			err := parse(tt.query)
			want, in := tt.want, tt.in
			if what == "parseOne" && strings.Contains(tt.query, "[") {
				want, in = ErrUnknownParameter, ""
			}
			if !errors.Is(err, want) || !strings.Contains(AsError(err).Detail, in) {
				t.Errorf("%s(%q): %v, want %s containing %q", what, tt.query, err, want.Code, in)
			}
		}
	}

	// Without relations, embed is an unknown parameter like any other,
	// and the lists of accepted parameters do not offer it.
	plain := mustQueryParser(t, Policy{Project: []string{"a"}})
	for _, parse := range []func(string) error{
		func(s string) error { _, err := plain.Parse(s); return err },
		func(s string) error { _, err := plain.ParseProjection(s); return err },
	} {
		err := parse("embed=author")
		if !errors.Is(err, ErrUnknownParameter) || strings.Contains(AsError(err).Detail, "accepted: embed") ||
			strings.Contains(AsError(err).Detail, ", embed") {
			t.Errorf("embed without relations: %v", err)
		}
	}
	// And it is reserved: no extra parameter may take the name.
	if _, err := NewQueryParser(Policy{ExtraParameters: []string{"embed"}}); err == nil {
		t.Error("ExtraParameters took the reserved name embed")
	}
}

func TestApplyEmbedding(t *testing.T) {
	mustMarshal := func(t *testing.T, d bson.D) []byte {
		b, err := bson.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	author := bson.Raw(mustMarshal(t, bson.D{{Key: "_id", Value: "a1"}, {Key: "name", Value: "Ada"}}))
	tag := bson.Raw(mustMarshal(t, bson.D{{Key: "_id", Value: int32(7)}, {Key: "label", Value: "go"}}))
	var kb []byte
	key := func(v any) string {
		t, b, err := bson.MarshalValue(v)
		if err != nil {
			panic(err)
		}
		return string(appendKey(kb[:0], bson.RawValue{Type: t, Value: b}))
	}
	e := &embedding{levels: []*embedLevel{
		{rel: &relation{name: "author", local: []string{"by"}}, targets: map[string]bson.Raw{key("a1"): author}},
		{rel: &relation{name: "tags", local: []string{"meta", "tags"}}, targets: map[string]bson.Raw{key(int32(7)): tag}},
	}}
	for _, tt := range []struct {
		doc  bson.D
		want string
	}{
		{bson.D{{Key: "by", Value: "a1"}, {Key: "meta", Value: bson.D{{Key: "tags", Value: bson.A{int32(7), int64(7), int32(8)}}}}},
			`{"by":"a1","meta":{"tags":[7,7,8]},"author":{"_id":"a1","name":"Ada"},"tags":[{"_id":7,"label":"go"},null,null]}`},
		{bson.D{{Key: "by", Value: "zz"}}, `{"by":"zz","author":null,"tags":null}`},
		{bson.D{{Key: "author", Value: "stale"}, {Key: "by", Value: "a1"}, {Key: "tags", Value: 1}},
			`{"by":"a1","author":{"_id":"a1","name":"Ada"},"tags":null}`},
		{bson.D{}, `{"author":null,"tags":null}`},
	} {
		raw := bson.Raw(mustMarshal(t, tt.doc))
		out := e.apply(raw, raw)
		if err := out.Validate(); err != nil {
			t.Fatalf("%s: invalid BSON: %v", raw, err)
		}
		var enc bsonjson.Encoder
		got, err := enc.AppendDocument(nil, out)
		if err != nil || string(got) != tt.want {
			t.Errorf("apply(%s) = %s, %v; want %s", raw, got, err, tt.want)
		}
	}
}
