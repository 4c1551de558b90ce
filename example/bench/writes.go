package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/mongohttp/mongohttp"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// The write cases. Each variant writes a collection of its own, so that no
// handler reads what another wrote: Insert adds documents to an empty one,
// Patch changes the age of the first patchDocs users, and the bulk insert
// fills an empty one.
//
// The routes, below each variant's prefix:
//
//	POST  /inserts     one user as JSON, answered 201 with the stored user
//	PATCH /patch/{id}  a merge patch of a user, answered 200 with the user
//	POST  /bulk        users as NDJSON, answered 200 {"inserted": n}
const (
	writeInsert = "insert"
	writePatch  = "patch"
	writeBulk   = "bulk"
)

// variantHandFAU is the second hand-written PATCH: one FindOneAndUpdate
// with returnDocument after, where variantHand sends UpdateOne then FindOne.
const variantHandFAU = "hand-findoneandupdate"

// variantHandClaimed is the hand-written PATCH with mongohttp's guarantee
// on FerretDB: no update lost between concurrent writers.
const variantHandClaimed = "hand-claimed"

// The variants of each write case.
var (
	insertVariants = []string{variantRaw, variantStruct, variantHand}
	patchVariants  = []string{variantRaw, variantStruct, variantHand, variantHandFAU, variantHandClaimed}
	bulkVariants   = []string{variantRaw, variantHand}
)

// patchDocs is how many users Patch changes, in turn.
const patchDocs = findOneDocs

// writeColl is the collection variant v writes in case kind.
func writeColl(kind, v string) string {
	return kind + "_" + strings.ReplaceAll(v, "-", "_")
}

// writePolicy lets clients write every field of a user but the hidden
// password_hash, with its stored type.
var writePolicy = mongohttp.Policy{
	Hidden: []string{"password_hash"},
	Write: map[string]mongohttp.Type{
		"name":          mongohttp.String,
		"email":         mongohttp.String,
		"age":           mongohttp.Int,
		"created":       mongohttp.Date,
		"tags":          mongohttp.ArrayOf(mongohttp.String),
		"profile.city":  mongohttp.String,
		"profile.score": mongohttp.Float,
	},
}

// routeWrites adds the write routes of every variant to mux, with the
// reads' time limit and admission; the bulk inserts are sampled for their
// peak heap.
func routeWrites(mux *http.ServeMux, mh *mongohttp.Client, mdb, hdb *mongo.Database, st *serveStats, maxTime time.Duration, admission mongohttp.Admission) {
	raw := func(kind string) *mongohttp.Resource[bson.Raw] {
		return mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{Client: mh, Coll: mdb.Collection(writeColl(kind, variantRaw)),
			Policy: writePolicy, MaxTime: maxTime, Admission: admission}))
	}
	typed := func(kind string) *mongohttp.Resource[User] {
		return mongohttp.Must(mongohttp.New(mongohttp.Collection[User]{Client: mh, Coll: mdb.Collection(writeColl(kind, variantStruct)),
			Policy: writePolicy, MaxTime: maxTime, Admission: admission}))
	}
	mux.Handle("POST /"+variantRaw+"/inserts", raw(writeInsert).Insert())
	mux.Handle("POST /"+variantStruct+"/inserts", typed(writeInsert).Insert())
	mux.Handle("POST /"+variantHand+"/inserts", handInsert(hdb.Collection(writeColl(writeInsert, variantHand))))

	mux.Handle("PATCH /"+variantRaw+"/patch/{id}", raw(writePatch).Patch())
	mux.Handle("PATCH /"+variantStruct+"/patch/{id}", typed(writePatch).Patch())
	mux.Handle("PATCH /"+variantHand+"/patch/{id}", handPatch(hdb.Collection(writeColl(writePatch, variantHand))))
	mux.Handle("PATCH /"+variantHandFAU+"/patch/{id}", handPatchFAU(hdb.Collection(writeColl(writePatch, variantHandFAU))))
	mux.Handle("PATCH /"+variantHandClaimed+"/patch/{id}", handPatchClaimed(hdb.Collection(writeColl(writePatch, variantHandClaimed))))

	mux.Handle("POST /"+variantRaw+"/bulk", st.sampled(raw(writeBulk).BulkInsert()))
	mux.Handle("POST /"+variantHand+"/bulk", st.sampled(handBulk(hdb.Collection(writeColl(writeBulk, variantHand)))))
}

