package bsonjson_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	"github.com/mongohttp/mongohttp/bsonjson"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// A raw document, as cursor.Current or SingleResult.Raw give it, becomes
// plain JSON with its fields in stored order.
func ExampleEncoder_AppendDocument() {
	id, _ := bson.ObjectIDFromHex("65f3a1b2c3d4e5f601234567")
	doc, _ := bson.Marshal(bson.D{
		{Key: "_id", Value: id},
		{Key: "name", Value: "Ada"},
		{Key: "born", Value: bson.NewDateTimeFromTime(time.Date(1815, 12, 10, 0, 0, 0, 0, time.UTC))},
		{Key: "tags", Value: bson.A{"math", int64(1) << 60}},
	})

	var enc bsonjson.Encoder // plain JSON
	out, err := enc.AppendDocument(nil, doc)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(out))

	js := bsonjson.Encoder{Int64AsString: true} // for JavaScript clients
	out, _ = js.AppendDocument(out[:0], doc)
	fmt.Println(string(out))

	ext := bsonjson.Encoder{Format: bsonjson.FormatCanonical}
	out, _ = ext.AppendDocument(out[:0], doc)
	fmt.Println(string(out))
	// Output:
	// {"_id":"65f3a1b2c3d4e5f601234567","name":"Ada","born":"1815-12-10T00:00:00.000Z","tags":["math",1152921504606846976]}
	// {"_id":"65f3a1b2c3d4e5f601234567","name":"Ada","born":"1815-12-10T00:00:00.000Z","tags":["math","1152921504606846976"]}
	// {"_id":{"$oid":"65f3a1b2c3d4e5f601234567"},"name":"Ada","born":{"$date":{"$numberLong":"-4861728000000"}},"tags":["math",{"$numberLong":"1152921504606846976"}]}
}

// A struct decoded from MongoDB comes out as the raw document would: bson
// tags name the fields.
func ExampleEncoder_AppendValue() {
	type user struct {
		ID    bson.ObjectID `bson:"_id"`
		Name  string        `bson:"name" json:"fullName"` // json tags are ignored
		Since time.Time     `bson:"since"`
	}
	id, _ := bson.ObjectIDFromHex("65f3a1b2c3d4e5f601234567")
	u := user{ID: id, Name: "Ada", Since: time.Date(2024, 1, 2, 3, 4, 5, 6e8, time.UTC)}

	out, err := (*bsonjson.Encoder)(nil).AppendValue(nil, u)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(out))
	// Output:
	// {"_id":"65f3a1b2c3d4e5f601234567","name":"Ada","since":"2024-01-02T03:04:05.600Z"}
}

// Streaming a cursor as NDJSON: one document per line, written out as the
// buffer fills, so memory does not grow with the result. In a handler, w
// is the http.ResponseWriter.
func ExampleEncoder_NewNDJSONWriter() {
	cur, err := mongo.NewCursorFromDocuments([]any{
		bson.D{{Key: "n", Value: 1}},
		bson.D{{Key: "n", Value: 2.5}},
	}, nil, nil)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()

	dw := (*bsonjson.Encoder)(nil).NewNDJSONWriter(os.Stdout)
	defer dw.Close()
	for cur.Next(ctx) {
		if err := dw.WriteDocument(cur.Current); err != nil {
			log.Fatal(err)
		}
	}
	if err := cur.Err(); err != nil {
		log.Fatal(err)
	}
	// Output:
	// {"n":1}
	// {"n":2.5}
}

// An array writer writes "[]" for an empty sequence.
func ExampleEncoder_NewArrayWriter() {
	dw := (*bsonjson.Encoder)(nil).NewArrayWriter(os.Stdout)
	_ = dw.WriteValue(bson.D{{Key: "a", Value: true}})
	_ = dw.WriteValue(map[string]string{"b": "<x>"})
	if err := dw.Close(); err != nil {
		log.Fatal(err)
	}
	fmt.Println()
	fmt.Println(dw.Count(), "documents")
	// Output:
	// [{"a":true},{"b":"<x>"}]
	// 2 documents
}

// A handler that serves a cursor as a JSON array. Nothing reaches the
// client before the writer's buffer fills or Close, so a handler can still
// answer an error while it has written nothing.
func Example() {
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cur, err := mongo.NewCursorFromDocuments([]any{
			bson.D{{Key: "_id", Value: int32(1)}, {Key: "name", Value: "Ada"}},
			bson.D{{Key: "_id", Value: int32(2)}, {Key: "name", Value: "Grace"}},
		}, nil, nil) // in a service: coll.Find(r.Context(), filter)
		if err != nil {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		defer cur.Close(r.Context())
		w.Header().Set("Content-Type", "application/json")
		var enc bsonjson.Encoder
		dw := enc.NewArrayWriter(w)
		for cur.Next(r.Context()) {
			if err := dw.WriteDocument(cur.Current); err != nil {
				break // the failed document leaves no trace in the output
			}
		}
		if err := dw.Close(); err != nil {
			log.Print(err)
		}
	})

	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, httptest.NewRequest("GET", "/people", nil))
	fmt.Println(rec.Body.String())
	// Output:
	// [{"_id":1,"name":"Ada"},{"_id":2,"name":"Grace"}]
}
