package mongohttp

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Relation declares documents of another collection that clients may embed
// in this collection's answers: with ?embed=name, Find and FindOne add to
// each document, under the relation's name, the related document (null when
// there is none) or, when Local holds an array, the array of them.
//
// The related documents of a whole page are read with one query per
// relation (a find with $in over the page's keys), never one per document,
// under the request's context, its time limit and its admission.
type Relation struct {
	// Local is the field of this collection's documents that holds the
	// related document's key (usually an ObjectID), or an array of keys.
	// It may not be hidden. With ?fields=, it is added to the projection,
	// as the sort fields are. Required.
	Local string

	// Coll is the collection of the related documents. Required.
	Coll *mongo.Collection

	// Foreign is the field of the related documents that Local's values are
	// matched with. Values match when they have the same BSON type and value
	// (an int32 never matches an int64), so keep both sides one type. It
	// should be unique in Coll (_id, or a field with a unique index): when
	// several documents share a key, the one with the smallest _id is
	// embedded. It may not be hidden by Policy. Default is "_id".
	Foreign string

	// Policy is the related collection's own policy: its Hidden fields never
	// appear in an embedded document, Fields must be projectable under it,
	// and its Relations can be embedded in turn, one level down
	// (?embed=author.team; see MaxEmbedDepth). Give the policy the related
	// collection is served with. Default is the zero Policy, which hides
	// nothing.
	Policy Policy

	// Fields lists the fields of the related documents to embed; each must
	// be in Policy.Project. _id is always included, and so are Foreign and
	// the Local fields of the nested relations a request asks for. Default
	// (nil) is every field Policy does not hide.
	Fields []string

	// BaseFilter scopes the related documents to the request, as
	// Collection.BaseFilter scopes a collection's (a tenant, an owner): a
	// related document outside it is embedded as null, like a missing one.
	// Default is nil: no scope.
	BaseFilter func(r *http.Request) (bson.D, error)
}

// MaxEmbedDepth is how deep embedding goes: a relation (?embed=author) and
// the relations of its Policy (?embed=author.team), no deeper. Relations
// declared further down are ignored, so policies may refer to each other.
const MaxEmbedDepth = 2

// MaxEmbedBytes bounds the related documents one answer holds in memory
// (those of a page, or of one document). Past it the answer is 400
// limit_exceeded: the client asks for fewer documents.
const MaxEmbedBytes = 16 << 20

// relation is a compiled Relation.
type relation struct {
	path       string   // "author", or "author.team" for a nested one
	name       string   // the key under which it is embedded
	local      []string // Local, split at dots for bson.Raw.LookupErr
	localPath  string
	foreign    []string
	coll       *mongo.Collection
	baseFilter func(r *http.Request) (bson.D, error)
	exclusion  bson.D   // the related policy's hidden fields, when fields is nil
	fields     []string // an inclusion projection, or nil
	children   map[string]*relation
	target     *QueryParser // the related policy's, for the API document
}

