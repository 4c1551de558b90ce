package mongohttp

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Index is an index a Resource needs to serve its declaration without
// reading whole collections (see Resource.Indexes).
type Index struct {
	// Coll is the collection the index belongs to: the served one, a
	// relation's, or the idempotency store.
	Coll *mongo.Collection

	// Keys is the key pattern, in order, each field with 1 (ascending) or
	// -1 (descending): {"age": -1, "_id": 1}. An index also serves the
	// sort that reverses every direction of its pattern.
	Keys bson.D

	// Unique makes it a unique index: no two documents may hold the same
	// key. Indexes never asks for one; an application adds its own.
	Unique bool

	// Expires makes it a TTL index with expireAfterSeconds 0: servers that
	// expire documents remove each one once the time in its (only) key
	// field has passed.
	Expires bool

	// Name is the name EnsureIndexes creates it with. Default ("") is the
	// name MongoDB gives the key pattern ("age_-1__id_1"), which Indexes
	// fills in.
	Name string

	// Reason says what the index serves.
	Reason string
}

// Indexes returns the indexes the declaration needs, each once, in a stable
// order:
//
//   - for every field of Sort, in any of the policies: {field: 1, _id: 1}
//     and {field: -1, _id: 1}, which serve ?sort=field and ?sort=-field in
//     both directions of their _id tie-breaker, and the after tokens of
//     their pages (keyset paging reads on from the index); and the pattern
//     of a DefaultSort of several fields. Without them each page sorts
//     every matching document in memory, up to the server's sort memory
//     limit. A ?sort= of several fields other than DefaultSort has no
//     index here: declare it as a DefaultSort, or create it yourself;
//   - for every relation (one level down too) whose Foreign is not _id:
//     {Foreign: 1} in the related collection, which finds a page's related
//     documents ($in over the page's keys). A unique index on the field
//     serves as well;
//   - when the declaration has a change feed (Collection.Changes):
//     {VersionField: 1}, with which each poll of the feed reads the
//     versions made since the previous one without a scan (its tombstones
//     are found by _id);
//   - unless Idempotency is disabled: a TTL index on the store's "expires"
//     field, with which servers that expire documents (MongoDB) remove old
//     keys. FerretDB 1.x does not implement TTL indexes and refuses it;
//     EnsureIndexes then goes without it, since mongohttp ignores expired
//     keys itself, and the store keeps them.
//
// Writes need nothing more: each selects its document by _id, whose index
// every collection has, whether it also checks the version field or not;
// the claims of servers whose updates are not atomic are found by _id too.
// Filters need indexes chosen for the queries clients make, which the
// policy does not know: index the fields of Filter that narrow the common
// queries, and when BaseFilter scopes every request to a tenant or an
// owner, put that field first in each of these indexes.
func (r *Resource[T]) Indexes() []Index {
	var out []Index
	seen := map[string]int{} // by collection and key pattern, to the index in out
	add := func(coll *mongo.Collection, keys bson.D, expires bool, reason string) {
		id := coll.Database().Name() + "." + coll.Name() + " " + keyPattern(keys, false)
		if rev := coll.Database().Name() + "." + coll.Name() + " " + keyPattern(keys, true); seen[rev] > 0 {
			id = rev
		}
		if i := seen[id]; i > 0 {
			if !strings.Contains(out[i-1].Reason, reason) {
				out[i-1].Reason += "; " + reason
			}
			return
		}
		out = append(out, Index{Coll: coll, Keys: keys, Expires: expires, Name: indexName(keys), Reason: reason})
		seen[id] = len(out)
	}
	for _, name := range sortedKeys(r.bases) {
		qp := r.bases[name].parser
		under := "under Policy"
		if name != "" {
			under = "under Policies[" + strconv.Quote(name) + "]"
		}
		for _, f := range qp.sortNames {
			if f == "_id" {
				continue
			}
			for _, dir := range []int32{1, -1} {
				spec := f
				if dir < 0 {
					spec = "-" + f
				}
				add(r.decl.Coll, bson.D{{Key: f, Value: dir}, {Key: "_id", Value: int32(1)}}, false,
					"Find with ?sort="+spec+" "+under+", and its next pages")
			}
		}
		if qp.defaultSort[0].Key != "_id" { // the _id index serves a sort that begins with _id
			add(r.decl.Coll, qp.defaultSort, false, "Find without ?sort= "+under+" (DefaultSort "+sortSpec(qp.defaultSort)+"), and its next pages")
		}
		var relations func(rels map[string]*relation)
		relations = func(rels map[string]*relation) {
			for _, rn := range sortedKeys(rels) {
				rel := rels[rn]
				if foreign := strings.Join(rel.foreign, "."); foreign != "_id" {
					add(rel.coll, bson.D{{Key: foreign, Value: int32(1)}}, false,
						"?embed="+rel.path+" "+under+": the related documents of a page, found by "+foreign)
				}
				relations(rel.children)
			}
		}
		relations(qp.relations)
	}
	if r.decl.Changes != nil {
		add(r.decl.Coll, bson.D{{Key: r.decl.VersionField, Value: int32(1)}}, false,
			"the change feed (Collection.Changes): each poll reads the versions made since the previous one")
	}
	if idem := r.writes.idem; idem != nil {
		add(idem.coll, bson.D{{Key: "expires", Value: int32(1)}}, true,
			"Idempotency-Key on Insert: removes the keys past their expiry on servers that expire documents")
	}
	return out
}

