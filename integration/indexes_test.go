package integration_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/mongohttp/mongohttp"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// TestEnsureIndexes creates a declaration's indexes on the real server:
// afterwards listIndexes holds each of them (the TTL index of the
// idempotency keys only where the server implements TTL indexes), a second
// call creates nothing and leaves the lists as they were, and a sort the
// policy allows is served from its index where the server reports plans
// (MongoDB); FerretDB 1.x reports that it sorts in memory, whatever the
// indexes.
func TestEnsureIndexes(t *testing.T) {
	ctx := context.Background()
	c := connect(t, mongohttp.PoolConfig{})
	db := database(t, c)
	people, users := db.Collection("people"), db.Collection("users")
	docs := make([]any, 50)
	for i := range docs {
		docs[i] = bson.D{{Key: "age", Value: i % 7}, {Key: "name", Value: fmt.Sprint("p", i)}, {Key: "author", Value: fmt.Sprint(i%3, "@example.com")}}
	}
	if _, err := people.InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	r, err := mongohttp.New(mongohttp.Collection[bson.Raw]{Client: c, Coll: people, Policy: mongohttp.Policy{
		Sort: []string{"age"},
		Relations: map[string]mongohttp.Relation{
			"author": {Local: "author", Coll: users, Foreign: "email"},
		},
	}})
	if err != nil {
		t.Fatal(err)
	}

	need := r.Indexes()
	created, err := r.EnsureIndexes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ferret := isFerretDB(t)
	before := map[string][]string{}
	for _, ix := range need {
		coll := ix.Coll.Name()
		if before[coll] == nil {
			before[coll] = listIndexSpecs(t, ix.Coll)
		}
		wantKeys := extJSON(t, ix.Keys)
		listed := slices.ContainsFunc(before[coll], func(s string) bool { return strings.HasPrefix(s, ix.Name+" "+wantKeys) })
		made := slices.ContainsFunc(created, func(c mongohttp.Index) bool { return c.Name == ix.Name && c.Coll.Name() == coll })
		switch {
		case ix.Expires && ferret:
			// FerretDB 1.x refuses expireAfterSeconds (NotImplemented).
			if listed || made {
				t.Errorf("%s.%s: created on FerretDB, which implements no TTL index: %q", coll, ix.Name, before[coll])
			}
		case ix.Expires:
			if !listed || !made || !slices.Contains(before[coll], ix.Name+" "+wantKeys+" expireAfterSeconds=0") {
				t.Errorf("%s.%s: not created as a TTL index (created: %v); listIndexes: %q", coll, ix.Name, made, before[coll])
			}
		case !listed || !made:
			t.Errorf("%s.%s %s: created %v, listed %v: %q", coll, ix.Name, wantKeys, made, listed, before[coll])
		}
	}
	if len(created) < 3 {
		t.Fatalf("created %d indexes, want at least age_1__id_1, age_-1__id_1 and email_1: %v", len(created), created)
	}

	again, err := r.EnsureIndexes(ctx)
	if err != nil || len(again) != 0 {
		t.Fatalf("second call: created %v, error %v; want nothing", again, err)
	}
	for coll, specs := range before {
		if after := listIndexSpecs(t, db.Collection(coll)); !slices.Equal(after, specs) {
			t.Errorf("%s: the second call changed the indexes:\n before %q\n after  %q", coll, specs, after)
		}
	}

	// ?sort=-age: the find the handler sends for a first page.
	var plan bson.Raw
	explain := bson.D{{Key: "explain", Value: bson.D{
		{Key: "find", Value: people.Name()}, {Key: "filter", Value: bson.D{}},
		{Key: "sort", Value: bson.D{{Key: "age", Value: int32(-1)}, {Key: "_id", Value: int32(1)}}},
		{Key: "limit", Value: int32(11)},
	}}}
	if err := db.RunCommand(ctx, explain).Decode(&plan); err != nil {
		t.Fatal(err)
	}
	if winning, err := plan.LookupErr("queryPlanner", "winningPlan"); err == nil {
		stages, indexNames := planStages(winning)
		if !slices.Contains(stages, "IXSCAN") || !slices.Contains(indexNames, "age_-1__id_1") || slices.Contains(stages, "SORT") {
			t.Errorf("sort=-age: the plan's stages are %v over indexes %v, want an IXSCAN of age_-1__id_1 and no SORT: %s", stages, indexNames, winning)
		}
	} else if pushdown, err := plan.LookupErr("sortPushdown"); err == nil {
		// FerretDB 1.x with SQLite: the plan is SQLite's, a scan of the
		// table, and the sort is done in memory.
		if pushed, ok := pushdown.BooleanOK(); !ok || pushed {
			t.Errorf("FerretDB reports sortPushdown %s; the documentation says it sorts in memory: %s", pushdown, plan)
		}
		if p := plan.Lookup("queryPlanner", "Plan").String(); !strings.Contains(p, "SCAN") {
			t.Errorf("FerretDB's plan %s does not scan", p)
		}
	} else {
		t.Fatalf("explain reported neither a winning plan nor FerretDB's pushdowns: %s", plan)
	}
}

