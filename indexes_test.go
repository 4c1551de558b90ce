package mongohttp_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/mongohttp/mongohttp"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// TestIndexes checks the indexes a declaration asks for: two per sortable
// field (each direction, _id ascending after it), one for a DefaultSort of
// several fields, none for a sort an index already serves backwards, one
// per relation key that is not _id (nested relations too) in the related
// collection, the version field's for a change feed, the TTL index of the
// idempotency store unless it is disabled; each once, whichever policies ask for it, with a reason.
func TestIndexes(t *testing.T) {
	client, coll := offline(t, "things")
	db := coll.Database()
	teams := mongohttp.Policy{}
	users := mongohttp.Policy{Relations: map[string]mongohttp.Relation{
		"team": {Local: "team_id", Coll: db.Collection("teams"), Foreign: "code", Policy: teams},
	}}
	policy := mongohttp.Policy{
		Sort:        []string{"age", "name"},
		DefaultSort: "-age,name",
		Relations: map[string]mongohttp.Relation{
			"author": {Local: "author_email", Coll: db.Collection("users"), Foreign: "email", Policy: users},
			"tags":   {Local: "tag_ids", Coll: db.Collection("tags")}, // by _id: no index
		},
	}
	admin := mongohttp.Policy{
		Sort:        []string{"age", "created"},
		DefaultSort: "-created,-_id", // the reverse of created:1,_id:1
	}
	tests := []struct {
		name string
		c    mongohttp.Collection[bson.Raw]
		want []string // collection, key pattern, TTL
	}{
		{
			name: "zero policy",
			c:    mongohttp.Collection[bson.Raw]{Client: client, Coll: coll, Idempotency: mongohttp.Idempotency{Disabled: true}},
			want: nil,
		},
		{
			name: "idempotency",
			c:    mongohttp.Collection[bson.Raw]{Client: client, Coll: coll},
			want: []string{`things_idempotency {"expires":1} ttl`},
		},
		{
			name: "change feed",
			c: mongohttp.Collection[bson.Raw]{Client: client, Coll: coll, VersionField: "rev",
				Idempotency: mongohttp.Idempotency{Disabled: true}, Changes: &mongohttp.ChangeFeed{}},
			want: []string{`things {"rev":1}`},
		},
		{
			name: "sorts and relations",
			c: mongohttp.Collection[bson.Raw]{
				Client: client, Coll: coll, Policy: policy, Policies: map[string]mongohttp.Policy{"admin": admin},
				Idempotency: mongohttp.Idempotency{Store: db.Collection("keys")},
			},
			want: []string{
				`things {"age":1,"_id":1}`,
				`things {"age":-1,"_id":1}`,
				`things {"name":1,"_id":1}`,
				`things {"name":-1,"_id":1}`,
				`things {"age":-1,"name":1,"_id":1}`,
				`users {"email":1}`,
				`teams {"code":1}`,
				`things {"created":1,"_id":1}`,
				`things {"created":-1,"_id":1}`,
				`keys {"expires":1} ttl`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := mongohttp.New(tt.c)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, ix := range r.Indexes() {
				keys, err := bson.MarshalExtJSON(ix.Keys, false, false)
				if err != nil {
					t.Fatal(err)
				}
				s := ix.Coll.Name() + " " + string(keys)
				if ix.Expires {
					s += " ttl"
				}
				got = append(got, s)
				if ix.Reason == "" || ix.Name == "" {
					t.Errorf("%s: name %q, reason %q", s, ix.Name, ix.Reason)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("indexes:\n got %q\nwant %q", got, tt.want)
			}
		})
	}

	r := mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{Client: client, Coll: coll, Policy: policy, Policies: map[string]mongohttp.Policy{"admin": admin}}))
	for _, ix := range r.Indexes() {
		switch ix.Name {
		case "age_1__id_1":
			// Both policies sort by age: one index, both reasons.
			if !strings.Contains(ix.Reason, "?sort=age under Policy") || !strings.Contains(ix.Reason, `?sort=age under Policies["admin"]`) {
				t.Errorf("age_1__id_1: reason %q", ix.Reason)
			}
		case "created_1__id_1":
			if !strings.Contains(ix.Reason, "DefaultSort -created,-_id") {
				t.Errorf("created_1__id_1 serves the admin's DefaultSort backwards; reason %q", ix.Reason)
			}
		}
	}
}
