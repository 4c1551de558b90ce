package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/mongohttp/mongohttp"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Post is a post as stored and as served: /posts and /users/{id}/posts
// decode each document into it (the typed flavour of the handlers), where
// /users streams raw BSON untouched.
type Post struct {
	ID        bson.ObjectID `bson:"_id"`
	AuthorID  bson.ObjectID `bson:"author_id"`
	Title     string        `bson:"title"`
	Body      string        `bson:"body"`
	Published time.Time     `bson:"published"`
	Likes     int32         `bson:"likes"`
	// Month is published's month, "2024-04", kept by preparePost and
	// hidden by the policy: the stats group by it (see stats.go).
	Month string `bson:"month"`
}

// usersPolicy is what clients may ask of the users collection. Everything
// else is refused with a 400: unknown parameters, other fields, other
// operators, filter= reaching past these fields. password_hash is hidden:
// it is never returned, and it cannot be filtered, sorted or projected
// (which would let a client guess it character by character).
var usersPolicy = mongohttp.Policy{
	Filter: map[string]mongohttp.Type{
		"name":         mongohttp.String,
		"email":        mongohttp.String,
		"age":          mongohttp.Int,
		"tags":         mongohttp.String,
		"profile.city": mongohttp.String,
		"created":      mongohttp.Date,
	},
	Sort:         []string{"age", "name", "created"},
	Project:      []string{"name", "email", "age", "tags", "profile", "profile.city", "created"},
	Hidden:       []string{"password_hash"},
	DefaultLimit: 20,
	MaxLimit:     100,
	// POST /users takes a password, which prepareUser stores only as
	// password_hash: neither is ever answered.
	Write: map[string]mongohttp.Type{
		"name":         mongohttp.String,
		"email":        mongohttp.String,
		"age":          mongohttp.Int,
		"tags":         mongohttp.ArrayOf(mongohttp.String),
		"profile.city": mongohttp.String,
		"password":     mongohttp.String,
	},
	// What a schema can state, enforced and described in the API
	// document: a name that is not blank, an email with an @ (unique by
	// an index: a taken one is a 409 naming /email), and a write-only
	// password of at least 8 characters, which is never stored as sent.
	Constraints: map[string]mongohttp.Constraint{
		"name":     {Required: true, Pattern: notBlank},
		"email":    {Required: true, Pattern: `^[^@ ]+@[^@ ]+$`},
		"password": {Required: true, WriteOnly: true, MinLength: 8},
	},
}

// notBlank is a pattern that needs a character other than white space.
const notBlank = `[^ \t\n\r\f\v]`

// postsPolicy is what clients may ask of the posts collection, and what
// they may write. It has no Project list, so fields= is refused: posts are
// small and always served whole.
var postsPolicy = mongohttp.Policy{
	Filter: map[string]mongohttp.Type{
		"author_id": mongohttp.ObjectID,
		"title":     mongohttp.String,
		"likes":     mongohttp.Int,
		"published": mongohttp.Date,
	},
	Sort:         []string{"published", "likes"},
	DefaultSort:  "-published",
	Hidden:       []string{"month"},
	DefaultLimit: 20,
	MaxLimit:     100,
	// published defaults to the time of the insert.
	Write: map[string]mongohttp.Type{
		"author_id": mongohttp.ObjectID,
		"title":     mongohttp.String,
		"body":      mongohttp.String,
		"published": mongohttp.Date,
		"likes":     mongohttp.Int,
	},
	// A post needs an author and a title, and cannot have fewer than no
	// likes. That the author exists is checked by validatePost: no schema
	// can say it.
	Constraints: map[string]mongohttp.Constraint{
		"author_id": {Required: true},
		"title":     {Required: true, Pattern: notBlank},
		"likes":     {Minimum: mongohttp.Bound(0)},
	},
}

// limits bound the work of each request.
type limits struct {
	maxTime   time.Duration       // the time limit of a request's queries
	admission mongohttp.Admission // how many requests each handler runs at once
	// cursorKey signs the paging and resume tokens (CURSOR_KEY): instances
	// that share it accept each other's tokens. nil: a key per process.
	cursorKey []byte
	// changes configures the posts' change feeds; the zero value is
	// mongohttp's defaults.
	changes mongohttp.ChangeFeed
}

// routes are the service's handlers, built once and mountable on any
// router: only pathID, which reads the {id} segment of the path, depends
// on the router.
type routes struct {
	Users, Posts, Post mongohttp.Methods
	// BulkPosts takes an NDJSON stream of posts.
	BulkPosts            http.Handler
	User, UserPosts      http.Handler
	UserStats, PostStats http.Handler
	Health               http.Handler
	// The change feeds of all posts and of one user's posts.
	PostChanges, UserPostChanges *mongohttp.Feed
}

// resources are the service's declarations, checked.
type resources struct {
	users            *mongohttp.Resource[bson.Raw]
	posts, userPosts *mongohttp.Resource[Post]
}