// TestEnsureIndexesConflict checks that an index under a needed name with
// another key pattern is reported, and that nothing is created or dropped.
func TestEnsureIndexesConflict(t *testing.T) {
	ctx := context.Background()
	c := connect(t, mongohttp.PoolConfig{})
	people := database(t, c).Collection("people")
	if _, err := people.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "age", Value: 1}}, Options: options.Index().SetName("age_1__id_1")}); err != nil {
		t.Fatal(err)
	}
	before := listIndexSpecs(t, people)
	r := mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{
		Client: c, Coll: people, Policy: mongohttp.Policy{Sort: []string{"age"}}, Idempotency: mongohttp.Idempotency{Disabled: true},
	}))
	created, err := r.EnsureIndexes(ctx)
	if !errors.Is(err, mongohttp.ErrIndexConflict) || len(created) != 0 {
		t.Fatalf("created %v, error %v; want ErrIndexConflict", created, err)
	}
	if after := listIndexSpecs(t, people); !slices.Equal(after, before) {
		t.Errorf("indexes changed: before %q, after %q", before, after)
	}
}

// listIndexSpecs lists coll's indexes as "name keys", with
// " expireAfterSeconds=n" for a TTL index, sorted.
func listIndexSpecs(t *testing.T, coll *mongo.Collection) []string {
	t.Helper()
	specs, err := coll.Indexes().ListSpecifications(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range specs {
		line := s.Name + " " + s.KeysDocument.String()
		if s.ExpireAfterSeconds != nil {
			line += fmt.Sprintf(" expireAfterSeconds=%d", *s.ExpireAfterSeconds)
		}
		out = append(out, line)
	}
	slices.Sort(out)
	return out
}

// extJSON writes keys as the driver's bson.Raw.String does (canonical
// extended JSON), with int32 directions as listIndexes gives them back.
func extJSON(t *testing.T, keys bson.D) string {
	t.Helper()
	raw, err := bson.Marshal(keys)
	if err != nil {
		t.Fatal(err)
	}
	return bson.Raw(raw).String()
}

// planStages collects the stage and indexName values of an explain plan,
// at any depth (classic plans nest inputStage, SBE plans queryPlan).
func planStages(v bson.RawValue) (stages, indexNames []string) {
	var walk func(v bson.RawValue)
	walk = func(v bson.RawValue) {
		var elems []bson.RawElement
		if d, ok := v.DocumentOK(); ok {
			elems, _ = d.Elements()
		} else if a, ok := v.ArrayOK(); ok {
			vals, _ := a.Values()
			for _, e := range vals {
				walk(e)
			}
			return
		}
		for _, e := range elems {
			switch e.Key() {
			case "stage":
				s, _ := e.Value().StringValueOK()
				stages = append(stages, s)
			case "indexName":
				s, _ := e.Value().StringValueOK()
				indexNames = append(indexNames, s)
			default:
				walk(e.Value())
			}
		}
	}
	walk(v)
	return stages, indexNames
}