// EnsureIndexes creates, in each collection concerned, the indexes of
// Indexes that are missing, and returns those it created: see the function
// EnsureIndexes.
func (r *Resource[T]) EnsureIndexes(ctx context.Context) ([]Index, error) {
	return EnsureIndexes(ctx, r.Indexes())
}

// EnsureIndexes creates the indexes of need that are missing, and returns
// those it created. need may hold the Indexes of several resources and an
// application's own (a unique key, the fields of a BaseFilter first); an
// index listed twice is created once. It lists each collection's indexes
// first and creates only what is not there, so calling it again, at every
// start, changes nothing (an index is there when one has the same key
// pattern, or its exact reverse, and options that serve the need: see
// ErrIndexConflict). Run it from one process at a time: FerretDB fails a
// createIndexes for an index that another process has just created.
//
// Creating an index on a large collection takes time and load; run it at
// deployment, under a context with a deadline that allows it. A TTL index
// the server refuses as not implemented (FerretDB 1.x) is left out, not an
// error, and not in the result.
func EnsureIndexes(ctx context.Context, need []Index) ([]Index, error) {
	var created []Index
	for len(need) > 0 {
		coll := need[0].Coll
		var here, rest []Index
		for _, ix := range need {
			if ix.Name == "" {
				ix.Name = indexName(ix.Keys)
			}
			if sameCollection(ix.Coll, coll) {
				here = append(here, ix)
			} else {
				rest = append(rest, ix)
			}
		}
		need = rest
		existing, err := listIndexes(ctx, coll)
		if err != nil {
			return created, fmt.Errorf("mongohttp: listing the indexes of %s: %w", coll.Name(), err)
		}
		var missing []Index
		for _, ix := range here {
			ok, err := present(ix, existing)
			if err != nil {
				return created, fmt.Errorf("mongohttp: collection %s: %w", coll.Name(), err)
			}
			if !ok {
				missing = append(missing, ix)
				// A later need with this pattern is served by this one.
				existing = append(existing, existingIndex{name: ix.Name, pattern: keyPattern(ix.Keys, false), reverse: keyPattern(ix.Keys, true), raw: ix.spec()})
			}
		}
		if len(missing) == 0 {
			continue
		}
		// TTL indexes one by one: a server that does not implement them
		// refuses the whole command.
		var plain []Index
		for _, ix := range missing {
			if !ix.Expires {
				plain = append(plain, ix)
				continue
			}
			if _, err := coll.Indexes().CreateOne(ctx, ix.model()); err != nil {
				var se mongo.ServerError
				if errors.As(err, &se) && se.HasErrorCode(codeNotImplemented) {
					continue // FerretDB 1.x: no TTL; expired keys are ignored anyway
				}
				return created, fmt.Errorf("mongohttp: creating index %s on %s: %w", ix.Name, coll.Name(), err)
			}
			created = append(created, ix)
		}
		if len(plain) == 0 {
			continue
		}
		models := make([]mongo.IndexModel, len(plain))
		for i, ix := range plain {
			models[i] = ix.model()
		}
		if _, err := coll.Indexes().CreateMany(ctx, models); err != nil {
			return created, fmt.Errorf("mongohttp: creating indexes on %s: %w", coll.Name(), err)
		}
		created = append(created, plain...)
	}
	return created, nil
}

// codeNotImplemented is the server error code of an option or command the
// server does not implement (FerretDB answers it to expireAfterSeconds).
const codeNotImplemented = 238

// model is the index to create.
func (ix Index) model() mongo.IndexModel {
	opts := options.Index().SetName(ix.Name)
	if ix.Unique {
		opts.SetUnique(true)
	}
	if ix.Expires {
		opts.SetExpireAfterSeconds(0)
	}
	return mongo.IndexModel{Keys: ix.Keys, Options: opts}
}

