package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/mongohttp/mongohttp"
	"github.com/mongohttp/mongohttp/example/internal/sample"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// The size of the sample data set.
const (
	sampleUsers = 1000
	samplePosts = 5000
	seedBatch   = 500
)

// seedUser is a user as stored. PasswordHash stands for the kind of field
// every real users collection has and no HTTP answer may ever carry: the
// routes hide it with Policy.Hidden.
type seedUser struct {
	ID           bson.ObjectID `bson:"_id"`
	Name         string        `bson:"name"`
	Email        string        `bson:"email"`
	Age          int32         `bson:"age"`
	Created      time.Time     `bson:"created"`
	Tags         []string      `bson:"tags"`
	Profile      seedProfile   `bson:"profile"`
	PasswordHash string        `bson:"password_hash"`
}

type seedProfile struct {
	City  string  `bson:"city"`
	Score float64 `bson:"score"`
}

// passwordHashPrefix starts every sample password hash (bcrypt's format),
// so tests can look for any trace of one in the answers.
const passwordHashPrefix = "$2a$10$"

var (
	titleTopics = []string{
		"indexes", "connection pools", "keyset pagination", "JSON encoding", "HTTP caching",
		"graceful shutdown", "rate limits", "schema design", "query planners", "timeouts",
		"observability", "sourdough", "trail running", "film cameras", "jazz standards",
	}
	titleForms = []string{
		"Notes on %s", "What I learned about %s", "A short guide to %s", "%s in practice",
		"Rethinking %s", "The trouble with %s", "Ten questions about %s", "%s, revisited",
	}
	sentences = []string{
		"It started as a small experiment.", "The numbers surprised me.",
		"Measure before you change anything.", "Most of the cost was in the network.",
		"The simple version was fast enough.", "Defaults matter more than options.",
		"I would do it differently today.", "Every failure taught something.",
		"The documentation was right all along.", "Nobody reads the error messages.",
	}
)

// sampleData builds the sample users and posts. It is deterministic: the
// same documents, ids included, on every machine and every run, so that the
// URLs in docs/example.md keep working. Ids are real ObjectIDs whose timestamp
// is the document's date.
func sampleData() ([]seedUser, []Post) {
	rng := rand.New(rand.NewPCG(20240501, 5))
	start := time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)
	end := time.Date(2025, 6, 30, 0, 0, 0, 0, time.UTC)
	span := end.Sub(start)

	users := make([]seedUser, sampleUsers)
	userIDs := newIDMaker(rng)
	for i := range users {
		first := sample.FirstNames[rng.IntN(len(sample.FirstNames))]
		last := sample.LastNames[rng.IntN(len(sample.LastNames))]
		// Users join during the first three years, so each has time to post.
		created := start.Add(time.Duration(rng.Int64N(int64(span * 2 / 3)))).Truncate(time.Millisecond)
		users[i] = seedUser{
			ID:      userIDs.next(created),
			Name:    first + " " + last,
			Email:   fmt.Sprintf("%s.%s%d@example.com", strings.ToLower(first), strings.ToLower(last), i+1),
			Age:     int32(18 + rng.IntN(62)),
			Created: created,
			Tags:    pick(rng, sample.Tags, 1+rng.IntN(3)),
			Profile: seedProfile{
				City:  sample.Cities[rng.IntN(len(sample.Cities))],
				Score: float64(rng.IntN(1001)) / 10,
			},
			PasswordHash: passwordHash(rng),
		}
	}

	posts := make([]Post, samplePosts)
	postIDs := newIDMaker(rng)
	for i := range posts {
		author := &users[rng.IntN(len(users))]
		published := author.Created.Add(time.Duration(rng.Int64N(int64(end.Sub(author.Created))))).Truncate(time.Millisecond)
		topic := titleTopics[rng.IntN(len(titleTopics))]
		title := fmt.Sprintf(titleForms[rng.IntN(len(titleForms))], topic)
		title = strings.ToUpper(title[:1]) + title[1:]
		body := strings.Join(pick(rng, sentences, 2+rng.IntN(3)), " ")
		// Likes are skewed, as they are in life: most posts get a few, some many.
		f := rng.Float64()
		posts[i] = Post{
			ID:        postIDs.next(published),
			AuthorID:  author.ID,
			Title:     title,
			Body:      body,
			Published: published,
			Likes:     int32(f * f * f * 2000),
			Month:     monthOf(published),
		}
	}
	return users, posts
}

// idMaker makes ObjectIDs the way a driver does (timestamp, a per-process
// random value, a counter), from the deterministic generator.
type idMaker struct {
	process [5]byte
	counter uint32
}

func newIDMaker(rng *rand.Rand) *idMaker {
	m := &idMaker{counter: rng.Uint32() & 0xffffff}
	binary.BigEndian.PutUint32(m.process[:4], rng.Uint32())
	m.process[4] = byte(rng.Uint32())
	return m
}

