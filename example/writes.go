package main

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/mongohttp/mongohttp"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/crypto/bcrypt"
)

// validatePost checks a post about to be written: it needs a title, and
// its author must be an existing user (a 422 naming author_id otherwise).
func validatePost(users *mongo.Collection) func(*http.Request, *Post) error {
	return func(r *http.Request, p *Post) error {
		var errs []mongohttp.FieldError
		if strings.TrimSpace(p.Title) == "" {
			errs = append(errs, mongohttp.FieldError{Pointer: "/title", Code: "required", Detail: "a post needs a title"})
		}
		if p.Likes < 0 {
			errs = append(errs, mongohttp.FieldError{Pointer: "/likes", Code: "negative", Detail: "likes cannot be negative"})
		}
		if p.AuthorID.IsZero() {
			errs = append(errs, mongohttp.FieldError{Pointer: "/author_id", Code: "required", Detail: "a post needs an author"})
		} else {
			err := users.FindOne(r.Context(), bson.D{{Key: "_id", Value: p.AuthorID}},
				options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})).Err()
			switch {
			case errors.Is(err, mongo.ErrNoDocuments):
				errs = append(errs, mongohttp.FieldError{Pointer: "/author_id", Code: "unknown_author", Detail: "no user has this id"})
			case err != nil:
				return err // 503 or 504: the database's trouble, not the client's
			}
		}
		if errs != nil {
			return &mongohttp.ValidationError{Fields: errs}
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

// validateUser checks a new user: a name, an email and a password of at
// least 8 characters. /users serves bson.Raw, so the hooks read fields
// from the raw document.
func validateUser(r *http.Request, doc *bson.Raw) error {
	var errs []mongohttp.FieldError
	for _, f := range []string{"name", "email"} {
		if s, _ := doc.Lookup(f).StringValueOK(); strings.TrimSpace(s) == "" {
			errs = append(errs, mongohttp.FieldError{Pointer: "/" + f, Code: "required"})
		}
	}
	if pw, _ := doc.Lookup("password").StringValueOK(); len(pw) < 8 {
		errs = append(errs, mongohttp.FieldError{Pointer: "/password", Code: "too_short", Detail: "a password has at least 8 characters"})
	}
	if errs != nil {
		return &mongohttp.ValidationError{Fields: errs}
	}
	return nil
}

// prepareUser replaces the password by its bcrypt hash in the hidden
// password_hash, and dates the user: the password itself is never stored,
// and neither field is ever answered.
func prepareUser(r *http.Request, op mongohttp.WriteOp, doc *bson.Raw) error {
	var d bson.D
	if err := bson.Unmarshal(*doc, &d); err != nil {
		return err
	}
	out := d[:0]
	var password string
	for _, e := range d {
		if e.Key == "password" {
			password, _ = e.Value.(string)
			continue
		}
		out = append(out, e)
	}
	if password != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
		if err != nil {
			return err
		}
		out = append(out, bson.E{Key: "password_hash", Value: string(hash)})
	}
	if op == mongohttp.OpInsert {
		out = append(out, bson.E{Key: "created", Value: bson.NewDateTimeFromTime(time.Now())})
	}
	raw, err := bson.Marshal(out)
	if err != nil {
		return err
	}
	*doc = raw
	return nil
}