// spec is what listIndexes would say of the index once created.
func (ix Index) spec() bson.Raw {
	d := bson.D{{Key: "key", Value: ix.Keys}, {Key: "name", Value: ix.Name}}
	if ix.Unique {
		d = append(d, bson.E{Key: "unique", Value: true})
	}
	if ix.Expires {
		d = append(d, bson.E{Key: "expireAfterSeconds", Value: int32(0)})
	}
	raw, _ := bson.Marshal(d) // a key pattern of numbers and strings always marshals
	return raw
}

// existingIndex is what listIndexes says of an index.
type existingIndex struct {
	name    string
	pattern string // keyPattern of its key document
	reverse string // the same, every direction reversed
	raw     bson.Raw
}

// listIndexes lists coll's indexes (none when the collection does not
// exist).
func listIndexes(ctx context.Context, coll *mongo.Collection) ([]existingIndex, error) {
	cur, err := coll.Indexes().List(ctx)
	if err != nil {
		return nil, err
	}
	defer cur.Close(ctx)
	var out []existingIndex
	for cur.Next(ctx) {
		raw := slices.Clone(cur.Current)
		name, _ := raw.Lookup("name").StringValueOK()
		keyDoc, ok := raw.Lookup("key").DocumentOK()
		if !ok {
			continue
		}
		var keys bson.D
		if err := bson.Unmarshal(keyDoc, &keys); err != nil {
			return nil, err
		}
		out = append(out, existingIndex{name: name, pattern: keyPattern(keys, false), reverse: keyPattern(keys, true), raw: raw})
	}
	return out, cur.Err()
}

// present reports whether an existing index serves ix, or an error when one
// with its key pattern or name is there but cannot serve it.
func present(ix Index, existing []existingIndex) (bool, error) {
	want := keyPattern(ix.Keys, false)
	for _, e := range existing {
		if e.pattern != want && e.reverse != want {
			if e.name == ix.Name {
				return false, fmt.Errorf("%w: index %s has the key pattern %s, not %s", ErrIndexConflict, e.name, e.pattern, want)
			}
			continue
		}
		if why := unfit(ix, e.raw); why != "" {
			return false, fmt.Errorf("%w: index %s on %s %s; it is needed for %s", ErrIndexConflict, e.name, want, why, ix.Reason)
		}
		return true, nil
	}
	return false, nil
}

// unfit says why an index with the right key pattern does not serve ix,
// or "" when it does.
func unfit(ix Index, spec bson.Raw) string {
	if _, err := spec.LookupErr("partialFilterExpression"); err == nil {
		return "is partial"
	}
	if sparse, _ := spec.Lookup("sparse").BooleanOK(); sparse {
		return "is sparse"
	}
	if c, ok := spec.Lookup("collation").DocumentOK(); ok {
		if locale, _ := c.Lookup("locale").StringValueOK(); locale != "simple" {
			return "has a collation"
		}
	}
	if unique, _ := spec.Lookup("unique").BooleanOK(); ix.Unique && !unique {
		return "is not unique"
	}
	if ix.Expires {
		v, err := spec.LookupErr("expireAfterSeconds")
		if err != nil {
			return "does not expire documents"
		}
		if n, ok := numericValue(v); !ok || n != 0 {
			return "expires documents after " + v.String() + " seconds, not at the time they hold"
		}
	}
	return ""
}

// numericValue returns a numeric BSON value as a float64.
func numericValue(v bson.RawValue) (float64, bool) {
	if i, ok := v.AsInt64OK(); ok {
		return float64(i), true
	}
	f, ok := v.DoubleOK()
	return f, ok
}

// keyPattern writes a key pattern as "a:1,b:-1" (reversed: "a:-1,b:1"),
// each numeric direction reduced to its sign; other values ("text",
// "hashed") are kept as they are.
func keyPattern(keys bson.D, reverse bool) string {
	var b strings.Builder
	for i, e := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(e.Key)
		b.WriteByte(':')
		var n float64
		switch v := e.Value.(type) {
		case int32:
			n = float64(v)
		case int64:
			n = float64(v)
		case int:
			n = float64(v)
		case float64:
			n = v
		default:
			fmt.Fprint(&b, v)
			continue
		}
		if reverse {
			n = -n
		}
		b.WriteString(strconv.Itoa(int(math.Copysign(1, n))))
	}
	return b.String()
}

// indexName is the name MongoDB and the driver give a key pattern by
// default: each field and its value, joined by "_".
func indexName(keys bson.D) string {
	parts := make([]string, 0, 2*len(keys))
	for _, e := range keys {
		parts = append(parts, e.Key, fmt.Sprint(e.Value))
	}
	return strings.Join(parts, "_")
}

// sameCollection reports whether a and b name the same collection.
func sameCollection(a, b *mongo.Collection) bool {
	return a.Database().Client() == b.Database().Client() && a.Database().Name() == b.Database().Name() && a.Name() == b.Name()
}