// --- The hand-written write handlers: decode with encoding/json into the
// struct a service would declare, call the driver, encode the answer. They
// check nothing the driver does not need: no unknown or missing fields, no
// types beyond what decoding into the struct does.

// handUser is a user as the hand-written handlers read and store it.
type handUser struct {
	ID      bson.ObjectID `json:"_id,omitzero" bson:"_id"`
	Name    string        `json:"name" bson:"name"`
	Email   string        `json:"email" bson:"email"`
	Age     int32         `json:"age" bson:"age"`
	Created time.Time     `json:"created" bson:"created"`
	Tags    []string      `json:"tags" bson:"tags"`
	Profile handProfile   `json:"profile" bson:"profile"`
}

type handProfile struct {
	City  string  `json:"city" bson:"city"`
	Score float64 `json:"score" bson:"score"`
}

// handInsert decodes one user, gives it a new id, inserts it and answers
// 201 with it.
func handInsert(coll *mongo.Collection) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var u handUser
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&u); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		u.ID = bson.NewObjectID()
		if _, err := coll.InsertOne(r.Context(), u); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(u)
	}
}

// handUserPatch holds the fields a PATCH sets; nil ones are left alone.
type handUserPatch struct {
	Name    *string    `json:"name"`
	Email   *string    `json:"email"`
	Age     *int32     `json:"age"`
	Created *time.Time `json:"created"`
	Tags    *[]string  `json:"tags"`
	Profile *struct {
		City  *string  `json:"city"`
		Score *float64 `json:"score"`
	} `json:"profile"`
}

// set is the $set of the fields the patch gives; nested ones by their
// dotted path, so a patch of profile.city keeps profile.score.
func (p handUserPatch) set() bson.D {
	var set bson.D
	add := func(k string, v any) { set = append(set, bson.E{Key: k, Value: v}) }
	if p.Name != nil {
		add("name", *p.Name)
	}
	if p.Email != nil {
		add("email", *p.Email)
	}
	if p.Age != nil {
		add("age", *p.Age)
	}
	if p.Created != nil {
		add("created", *p.Created)
	}
	if p.Tags != nil {
		add("tags", *p.Tags)
	}
	if p.Profile != nil {
		if p.Profile.City != nil {
			add("profile.city", *p.Profile.City)
		}
		if p.Profile.Score != nil {
			add("profile.score", *p.Profile.Score)
		}
	}
	return set
}

// decodePatch reads a PATCH's id and body; it answers the request itself
// and returns false when either is wrong.
func decodePatch(w http.ResponseWriter, r *http.Request) (bson.ObjectID, bson.D, bool) {
	id, err := bson.ObjectIDFromHex(r.PathValue("id"))
	if err != nil {
		http.Error(w, "invalid id", http.StatusBadRequest)
		return id, nil, false
	}
	var p handUserPatch
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&p); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return id, nil, false
	}
	set := p.set()
	if len(set) == 0 {
		http.Error(w, "nothing to change", http.StatusBadRequest)
		return id, nil, false
	}
	return id, set, true
}

// handPatch is the PATCH the driver's documentation leads to: UpdateOne
// with $set, then FindOne for the answer, as handFindOne answers it.
func handPatch(coll *mongo.Collection) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, set, ok := decodePatch(w, r)
		if !ok {
			return
		}
		filter := bson.D{{Key: "_id", Value: id}}
		res, err := coll.UpdateOne(r.Context(), filter, bson.D{{Key: "$set", Value: set}})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if res.MatchedCount == 0 {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		var user bson.M
		err = coll.FindOne(r.Context(), filter, options.FindOne().SetProjection(hiddenProjection)).Decode(&user)
		if errors.Is(err, mongo.ErrNoDocuments) {
			http.Error(w, "not found", http.StatusNotFound) // deleted meanwhile
			return
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(user)
	}
}