// compileRelations checks and compiles the relations of a policy whose
// parser is qp, at the given depth (1 for the policy a handler serves).
func (qp *QueryParser) compileRelations(rels map[string]Relation, prefix string, depth int) (map[string]*relation, error) {
	if len(rels) == 0 {
		return nil, nil
	}
	out := make(map[string]*relation, len(rels))
	for _, name := range sortedKeys(rels) {
		rel := rels[name]
		path := prefix + name
		fail := func(format string, args ...any) error {
			return fmt.Errorf("Policy.Relations[%q]: %w", path, fmt.Errorf(format, args...))
		}
		if !validPath(name) || strings.ContainsAny(name, ".[],") || strings.HasPrefix(name, "-") || name == "_id" {
			return nil, fail("invalid relation name")
		}
		for _, h := range qp.hidden {
			if name == h || isAncestor(name, h) {
				return nil, fail("the name would be embedded over hidden field %q", h)
			}
		}
		if rel.Coll == nil {
			return nil, fail("Coll is nil")
		}
		if err := qp.checkVisible("Relations", rel.Local); err != nil {
			return nil, fail("Local: %w", err)
		}
		foreign := rel.Foreign
		if foreign == "" {
			foreign = "_id"
		}
		// The related policy is compiled without its relations, which are
		// compiled here, one level down, so that a cycle of policies ends.
		target := rel.Policy
		target.Relations = nil
		tqp, err := newQueryParser(target, qp.version)
		if err != nil {
			return nil, fail("Policy: %w", err)
		}
		if err := tqp.checkVisible("Relations", foreign); err != nil {
			return nil, fail("Foreign: %w", err)
		}
		for _, f := range rel.Fields {
			if !tqp.project[f] {
				return nil, fail("Fields: %q is not in the related policy's Project list", f)
			}
		}
		c := &relation{
			path: path, name: name, localPath: rel.Local,
			local: strings.Split(rel.Local, "."), foreign: strings.Split(foreign, "."),
			coll: rel.Coll, baseFilter: rel.BaseFilter, exclusion: tqp.exclusion, target: tqp,
		}
		if rel.Fields != nil {
			c.fields = append([]string{"_id", foreign}, rel.Fields...)
		}
		if depth < MaxEmbedDepth {
			if c.children, err = tqp.compileRelations(rel.Policy.Relations, path+".", depth+1); err != nil {
				return nil, err
			}
		}
		out[name] = c
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// relationPaths lists the embeddable paths, for error details.
func relationPaths(rels map[string]*relation) []string {
	var out []string
	for _, name := range sortedKeys(rels) {
		out = append(out, rels[name].path)
		out = append(out, relationPaths(rels[name].children)...)
	}
	return out
}

// parseEmbed parses the value of ?embed=: relation paths separated by
// commas. Without relations the parameter is unknown, as any other.
func (qp *QueryParser) parseEmbed(val string, accepted string) ([]string, error) {
	if qp.relations == nil {
		return nil, ErrUnknownParameter.Detailf("unknown parameter %s; accepted: %s", clip("embed"), accepted)
	}
	var paths []string
	for _, path := range strings.Split(val, ",") {
		if path == "" {
			return nil, ErrInvalidParameter.Detailf("embed %s has an empty relation; use embed=author", clip(val))
		}
		if qp.relation(path) == nil {
			return nil, ErrUnknownParameter.Detailf("unknown relation %s; embeddable: %s", clip(path), nameList(relationPaths(qp.relations)))
		}
		if slices.Contains(paths, path) {
			return nil, ErrInvalidParameter.Detailf("embed names relation %s twice", clip(path))
		}
		paths = append(paths, path)
	}
	return paths, nil
}

// relation finds a relation by its dotted path; nil when there is none.
func (qp *QueryParser) relation(path string) *relation {
	rels := qp.relations
	var rel *relation
	for name := range strings.SplitSeq(path, ".") {
		if rel = rels[name]; rel == nil {
			return nil
		}
		rels = rel.children
	}
	return rel
}

// withLocals adds to an inclusion projection the Local fields of the
// relations to embed, as the sort fields are added for paging: the related
// documents are found through them. An exclusion projection keeps them.
func (qp *QueryParser) withLocals(projection bson.D, embed []string) bson.D {
	if len(embed) == 0 || !isInclusion(projection) {
		return projection
	}
	for _, path := range embed {
		name, _, _ := strings.Cut(path, ".")
		projection = includePath(projection, qp.relations[name].localPath)
	}
	return projection
}

func isInclusion(projection bson.D) bool {
	for _, e := range projection {
		if e.Key != "_id" {
			return e.Value == int32(1)
		}
	}
	return false
}

// includePath adds path to an inclusion projection unless it is already
// covered; fields under it are replaced by it, since MongoDB refuses
// overlapping paths in one projection.
func includePath(projection bson.D, path string) bson.D {
	for _, e := range projection {
		if e.Key == path || isAncestor(e.Key, path) {
			return projection
		}
	}
	projection = slices.DeleteFunc(projection, func(e bson.E) bool { return isAncestor(path, e.Key) })
	return append(projection, bson.E{Key: path, Value: int32(1)})
}

// parseOne parses the query string of a single-document request: ?fields=,
// ?embed= where the policy has relations, and the extra parameters.
func (qp *QueryParser) parseOne(rawQuery string) (projection bson.D, embed []string, err error) {
	fields, has := "", false
	err = qp.scan(rawQuery, func(key, val string) error {
		if key != "fields" && key != "embed" && !qp.extras[key] {
			return ErrUnknownParameter.Detailf("unknown parameter %s; accepted: %s", clip(key), qp.acceptedOne)
		}
		if err := checkText(key, val); err != nil {
			return err
		}
		switch key {
		case "fields":
			fields, has = val, true
		case "embed":
			var err error
			embed, err = qp.parseEmbed(val, qp.acceptedOne)
			return err
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if projection, err = qp.projection(fields, has, nil); err != nil {
		return nil, nil, err
	}
	return qp.withLocals(projection, embed), embed, nil
}

// embedding holds the related documents of a page, read with one query per
// relation, and adds them to the page's documents.
type embedding struct {
	levels  []*embedLevel // the top-level relations asked for, in order
	scratch []byte        // the last document apply returned
	key     []byte
}

// embedLevel is one relation asked for and its related documents, by key:
// the BSON type byte followed by the value's bytes. The related documents
// already hold the nested relations asked for.
type embedLevel struct {
	rel      *relation
	children []*embedLevel
	targets  map[string]bson.Raw
}

// embedPage reads the related documents of the first n documents of page
// for the relations asked for; nil when none are.
func (b *handlerBase[T]) embedPage(ctx context.Context, r *http.Request, paths []string, page *pageBuffer, n int) (*embedding, error) {
	if len(paths) == 0 || r.Method == http.MethodHead {
		return nil, nil
	}
	docs := make([]bson.Raw, n)
	for i := range docs {
		docs[i] = page.doc(i)
	}
	return b.embedDocs(ctx, r, paths, docs)
}

// embedDocs reads the related documents of docs for the relations named
// by paths. A nested path ("author.team") brings its parent along.
func (b *handlerBase[T]) embedDocs(ctx context.Context, r *http.Request, paths []string, docs []bson.Raw) (*embedding, error) {
	if len(paths) == 0 {
		return nil, nil
	}
	// The tree of levels asked for, in the order first named.
	e := &embedding{}
	for _, path := range paths {
		levels, rels := &e.levels, b.parser.relations
		for name := range strings.SplitSeq(path, ".") {
			rel := rels[name]
			i := slices.IndexFunc(*levels, func(l *embedLevel) bool { return l.rel == rel })
			if i < 0 {
				*levels = append(*levels, &embedLevel{rel: rel})
				i = len(*levels) - 1
			}
			levels, rels = &(*levels)[i].children, rel.children
		}
	}
	budget := MaxEmbedBytes
	for _, l := range e.levels {
		if err := b.fetch(ctx, r, l, docs, &budget); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// fetch reads the related documents of docs for level l, with one find,
// and then those of its nested levels, one find each for all of them.
func (b *handlerBase[T]) fetch(ctx context.Context, r *http.Request, l *embedLevel, docs []bson.Raw, budget *int) error {
	rel := l.rel
	l.targets = map[string]bson.Raw{}
	keys := bson.A{}
	seen := map[string]bool{}
	var kb []byte
	add := func(v bson.RawValue) {
		switch v.Type {
		case bson.TypeNull, bson.TypeUndefined, bson.TypeEmbeddedDocument, bson.TypeArray:
			return // matches nothing a key can
		}
		kb = appendKey(kb[:0], v)
		if !seen[string(kb)] {
			seen[string(kb)] = true
			keys = append(keys, v)
		}
	}
	for _, doc := range docs {
		v, err := doc.LookupErr(rel.local...)
		if err != nil {
			continue
		}
		if arr, ok := v.ArrayOK(); ok {
			values, _ := arr.Values()
			for _, ev := range values {
				add(ev)
			}
			continue
		}
		add(v)
	}
	if len(keys) == 0 {
		return nil // nothing to read: no query at all
	}

	filter := bson.D{{Key: strings.Join(rel.foreign, "."), Value: bson.D{{Key: "$in", Value: keys}}}}
	if rel.baseFilter != nil {
		base, err := rel.baseFilter(r)
		if err != nil {
			return err
		}
		filter = and(base, filter)
	}
	cmd := bson.D{{Key: "find", Value: rel.coll.Name()}, {Key: "filter", Value: filter}}
	if projection := rel.projection(l.children); len(projection) > 0 {
		cmd = append(cmd, bson.E{Key: "projection", Value: projection})
	}
	if len(rel.foreign) != 1 || rel.foreign[0] != "_id" {
		cmd = append(cmd, bson.E{Key: "sort", Value: bson.D{{Key: "_id", Value: int32(1)}}})
	}
	// One more than the keys: with unique keys the first batch holds the
	// whole result and the server closes the cursor at once.
	cmd = append(cmd, bson.E{Key: "batchSize", Value: int32(min(len(keys)+1, 1<<20))})
	if b.readConcern != nil {
		cmd = append(cmd, bson.E{Key: "readConcern", Value: bson.D{{Key: "level", Value: b.readConcern.Level}}})
	}
	cmd = withComment(cmd, b.commentFor(r))
	b.obs(r).issue()
	var cur *mongo.Cursor
	err := retryRead(ctx, func() (err error) {
		cur, err = rel.coll.Database().RunCommandCursor(ctx, cmd, b.runOpts)
		return err
	})
	if err != nil {
		return err
	}
	defer closeInBackground(r.Context(), cur)
	var found []bson.Raw
	for cur.Next(ctx) {
		v, err := cur.Current.LookupErr(rel.foreign...)
		if err != nil {
			continue
		}
		kb = appendKey(kb[:0], v)
		if _, dup := l.targets[string(kb)]; dup {
			continue // a later document with the same key: the first wins
		}
		if *budget -= len(cur.Current); *budget < 0 {
			return ErrLimitExceeded.Detailf("the related documents of this answer exceed %d MiB; ask for fewer documents", MaxEmbedBytes>>20)
		}
		doc := slices.Clone(cur.Current)
		l.targets[string(kb)] = doc
		found = append(found, doc)
	}
	if err := cur.Err(); err != nil {
		return err
	}
	if len(l.children) == 0 || len(found) == 0 {
		return nil
	}
	for _, c := range l.children {
		if err := b.fetch(ctx, r, c, found, budget); err != nil {
			return err
		}
	}
	for k, doc := range l.targets {
		l.targets[k] = appendLevels(nil, doc, doc, l.children, &kb)
	}
	return nil
}

// projection is the projection of a relation's query: its fields, or the
// exclusion of the related policy's hidden fields, with the Local fields of
// the nested relations asked for.
func (rel *relation) projection(children []*embedLevel) bson.D {
	if rel.fields == nil {
		return rel.exclusion
	}
	var d bson.D
	for _, f := range rel.fields {
		d = includePath(d, f)
	}
	for _, c := range children {
		d = includePath(d, c.rel.localPath)
	}
	return d
}

// appendKey appends the key a value is matched by: its type and bytes.
func appendKey(dst []byte, v bson.RawValue) []byte {
	return append(append(dst, byte(v.Type)), v.Value...)
}

// apply returns doc, the document about to be encoded, with the related
// documents added; raw is the document as read, whose Local fields give
// the keys (doc may be a decoded and transformed copy). The result is
// valid until the next call.
func (e *embedding) apply(doc, raw bson.Raw) bson.Raw {
	e.scratch = appendLevels(e.scratch[:0], doc, raw, e.levels, &e.key)
	return e.scratch
}

// appendLevels appends to dst a copy of doc with, for each level, the
// related document (or array of them) of raw under the relation's name;
// a field of doc with that name is replaced.
func appendLevels(dst []byte, doc, raw bson.Raw, levels []*embedLevel, kb *[]byte) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	replaced := false
	for _, l := range levels {
		if _, err := doc.LookupErr(l.rel.name); err == nil {
			replaced = true
		}
	}
	if replaced {
		elems, _ := doc.Elements()
		for _, el := range elems {
			if !slices.ContainsFunc(levels, func(l *embedLevel) bool { return l.rel.name == el.Key() }) {
				dst = append(dst, el...)
			}
		}
	} else if len(doc) >= 5 {
		dst = append(dst, doc[4:len(doc)-1]...)
	}
	for _, l := range levels {
		dst = l.appendValue(dst, raw, kb)
	}
	dst = append(dst, 0)
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(dst)-start))
	return dst
}

// appendValue appends the element of l for the document raw: the related
// document, null, or for an array of keys the array of related documents
// (null where one is missing), in the keys' order.
func (l *embedLevel) appendValue(dst []byte, raw bson.Raw, kb *[]byte) []byte {
	v, err := raw.LookupErr(l.rel.local...)
	if err != nil {
		return appendElementHeader(dst, bson.TypeNull, l.rel.name)
	}
	arr, ok := v.ArrayOK()
	if !ok {
		return l.appendTarget(dst, l.rel.name, v, kb)
	}
	dst = appendElementHeader(dst, bson.TypeArray, l.rel.name)
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	values, _ := arr.Values()
	var index []byte
	for i, ev := range values {
		index = strconv.AppendInt(index[:0], int64(i), 10)
		dst = l.appendTarget(dst, string(index), ev, kb)
	}
	dst = append(dst, 0)
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(dst)-start))
	return dst
}

// appendTarget appends the related document of key v under name, or null.
func (l *embedLevel) appendTarget(dst []byte, name string, v bson.RawValue, kb *[]byte) []byte {
	*kb = appendKey((*kb)[:0], v)
	target, ok := l.targets[string(*kb)]
	if !ok {
		return appendElementHeader(dst, bson.TypeNull, name)
	}
	return append(appendElementHeader(dst, bson.TypeEmbeddedDocument, name), target...)
}

func appendElementHeader(dst []byte, t bson.Type, name string) []byte {
	dst = append(dst, byte(t))
	dst = append(dst, name...)
	return append(dst, 0)
}