// declare checks the declarations of db's users and posts collections.
// maxTime bounds each request's queries: past it the answer is 504.
func declare(client *mongohttp.Client, db *mongo.Database, pathID func(*http.Request) string, logger *slog.Logger, lim limits) resources {
	maxTime := lim.maxTime
	usersPol, postsPol := usersPolicy, postsPolicy
	usersPol.CursorKey, postsPol.CursorKey = lim.cursorKey, lim.cursorKey
	// Each collection is declared once; its handlers are made from the
	// declaration.
	users := mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{
		// bson.Raw: documents go from the cursor to the JSON encoder without
		// being decoded. The policy's projection keeps password_hash on the
		// server.
		Client: client, Coll: db.Collection("users"), Policy: usersPol, ID: pathID, Logger: logger, MaxTime: maxTime,
		Admission: lim.admission, Prepare: prepareUser,
	}))
	// ?embed=author adds each post's author, read for a whole page with one
	// query, under the users' policy: password_hash stays hidden.
	withAuthor := postsPol
	withAuthor.Relations = map[string]mongohttp.Relation{
		"author": {Local: "author_id", Coll: db.Collection("users"), Policy: usersPolicy},
	}
	postsDecl := mongohttp.Collection[Post]{
		Client: client, Coll: db.Collection("posts"), Policy: withAuthor, ID: pathID, Logger: logger, MaxTime: maxTime,
		Admission: lim.admission, Validate: validatePost(db.Collection("users")), Prepare: preparePost,
		Changes: &lim.changes,
	}
	posts := mongohttp.Must(mongohttp.New(postsDecl))
	// A user's posts: the same declaration, scoped by the author in the path
	// through the base filter. Whatever the query string says, it can only
	// narrow this user's posts.
	userPostsDecl := postsDecl
	userPostsDecl.BaseFilter = authorFilter(db.Collection("users"), pathID, maxTime)
	userPosts := mongohttp.Must(mongohttp.New(userPostsDecl))
	return resources{users: users, posts: posts, userPosts: userPosts}
}

// newRoutes builds the handlers on db's users and posts collections.
func newRoutes(client *mongohttp.Client, db *mongo.Database, pathID func(*http.Request) string, logger *slog.Logger, lim limits) *routes {
	rs := declare(client, db, pathID, logger, lim)
	users, posts, userPosts := rs.users, rs.posts, rs.userPosts
	return &routes{
		Users:     mongohttp.Methods{"GET": users.Find(), "POST": users.Insert()},
		User:      users.FindOne(),
		UserPosts: userPosts.Find(),
		Posts:     mongohttp.Methods{"GET": posts.Find(), "POST": posts.Insert()},
		BulkPosts: posts.BulkInsert(),
		Post: mongohttp.Methods{
			"GET": posts.FindOne(), "PUT": posts.Replace(), "PATCH": posts.Patch(), "DELETE": posts.Delete(),
		},
		PostChanges:     posts.Changes(),
		UserPostChanges: userPosts.Changes(),
		// The same statistics for one user's posts (404 for an unknown
		// user, through the base filter) and for everyone's.
		UserStats: mongohttp.Must(userPosts.Aggregate(postStats)),
		PostStats: mongohttp.Must(posts.Aggregate(postStats)),
		Health:    &mongohttp.HealthHandler{Client: client, Logger: logger},
	}
}

// authorFilter is the base filter of /users/{id}/posts: the user's id from
// the path, which must be a well-formed ObjectID (else 400
// invalid_object_id) of an existing user (else 404 not_found, rather than
// an empty list that would look like a user without posts).
func authorFilter(users *mongo.Collection, pathID func(*http.Request) string, maxTime time.Duration) func(*http.Request) (bson.D, error) {
	return func(r *http.Request) (bson.D, error) {
		raw := pathID(r)
		id, err := bson.ObjectIDFromHex(raw)
		if err != nil {
			return nil, mongohttp.ErrInvalidObjectID.Detailf("the user id must be 24 hexadecimal digits, not %q", clip(raw))
		}
		ctx, cancel := context.WithTimeout(r.Context(), maxTime)
		defer cancel()
		err = users.FindOne(ctx, bson.D{{Key: "_id", Value: id}},
			options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})).Err()
		if errors.Is(err, mongo.ErrNoDocuments) {
			return nil, mongohttp.ErrNotFound.Detailf("no user has this id")
		}
		if err != nil {
			return nil, err // mapped to 503, 504 or 500 without its message
		}
		return bson.D{{Key: "author_id", Value: id}}, nil
	}
}