// handPatchFAU is the same PATCH in one round trip: FindOneAndUpdate,
// returning the document after the update.
func handPatchFAU(coll *mongo.Collection) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, set, ok := decodePatch(w, r)
		if !ok {
			return
		}
		updateAndAnswer(w, r, coll, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$set", Value: set}})
	}
}

// updateAndAnswer sends one FindOneAndUpdate returning the document after
// the update, and answers it as handFindOne would.
func updateAndAnswer(w http.ResponseWriter, r *http.Request, coll *mongo.Collection, filter, update bson.D) {
	// No projection: FerretDB 1.24 does not implement findAndModify's
	// fields, so the hidden field is removed here instead.
	var user bson.M
	err := coll.FindOneAndUpdate(r.Context(), filter, update, options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&user)
	if errors.Is(err, mongo.ErrNoDocuments) {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	delete(user, "password_hash")
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(user)
}

// handPatchClaimed is the hand-written PATCH that loses no update on
// FerretDB, whose updates read the document and then write it, as
// mongohttp's Patch does there: read the document's version, claim that
// version in "<collection>_claims" (an insert, which _id uniqueness grants
// to one writer), then FindOneAndUpdate by _id setting the fields and a new
// version. A writer that finds the version claimed reads again. Claims are
// never removed: each names a version that is gone once its write is done.
func handPatchClaimed(coll *mongo.Collection) http.HandlerFunc {
	claims := coll.Database().Collection(coll.Name() + "_claims")
	versionOnly := options.FindOne().SetProjection(bson.D{{Key: "_etag", Value: 1}})
	return func(w http.ResponseWriter, r *http.Request) {
		id, set, ok := decodePatch(w, r)
		if !ok {
			return
		}
		ctx := r.Context()
		filter := bson.D{{Key: "_id", Value: id}}
		for range 8 {
			var cur struct {
				Version bson.ObjectID `bson:"_etag"`
			}
			err := coll.FindOne(ctx, filter, versionOnly).Decode(&cur)
			if errors.Is(err, mongo.ErrNoDocuments) {
				http.Error(w, "not found", http.StatusNotFound)
				return
			}
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			_, err = claims.InsertOne(ctx, bson.D{{Key: "_id", Value: id.Hex() + "/" + cur.Version.Hex()}, {Key: "taken", Value: time.Now()}})
			if mongo.IsDuplicateKeyError(err) {
				continue // another writer moved it on: read again
			}
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			updateAndAnswer(w, r, coll, filter, bson.D{{Key: "$set", Value: append(set, bson.E{Key: "_etag", Value: bson.NewObjectID()})}})
			return
		}
		http.Error(w, "the document kept changing", http.StatusConflict)
	}
}

// handBulkBatch is the hand-written bulk insert's batch, as mongohttp's.
const handBulkBatch = 500

// handBulk reads NDJSON line by line with a bufio.Scanner, decodes each
// line into a user and inserts them in ordered InsertMany batches.
func handBulk(coll *mongo.Collection) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sc := bufio.NewScanner(r.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		batch := make([]any, 0, handBulkBatch)
		inserted := 0
		flush := func() error {
			if len(batch) == 0 {
				return nil
			}
			res, err := coll.InsertMany(r.Context(), batch)
			if res != nil {
				inserted += len(res.InsertedIDs)
			}
			batch = batch[:0]
			return err
		}
		for sc.Scan() {
			if len(bytes.TrimSpace(sc.Bytes())) == 0 {
				continue
			}
			var u handUser
			if err := json.Unmarshal(sc.Bytes(), &u); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			u.ID = bson.NewObjectID()
			batch = append(batch, u)
			if len(batch) == handBulkBatch {
				if err := flush(); err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
			}
		}
		if err := sc.Err(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := flush(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]int{"inserted": inserted})
	}
}
