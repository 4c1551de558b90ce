package mongohttp

import (
	"errors"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func testBinding() *feedBinding {
	b := &feedBinding{key: []byte("0123456789abcdef-changes"), scope: "db.posts", policy: ""}
	b.base, _ = digestOf(nil)
	b.filter, _ = digestOf(bson.D{{Key: "likes", Value: bson.D{{Key: "$gte", Value: 10}}}})
	b.fields, _ = digestOf(bson.D{})
	return b
}

// TestChangeTokenBinding: a token resumes only the feed it was made for,
// within the retention.
func TestChangeTokenBinding(t *testing.T) {
	now := time.Now()
	b := testBinding()
	tok, err := b.sign(changeToken{W: now.Add(-time.Minute).UnixMilli()})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := b.read(tok, now, time.Hour); err != nil || got.W != now.Add(-time.Minute).UnixMilli() {
		t.Fatalf("read(own token) = %+v, %v", got, err)
	}
	other := func(change func(*feedBinding)) *feedBinding {
		c := *testBinding()
		change(&c)
		return &c
	}
	scope, _ := digestOf(bson.D{{Key: "author_id", Value: "x"}})
	for _, c := range []struct {
		name string
		b    *feedBinding
		now  time.Time
		want error
	}{
		{"another key", other(func(c *feedBinding) { c.key = []byte("fedcba9876543210-changes") }), now, ErrInvalidResumeToken},
		{"another collection", other(func(c *feedBinding) { c.scope = "db.users" }), now, ErrInvalidResumeToken},
		{"another policy", other(func(c *feedBinding) { c.policy = "admin" }), now, ErrInvalidResumeToken},
		{"another scope", other(func(c *feedBinding) { c.base = scope }), now, ErrInvalidResumeToken},
		{"another filter", other(func(c *feedBinding) { c.filter = c.base }), now, ErrInvalidResumeToken},
		{"other fields", other(func(c *feedBinding) { c.fields = scope }), now, ErrInvalidResumeToken},
		{"expired", b, now.Add(time.Hour), ErrResumeExpired},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.b.read(tok, c.now, time.Hour)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if e := AsError(err); (c.want == ErrResumeExpired && e.Status != 410) || (c.want == ErrInvalidResumeToken && e.Status != 400) {
				t.Fatalf("status %d", e.Status)
			}
		})
	}
	// A token has one spelling: the line breaks base64 decoders skip are
	// refused.
	for _, spelt := range []string{tok[:7] + "\n" + tok[7:], "\r" + tok, tok + "\n"} {
		if _, err := b.read(spelt, now, time.Hour); !errors.Is(err, ErrInvalidResumeToken) {
			t.Errorf("read(%q) = %v, want invalid_resume_token", spelt, err)
		}
	}
	// Every single-bit change of the token is refused.
	raw, _ := cursorEncoding.DecodeString(tok)
	for i := range raw {
		for bit := range 8 {
			c := append([]byte(nil), raw...)
			c[i] ^= 1 << bit
			if _, err := b.read(cursorEncoding.EncodeToString(c), now, time.Hour); !errors.Is(err, ErrInvalidResumeToken) {
				t.Fatalf("byte %d bit %d flipped: %v", i, bit, err)
			}
		}
	}
}
