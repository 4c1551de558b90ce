package mongohttp

import (
	"context"
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// TestConflictFieldsFromReports: the fields of a duplicate key are read
// from each way a server reports one, with the index list already cached
// (so nothing here reaches a server).
func TestConflictFieldsFromReports(t *testing.T) {
	u := &uniqueIndexes{loaded: time.Now(), specs: []uniqueIndex{
		{name: "email_1", fields: []string{"email"}},
		{name: "place", fields: []string{"city.name", "likes"}},
		{name: "team_email_1", fields: []string{"team", "email"}},
	}}
	keyPattern, _ := bson.Marshal(bson.D{{Key: "code", Value: 11000}, {Key: "keyPattern", Value: bson.D{{Key: "a.b", Value: 1}, {Key: "c", Value: -1}}}})
	idPattern, _ := bson.Marshal(bson.D{{Key: "code", Value: 11000}, {Key: "keyPattern", Value: bson.D{{Key: "_id", Value: 1}}}})
	writeErr := func(raw bson.Raw, msg string) error {
		return mongo.WriteException{WriteErrors: mongo.WriteErrors{{Code: 11000, Message: msg, Raw: raw}}}
	}
	for _, tt := range []struct {
		name string
		err  error
		want []string
	}{
		{"MongoDB's key pattern", writeErr(keyPattern, "E11000 duplicate key error"), []string{"a.b", "c"}},
		{"MongoDB's key pattern of _id", writeErr(idPattern, "E11000 duplicate key error"), nil},
		{"MongoDB's message", writeErr(nil, `E11000 duplicate key error collection: db.users index: place dup key: { city.name: "Oslo" }`), []string{"city.name", "likes"}},
		{"MongoDB's bulk message", mongo.BulkWriteException{WriteErrors: []mongo.BulkWriteError{{WriteError: mongo.WriteError{Code: 11000,
			Message: `E11000 duplicate key error collection: db.users index: email_1 dup key: { email: "a" }`}}}}, []string{"email"}},
		{"FerretDB's SQLite name", mongo.CommandError{Code: 1, Message: "[x.go:1] constraint failed: UNIQUE constraint failed: index 'users_f50c43ef_email_1' (2067)"}, []string{"email"}},
		{"FerretDB's SQLite name, longest suffix", mongo.CommandError{Code: 1, Message: "UNIQUE constraint failed: index 'users_0a1b2c3d_team_email_1'"}, []string{"team", "email"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := u.conflictFields(context.Background(), tt.err, nil); !slices.Equal(got, tt.want) {
				t.Fatalf("fields %q, want %q", got, tt.want)
			}
		})
	}
	e := u.conflictError(context.Background(), writeErr(keyPattern, ""), nil)
	if e.Status != 409 || e.Code != "conflict" || len(e.Errors) != 2 || e.Errors[0].Pointer != "/a/b" || e.Errors[1].Code != "duplicate" {
		t.Fatalf("conflict error %+v", e)
	}
}
