package mongohttp

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// A write that breaks a unique index is a 409 whose errors name the
// index's fields, so that a form can say which value is taken. Servers say
// which index in different ways: MongoDB gives the key pattern (4.4 and
// later) and names the index in its message; FerretDB names it, inside
// SQLite's own name, only when an update breaks it, and not at all for an
// insert. So the fields are read from the key pattern, else from the index
// named, else found by asking, for each unique index, whether another
// document holds the written document's values.

// uniqueIndexes caches the unique indexes of a collection, read with
// listIndexes when a conflict first needs them and again when a conflict
// names an index the cache does not have, or the cache is old.
type uniqueIndexes struct {
	coll *mongo.Collection

	mu     sync.Mutex
	specs  []uniqueIndex
	loaded time.Time // zero: never
}

// uniqueIndex is one unique index: its name and its key's fields, in order.
type uniqueIndex struct {
	name   string
	fields []string
}

// uniqueIndexMaxAge is how long the index list is trusted. A conflict it
// cannot explain reloads it at once: conflicts are rare, and each already
// cost a write.
const uniqueIndexMaxAge = time.Minute

// list returns the unique indexes but _id's, sorted by name, and whether
// they were just read: they are reloaded when older than maxAge.
func (u *uniqueIndexes) list(ctx context.Context, maxAge time.Duration) ([]uniqueIndex, bool, error) {
	u.mu.Lock()
	specs, loaded := u.specs, u.loaded
	u.mu.Unlock()
	if !loaded.IsZero() && time.Since(loaded) < maxAge {
		return specs, false, nil
	}
	cur, err := u.coll.Indexes().List(ctx)
	if err != nil {
		return specs, false, err
	}
	var all []struct {
		Name   string   `bson:"name"`
		Unique bool     `bson:"unique"`
		Key    bson.Raw `bson:"key"`
	}
	if err := cur.All(ctx, &all); err != nil {
		return specs, false, err
	}
	specs = nil
	for _, ix := range all {
		elems, err := ix.Key.Elements()
		if !ix.Unique || err != nil || ix.Name == "_id_" {
			continue
		}
		spec := uniqueIndex{name: ix.Name}
		for _, e := range elems {
			spec.fields = append(spec.fields, e.Key())
		}
		specs = append(specs, spec)
	}
	slices.SortFunc(specs, func(a, b uniqueIndex) int { return strings.Compare(a.name, b.name) })
	u.mu.Lock()
	u.specs, u.loaded = specs, time.Now()
	u.mu.Unlock()
	return specs, true, nil
}

// find returns the fields of the first index pick chooses, reloading the
// list once when the cached one has none.
func (u *uniqueIndexes) find(ctx context.Context, pick func(specs []uniqueIndex) []string) []string {
	for _, maxAge := range []time.Duration{uniqueIndexMaxAge, 0} {
		specs, fresh, err := u.list(ctx, maxAge)
		if err != nil {
			return nil
		}
		if fields := pick(specs); fields != nil || fresh {
			return fields
		}
	}
	return nil
}

// Index names in the servers' messages: MongoDB's "… index: email_1 dup
// key: …" and FerretDB's (SQLite's) "UNIQUE constraint failed: index
// 'users_1a2b3c4d_email_1'", which prefixes the index's own name.
var (
	mongoIndexName  = regexp.MustCompile(`index: (\S+) dup key`)
	sqliteIndexName = regexp.MustCompile(`UNIQUE constraint failed: index '([^']+)'`)
)

