package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/mongohttp/mongohttp/example/internal/sample"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// dbName is the database the benchmark seeds and reads.
const dbName = "mongohttp_bench"

// usersColl holds -docs documents; the largest export reads it.
//
// FerretDB 1.24 sorts in memory: a sorted find reads its whole collection,
// whatever the limit, where MongoDB walks the _id index and reads only the
// documents it returns; and its SQLite tables have no index that a lookup
// by _id can use, so FindOne scans the collection. So that the database
// does about what MongoDB would do, a page of limit L is read from a
// collection holding the first L+1 users (mongohttp asks for one more
// document, to know whether a next page exists), FindOne looks up
// findOneDocs ids in a collection of that many, and an export of N
// documents reads one holding the first N.
const usersColl = "users"

// findOneDocs is the size of the collection FindOne reads.
const findOneDocs = 1000

func findOneColl(docs int) string { return sizedColl(min(findOneDocs, docs), docs) }

// sizedColl is the collection that holds the first n of docs users.
func sizedColl(n, docs int) string {
	if n == docs {
		return usersColl
	}
	return fmt.Sprintf("users_%d", n)
}

// User is the struct a service would declare for its users. It has no
// password_hash field: that one is hidden from every answer.
type User struct {
	ID      bson.ObjectID `bson:"_id"`
	Name    string        `bson:"name"`
	Email   string        `bson:"email"`
	Age     int32         `bson:"age"`
	Created time.Time     `bson:"created"`
	Tags    []string      `bson:"tags"`
	Profile Profile       `bson:"profile"`
}

// Profile is User's embedded document.
type Profile struct {
	City  string  `bson:"city"`
	Score float64 `bson:"score"`
}

const hashAlphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

var seedStart = time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)

// userDoc returns the i-th user, shaped like the example's users. It
// depends on i only, so every collection holds the same first documents.
func userDoc(i int) bson.D {
	rng := rand.New(rand.NewPCG(20240501, uint64(i)))
	first := sample.FirstNames[rng.IntN(len(sample.FirstNames))]
	last := sample.LastNames[rng.IntN(len(sample.LastNames))]
	created := seedStart.Add(time.Duration(rng.Int64N(int64(3 * 365 * 24 * time.Hour)))).Truncate(time.Millisecond)
	tags := bson.A{}
	for _, k := range rng.Perm(len(sample.Tags))[:1+rng.IntN(3)] {
		tags = append(tags, sample.Tags[k])
	}
	var hash strings.Builder
	hash.WriteString("$2a$10$")
	for range 53 {
		hash.WriteByte(hashAlphabet[rng.IntN(len(hashAlphabet))])
	}
	return bson.D{
		{Key: "_id", Value: userID(i, created)},
		{Key: "name", Value: first + " " + last},
		{Key: "email", Value: fmt.Sprintf("%s.%s%d@example.com", strings.ToLower(first), strings.ToLower(last), i+1)},
		{Key: "age", Value: int32(18 + rng.IntN(62))},
		{Key: "created", Value: bson.NewDateTimeFromTime(created)},
		{Key: "tags", Value: tags},
		{Key: "profile", Value: bson.D{
			{Key: "city", Value: sample.Cities[rng.IntN(len(sample.Cities))]},
			{Key: "score", Value: float64(rng.IntN(1001)) / 10},
		}},
		{Key: "password_hash", Value: hash.String()},
	}
}

// userID is a real ObjectID whose timestamp is the user's creation time;
// the rest is the index, so ids are unique and deterministic.
func userID(i int, created time.Time) bson.ObjectID {
	var id bson.ObjectID
	binary.BigEndian.PutUint32(id[0:4], uint32(created.Unix()))
	binary.BigEndian.PutUint64(id[4:12], uint64(i))
	return id
}

// sampleIDs returns n ids of users spread over the first docs documents.
func sampleIDs(n, docs int) []string {
	n = min(n, docs)
	ids := make([]string, n)
	for k := range ids {
		i := int(uint64(k) * uint64(docs) / uint64(n))
		ids[k] = userDoc(i)[0].Value.(bson.ObjectID).Hex()
	}
	return ids
}

