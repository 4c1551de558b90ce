package main

import (
	"errors"
	"net/http"
	"time"

	"github.com/mongohttp/mongohttp"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/crypto/bcrypt"
)

// validatePost checks what the posts' constraints cannot state: that a
// post's author is an existing user (a 422 naming author_id otherwise).
func validatePost(users *mongo.Collection) func(*http.Request, *Post) error {
	return func(r *http.Request, p *Post) error {
		err := users.FindOne(r.Context(), bson.D{{Key: "_id", Value: p.AuthorID}},
			options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})).Err()
		switch {
		case errors.Is(err, mongo.ErrNoDocuments):
			return &mongohttp.ValidationError{Fields: []mongohttp.FieldError{
				{Pointer: "/author_id", Code: "unknown_author", Detail: "no user has this id"}}}
		case err != nil:
			return err // 503 or 504: the database's trouble, not the client's
		}
		return nil
	}
}

// preparePost dates a new post that has no publication date, and keeps
// month in step with published on every write, since the stats group by
// it (the database has no date operators).
func preparePost(r *http.Request, op mongohttp.WriteOp, p *Post) error {
	if op == mongohttp.OpInsert && p.Published.IsZero() {
		p.Published = time.Now().UTC().Truncate(time.Millisecond)
	}
	p.Month = monthOf(p.Published)
	return nil
}

// monthOf is the month a post is counted in: "2024-04", in UTC.
func monthOf(t time.Time) string { return t.UTC().Format("2006-01") }

// prepareUser stores the bcrypt hash of the password in the hidden
// password_hash, and dates a new user. The password itself is write-only
// (see usersPolicy): the handlers drop it before storing, and neither
// field is ever answered. /users serves bson.Raw, so the hook reads and
// writes the raw document.
func prepareUser(r *http.Request, op mongohttp.WriteOp, doc *bson.Raw) error {
	var d bson.D
	if err := bson.Unmarshal(*doc, &d); err != nil {
		return err
	}
	if password, ok := doc.Lookup("password").StringValueOK(); ok {
		hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
		if err != nil {
			return err
		}
		d = append(d, bson.E{Key: "password_hash", Value: string(hash)})
	}
	if op == mongohttp.OpInsert {
		d = append(d, bson.E{Key: "created", Value: bson.NewDateTimeFromTime(time.Now())})
	}
	raw, err := bson.Marshal(d)
	if err != nil {
		return err
	}
	*doc = raw
	return nil
}