func (m *idMaker) next(t time.Time) bson.ObjectID {
	var id bson.ObjectID
	binary.BigEndian.PutUint32(id[0:4], uint32(t.Unix()))
	copy(id[4:9], m.process[:])
	m.counter = (m.counter + 1) & 0xffffff
	id[9], id[10], id[11] = byte(m.counter>>16), byte(m.counter>>8), byte(m.counter)
	return id
}

// pick returns n distinct elements of from, in from's order.
func pick(rng *rand.Rand, from []string, n int) []string {
	idx := rng.Perm(len(from))[:n]
	out := make([]string, 0, n)
	for i, s := range from {
		for _, j := range idx {
			if i == j {
				out = append(out, s)
				break
			}
		}
	}
	return out
}

// passwordHash returns a fake bcrypt hash: it looks like the real thing so
// that a leak would be recognisable, and hashes no password at all.
func passwordHash(rng *rand.Rand) string {
	const alphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 53)
	for i := range b {
		b[i] = alphabet[rng.IntN(len(alphabet))]
	}
	return passwordHashPrefix + string(b)
}

// seed fills the users and posts collections with the sample data when both
// are empty, and creates the indexes the routes use either way. It reports
// whether it inserted anything. A database where only one of the two
// collections has documents is left as it is: mixing sample data with
// someone's own would help nobody.
func seed(ctx context.Context, db *mongo.Database, logger *slog.Logger) (bool, error) {
	users, posts := db.Collection("users"), db.Collection("posts")
	nUsers, err := users.CountDocuments(ctx, bson.D{}, options.Count().SetLimit(1))
	if err != nil {
		return false, fmt.Errorf("counting users: %w", err)
	}
	nPosts, err := posts.CountDocuments(ctx, bson.D{}, options.Count().SetLimit(1))
	if err != nil {
		return false, fmt.Errorf("counting posts: %w", err)
	}
	seeded := false
	switch {
	case nUsers == 0 && nPosts == 0:
		began := time.Now()
		u, p := sampleData()
		if err := insertAll(ctx, users, u); err != nil {
			return false, fmt.Errorf("seeding users: %w", err)
		}
		if err := insertAll(ctx, posts, p); err != nil {
			return false, fmt.Errorf("seeding posts: %w", err)
		}
		logger.Info("seeded sample data", "database", db.Name(), "users", len(u), "posts", len(p),
			"took", time.Since(began).Round(time.Millisecond))
		seeded = true
	case nUsers == 0 || nPosts == 0:
		logger.Warn("not seeding: one of users and posts already has documents", "database", db.Name())
	}
	if err := ensureIndexes(ctx, db); err != nil {
		return seeded, err
	}
	return seeded, nil
}

// insertAll inserts docs in ordered batches.
func insertAll[T any](ctx context.Context, coll *mongo.Collection, docs []T) error {
	batch := make([]any, 0, seedBatch)
	for i := 0; i < len(docs); i += seedBatch {
		batch = batch[:0]
		for _, d := range docs[i:min(i+seedBatch, len(docs))] {
			batch = append(batch, d)
		}
		if _, err := coll.InsertMany(ctx, batch); err != nil {
			return err
		}
	}
	return nil
}

// ensureIndexes creates the indexes the routes need: those their
// declarations call for (mongohttp.Resource.Indexes: their sorts, the
// idempotency keys' expiry), and the service's own: users' emails are
// unique, a user's posts (the base filter's author_id) are listed newest
// first, and the users' filters on a city or a tag narrow the common
// queries. EnsureIndexes creates only what is missing.
func ensureIndexes(ctx context.Context, db *mongo.Database) error {
	// The declarations only list indexes here: no handler runs, so the
	// client they name needs no pool statistics or admission of its own.
	rs := declare(mongohttp.Wrap(db.Client()), db, func(*http.Request) string { return "" }, slog.Default(), limits{})
	users, posts := db.Collection("users"), db.Collection("posts")
	need := slices.Concat(rs.users.Indexes(), rs.posts.Indexes(), rs.userPosts.Indexes(), []mongohttp.Index{
		{Coll: users, Keys: bson.D{{Key: "email", Value: 1}}, Unique: true, Reason: "one account per email"},
		{Coll: users, Keys: bson.D{{Key: "profile.city", Value: 1}}, Reason: "users filtered by city"},
		{Coll: users, Keys: bson.D{{Key: "tags", Value: 1}}, Reason: "users filtered by tag"},
		{Coll: posts, Keys: bson.D{{Key: "author_id", Value: 1}, {Key: "published", Value: -1}, {Key: "_id", Value: 1}},
			Reason: "/users/{id}/posts: the base filter's author, newest first"},
	})
	if _, err := mongohttp.EnsureIndexes(ctx, need); err != nil {
		return fmt.Errorf("creating the indexes: %w", err)
	}
	return nil
}