// clip shortens client input before it is echoed in an error detail.
func clip(s string) string {
	const max = 40
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// NewHandler builds the service on an http.ServeMux. Patterns carry no
// method: the handlers answer other methods themselves with a 405
// problem+json and an Allow header, where ServeMux would answer in plain
// text. The operator endpoints (/debug/*) are not here but on a listener
// of their own (see newOperatorMux): here they are 404 like any unknown
// path. Every route is also registered with the API, which serves its
// OpenAPI document at /openapi.json.
func NewHandler(client *mongohttp.Client, db *mongo.Database, logger *slog.Logger, lim limits) http.Handler {
	rt := newRoutes(client, db, func(r *http.Request) string { return r.PathValue("id") }, logger, lim)
	mux := http.NewServeMux()
	api := &mongohttp.API{
		Title:       "mongohttp example",
		Version:     "1.0.0",
		Description: "Users and their posts, served from MongoDB by mongohttp.",
	}
	// Each route is mounted and registered with the API in one call.
	handle := func(pattern string, h http.Handler, doc mongohttp.Doc) {
		mux.Handle(pattern, api.Handle(pattern, h, doc))
	}
	userID := map[string]mongohttp.Type{"id": mongohttp.ObjectID}
	// The author comes from the path, checked by authorFilter.
	authorErrors := []*mongohttp.Error{mongohttp.ErrInvalidObjectID, mongohttp.ErrNotFound}
	handle("/users", rt.Users, mongohttp.Doc{Operations: map[string]mongohttp.Doc{
		"GET":  {OperationID: "listUsers", Summary: "List users"},
		"POST": {OperationID: "createUser", Summary: "Create a user", Description: "password is required (at least 8 characters) and stored only as a bcrypt hash."},
	}})
	handle("/users/{id}", rt.User, mongohttp.Doc{OperationID: "getUser", Summary: "Get a user"})
	handle("/users/{id}/posts", rt.UserPosts, mongohttp.Doc{
		OperationID: "listUserPosts", Summary: "List a user's posts", Tags: []string{"posts"},
		PathParams: userID, Errors: authorErrors,
	})
	handle("/users/{id}/stats", rt.UserStats, mongohttp.Doc{
		OperationID: "userPostStats", Summary: "Statistics of a user's posts", Tags: []string{"posts"},
		PathParams: userID, Errors: authorErrors,
	})
	handle("/posts", rt.Posts, mongohttp.Doc{Operations: map[string]mongohttp.Doc{
		"GET":  {OperationID: "listPosts", Summary: "List posts"},
		"POST": {OperationID: "createPost", Summary: "Create a post", Description: "author_id must name an existing user; published defaults to now."},
	}})
	handle("/posts/bulk", rt.BulkPosts, mongohttp.Doc{OperationID: "createPosts", Summary: "Create many posts",
		Description: "One post a line; each is checked as createPost checks its body."})
	feedDoc := func(id, summary string) mongohttp.Doc {
		return mongohttp.Doc{OperationID: id, Summary: summary, Tags: []string{"posts"},
			Description: "Server-Sent Events with Accept: text/event-stream (use EventSource), else the changes since since= as JSON or NDJSON. See docs/changes.md."}
	}
	handle("/posts/changes", rt.PostChanges, feedDoc("postChanges", "Follow the changes of posts"))
	userFeed := feedDoc("userPostChanges", "Follow the changes of a user's posts")
	userFeed.PathParams, userFeed.Errors = userID, authorErrors
	handle("/users/{id}/posts/changes", rt.UserPostChanges, userFeed)
	mux.Handle("GET /live", livePage)
	mux.Handle("GET /live.js", livePage)
	handle("/posts/stats", rt.PostStats, mongohttp.Doc{OperationID: "postStats", Summary: "Statistics of all posts"})
	handle("/posts/{id}", rt.Post, mongohttp.Doc{Operations: map[string]mongohttp.Doc{
		"GET":    {OperationID: "getPost", Summary: "Get a post"},
		"PUT":    {OperationID: "replacePost", Summary: "Replace or create a post"},
		"PATCH":  {OperationID: "patchPost", Summary: "Change a post"},
		"DELETE": {OperationID: "deletePost", Summary: "Delete a post"},
	}})
	handle("/healthz", rt.Health, mongohttp.Doc{OperationID: "health", Tags: []string{"service"}})
	handle("/openapi.json", api, mongohttp.Doc{OperationID: "openapi", Tags: []string{"service"}})
	mux.Handle("/", http.HandlerFunc(notFound))
	return mux
}

// notFound answers paths no route serves, as problem+json like every
// other error of the service.
func notFound(w http.ResponseWriter, r *http.Request) {
	mongohttp.WriteError(w, r, mongohttp.ErrNotFound.Detailf("no route serves this path; try /users, /posts or /healthz"))
}

// methodNotAllowed answers 405 as mongohttp's handlers do, for routes
// (and routers) that refuse a method before a handler sees it.
func methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Allow", "GET, HEAD")
	mongohttp.WriteError(w, r, mongohttp.ErrMethodNotAllowed.Detailf("method %s is not allowed; use GET or HEAD", strconv.Quote(r.Method)))
}