// conflictFields returns the fields of the unique index that err, a
// duplicate key error of writing doc, reports as broken, or nil when
// they cannot be told (the index is _id's, or a look-up failed).
func (u *uniqueIndexes) conflictFields(ctx context.Context, err error, doc bson.Raw) []string {
	reports := duplicateReports(err)
	for _, rep := range reports {
		if kp, ok := rep.raw.Lookup("keyPattern").DocumentOK(); ok {
			if elems, err := kp.Elements(); err == nil && len(elems) > 0 {
				fields := make([]string, len(elems))
				for i, e := range elems {
					fields[i] = e.Key()
				}
				if len(fields) == 1 && fields[0] == "_id" {
					return nil
				}
				return fields
			}
		}
	}
	for _, rep := range reports {
		if m := mongoIndexName.FindStringSubmatch(rep.msg); m != nil {
			return u.named(ctx, func(name string) bool { return name == m[1] })
		}
		if m := sqliteIndexName.FindStringSubmatch(rep.msg); m != nil {
			return u.named(ctx, func(name string) bool { return strings.HasSuffix(m[1], "_"+name) })
		}
	}
	return u.probe(ctx, doc)
}

// named returns the fields of the unique index match picks. When several
// match (SQLite's names are suffixed), the longest name wins.
func (u *uniqueIndexes) named(ctx context.Context, match func(name string) bool) []string {
	return u.find(ctx, func(specs []uniqueIndex) []string {
		var best *uniqueIndex
		for i, s := range specs {
			if match(s.name) && (best == nil || len(s.name) > len(best.name)) {
				best = &specs[i]
			}
		}
		if best == nil {
			return nil
		}
		return best.fields
	})
}

// probe finds the unique index another document shares doc's values of:
// the first by name, when doc breaks several.
func (u *uniqueIndexes) probe(ctx context.Context, doc bson.Raw) []string {
	if doc == nil {
		return nil
	}
	id := doc.Lookup("_id")
	return u.find(ctx, func(specs []uniqueIndex) []string {
		for _, s := range specs {
			filter := bson.D{{Key: "_id", Value: bson.D{{Key: "$ne", Value: id}}}}
			for _, f := range s.fields {
				v, err := doc.LookupErr(strings.Split(f, ".")...)
				if err != nil {
					filter = append(filter, bson.E{Key: f, Value: nil}) // a missing field is indexed as null
					continue
				}
				filter = append(filter, bson.E{Key: f, Value: v})
			}
			err := u.coll.FindOne(ctx, filter, options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})).Err()
			if err == nil {
				return s.fields
			}
			if !errors.Is(err, mongo.ErrNoDocuments) {
				return nil
			}
		}
		return nil
	})
}

// duplicateReport is one server report of a duplicate key: the error
// document and its message.
type duplicateReport struct {
	raw bson.Raw
	msg string
}

// duplicateReports collects the reports of the duplicate key errors in
// err, whichever of the driver's error types carries them.
func duplicateReports(err error) []duplicateReport {
	var out []duplicateReport
	var we mongo.WriteException
	if errors.As(err, &we) {
		for _, e := range we.WriteErrors {
			if e.HasErrorCode(11000) {
				out = append(out, duplicateReport{raw: e.Raw, msg: e.Message})
			}
		}
	}
	var bwe mongo.BulkWriteException
	if errors.As(err, &bwe) {
		for _, e := range bwe.WriteErrors {
			if e.HasErrorCode(11000) {
				out = append(out, duplicateReport{raw: e.Raw, msg: e.Message})
			}
		}
	}
	var ce mongo.CommandError
	if errors.As(err, &ce) {
		out = append(out, duplicateReport{raw: ce.Raw, msg: ce.Message})
	}
	return out
}

// conflictError is the 409 of a write of doc that broke a unique index,
// naming the index's fields when they can be told.
func (u *uniqueIndexes) conflictError(ctx context.Context, err error, doc bson.Raw) *Error {
	e := ErrConflict.Detailf("a document with the same unique key exists").withCause(err)
	for _, f := range u.conflictFields(ctx, err, doc) {
		e.Errors = append(e.Errors, FieldError{Pointer: leafPointer(f, ""), Code: "duplicate",
			Detail: "another document has the same value"})
	}
	return e
}