// seedCollection makes coll hold exactly the first n users: it leaves a
// collection that already has n documents alone (a reused -data
// directory), and otherwise drops it and inserts them in batches.
func seedCollection(ctx context.Context, coll *mongo.Collection, n int, log io.Writer) error {
	have, err := coll.EstimatedDocumentCount(ctx)
	if err != nil {
		return fmt.Errorf("counting %s: %w", coll.Name(), err)
	}
	if have == int64(n) {
		fmt.Fprintf(log, "seed: %s already holds %d documents\n", coll.Name(), n)
		return nil
	}
	if err := coll.Drop(ctx); err != nil {
		return fmt.Errorf("dropping %s: %w", coll.Name(), err)
	}
	start := time.Now()
	const batch = 1000
	docs := make([]any, 0, batch)
	for i := 0; i < n; i += batch {
		docs = docs[:0]
		for j := i; j < min(i+batch, n); j++ {
			docs = append(docs, userDoc(j))
		}
		if _, err := coll.InsertMany(ctx, docs, options.InsertMany().SetOrdered(true)); err != nil {
			return fmt.Errorf("seeding %s: %w", coll.Name(), err)
		}
		if done := i + len(docs); done%20000 == 0 && done < n {
			fmt.Fprintf(log, "seed: %s %d/%d\n", coll.Name(), done, n)
		}
	}
	fmt.Fprintf(log, "seed: %s: %d documents in %s\n", coll.Name(), n, time.Since(start).Round(time.Millisecond))
	return nil
}

// seedAll seeds every collection the configuration reads. _id, the only
// sort key, is indexed by every server.
func seedAll(ctx context.Context, db *mongo.Database, cfg config, log io.Writer) error {
	sizes := []int{cfg.docs, min(findOneDocs, cfg.docs)}
	for _, l := range cfg.limits {
		sizes = append(sizes, l+1)
	}
	sizes = append(sizes, cfg.exportSizes...)
	var names []string
	for _, n := range sizes {
		names = append(names, sizedColl(n, cfg.docs))
	}
	if cfg.cases["patch"] {
		for _, v := range patchVariants {
			names = append(names, writeColl(writePatch, v))
			sizes = append(sizes, min(patchDocs, cfg.docs))
		}
	}
	seeded := map[string]bool{}
	for i, n := range sizes {
		name := names[i]
		if seeded[name] {
			continue
		}
		if err := seedCollection(ctx, db.Collection(name), n, log); err != nil {
			return err
		}
		seeded[name] = true
	}
	return nil
}

// userJSON returns the i-th user as a client would POST it: every field
// but _id and the hidden password_hash, as JSON.
func userJSON(i int) []byte {
	raw, err := bson.Marshal(userDoc(i))
	if err != nil {
		panic(err) // userDoc's values always marshal
	}
	var u handUser
	if err := bson.Unmarshal(raw, &u); err != nil {
		panic(err)
	}
	u.ID = bson.ObjectID{} // omitted
	out, err := json.Marshal(u)
	if err != nil {
		panic(err)
	}
	return out
}

// ndjsonReader streams n lines of NDJSON, cycling through lines, without
// holding the whole body.
type ndjsonReader struct {
	lines [][]byte // each ending in '\n'
	n     int      // lines still to send
	i     int      // the next line
	rest  []byte   // what is left of the line being sent
}

func newNDJSONReader(lines [][]byte, n int) *ndjsonReader {
	return &ndjsonReader{lines: lines, n: n}
}

func (r *ndjsonReader) Read(p []byte) (int, error) {
	total := 0
	for len(p) > 0 {
		if len(r.rest) == 0 {
			if r.n == 0 {
				break
			}
			r.rest = r.lines[r.i%len(r.lines)]
			r.i++
			r.n--
		}
		k := copy(p, r.rest)
		r.rest, p, total = r.rest[k:], p[k:], total+k
	}
	if total == 0 {
		return 0, io.EOF
	}
	return total, nil
}
