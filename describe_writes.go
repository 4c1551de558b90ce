package mongohttp

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
)

// This file describes the write handlers (Insert, BulkInsert, Replace, Patch, Delete)
// for the API document: their request bodies as the body decoder reads
// them (body.go), the preconditions and other headers they read, and every
// answer they give.

// describeWrite returns the description of the write handler of kind
// (as Resource.writeHandler names it), which answers method.
func (r *Resource[T]) describeWrite(kind, method string) func(c *apiComponents, policy string) (*apiOperation, error) {
	return func(c *apiComponents, policy string) (*apiOperation, error) {
		qp, err := r.parserFor(policy)
		if err != nil {
			return nil, err
		}
		name := r.coll.Name()
		base := pascalName(name)
		doc := r.documentSchema(c, qp)
		etag := apiHeader{name: "ETag", required: true, description: "A strong validator of the stored document; send it back in If-Match.",
			schema: &jsonSchema{Type: "string", Pattern: `^"[A-Za-z0-9_.-]+"$`}}
		noStore := apiHeader{name: "Cache-Control", required: true, schema: &jsonSchema{Type: "string", Const: "no-store"}}
		applied := apiHeader{name: "Preference-Applied", required: true, schema: &jsonSchema{Type: "string", Const: "return=minimal"}}
		stored := func(status int, what string, location bool) []apiResponse {
			hs := []apiHeader{etag, noStore}
			if location {
				hs = append(hs, apiHeader{name: "Location", required: true, schema: &jsonSchema{Type: "string"},
					description: "The new document's URL."})
			}
			return []apiResponse{{status: status, description: what + " The body is the stored document, as the handlers of one document serve it.",
				headers: hs, contents: []apiContent{{mediaType: mediaJSON, schema: doc}}}}
		}
		minimal := func(hs ...apiHeader) apiResponse {
			return apiResponse{status: http.StatusNoContent, headers: append([]apiHeader{etag, noStore, applied}, hs...),
				description: "Stored, answered without a body as Prefer: return=minimal asked."}
		}
		op := &apiOperation{methods: []string{method}, tags: []string{name}}
		idErr := ErrInvalidParameter
		if qp.filter["_id"] == ObjectID {
			idErr = ErrInvalidObjectID
		}
		if method != http.MethodPost {
			op.id = &apiParam{name: "id", required: true, schema: pathIDSchema(c, qp.filter["_id"]),
				description: fmt.Sprintf("The document's _id (%s).", qp.filter["_id"])}
		}
		ifMatch := apiParam{name: "If-Match", schema: &jsonSchema{Type: "string"},
			description: "ETags of the versions the write may replace, compared whole and strongly (\"*\": any existing document). " +
				"A document whose ETag is not listed, a missing document, or a list naming no strong tag (empty, weak tags only) gets 412; a malformed list 400."}
		if r.writes.requireMatch {
			ifMatch.description += " Required on this resource (else 428), unless If-None-Match: * asks to create."
		}
		refuseNoneMatch := apiParam{name: "If-None-Match", schema: &jsonSchema{Type: "string", MaxLength: pointerTo(0)},
			description: "Not taken by this method: any value but an empty list is refused (400 invalid_parameter)."}
		prefer := apiParam{name: "Prefer", schema: &jsonSchema{Type: "string"},
			description: "return=minimal answers 204 without the stored document."}
		bodyTooLarge := apiResponse{status: http.StatusRequestEntityTooLarge, problems: []*Error{ErrBodyTooLarge},
			description: fmt.Sprintf("The body is larger than %d bytes.", r.writes.maxBody)}
		bodyTimeout := apiResponse{status: http.StatusRequestTimeout, problems: []*Error{ErrBodyTimeout},
			description: "The body stopped arriving before its end."}
		if r.writes.bodyIdle > 0 {
			bodyTimeout.description = fmt.Sprintf("No bytes of the body arrived for %s.", r.writes.bodyIdle)
		}
		invalid := apiResponse{status: http.StatusUnprocessableEntity, problems: []*Error{ErrValidation},
			description: "The body breaks the write policy (a field that may not be written, a value of the wrong type), its constraints (a required field, a length, a range, a pattern) or the service's validation; " +
				"the problem's errors member lists each field by JSON pointer with its code (not_writable, invalid_type, invalid_value, invalid_object_id, required, min_length, max_length, minimum, maximum, pattern, enum, conflicts_with_scope, or the service's own)."}
		var rs []apiResponse
		switch {
		case kind == "bulkInsert":
			op.summary = "Insert many into " + name
			op.description = "An " + NDJSON + " stream, one document per line (blank lines skipped), each checked as a single insert's body, " +
				"inserted in order in batches until the first line that fails: the lines before it are stored, none after it. " +
				"Only the writable fields may be sent; the ids are made by the server."
			op.bodies = []apiContent{{mediaType: NDJSON, schema: r.writeBody(c, qp, base, false)}}
			op.headers = []apiParam{{name: "Idempotency-Key", schema: &jsonSchema{Type: "string", MaxLength: pointerTo(0)},
				description: "Not taken: a bulk insert reports how far it got instead (any value is 400 invalid_parameter)."}}
			lineOf := " The problem's line member gives the failing line (from 1) and inserted the documents stored before it."
			rs = []apiResponse{
				{status: http.StatusOK, description: "Every line was stored.", headers: []apiHeader{noStore},
					contents: []apiContent{{mediaType: mediaJSON, schema: c.add("BulkInserted", &jsonSchema{Type: "object", Required: []string{"inserted"},
						AdditionalProperties: false, Properties: map[string]*jsonSchema{"inserted": integerSchema(0, math.MaxInt64)}})}}},
				{status: http.StatusBadRequest, problems: []*Error{ErrInvalidBody, ErrInvalidParameter},
					description: "A line is not one JSON object, or a header is not valid." + lineOf},
				{status: http.StatusConflict, problems: []*Error{ErrConflict},
					description: "A line has the unique key of a stored document (errors names the unique index's fields, code duplicate)." + lineOf},
				bodyTimeout,
				{status: http.StatusRequestEntityTooLarge, problems: []*Error{ErrBodyTooLarge},
					description: fmt.Sprintf("A line is larger than %d bytes.", r.writes.maxBody) + lineOf},
				{status: http.StatusUnsupportedMediaType, problems: []*Error{ErrUnsupportedMediaType},
					description: "The body is not " + NDJSON + ", or declares a charset other than UTF-8.",
					headers:     []apiHeader{{name: "Accept-Post", required: true, schema: &jsonSchema{Type: "string", Const: NDJSON}}}},
				{status: invalid.status, problems: []*Error{ErrValidation}, description: invalid.description + lineOf},
			}
		case method == http.MethodPost:
			op.summary = "Insert into " + name
			op.description = "Only the writable fields may be sent; the id is made by the server."
			op.bodies = []apiContent{{mediaType: mediaJSON, schema: r.writeBody(c, qp, base, false)}}
			key := apiParam{name: "Idempotency-Key", schema: &jsonSchema{Type: "string", MaxLength: pointerTo(maxIdempotencyKey)},
				description: fmt.Sprintf("Makes the insert safe to retry: the same key with the same body gets the first answer again (kept %s).", r.idempotencyTTL())}
			if r.decl.Idempotency.Disabled {
				key.schema.MaxLength = pointerTo(0)
				key.description = "Not taken by this resource: any value is refused (400 invalid_parameter)."
			}
			op.headers = []apiParam{key, prefer}
			rs = stored(http.StatusCreated, "Inserted.", true)
			rs = append(rs, minimal(apiHeader{name: "Location", required: true, schema: &jsonSchema{Type: "string"}}),
				apiResponse{status: http.StatusBadRequest, problems: []*Error{ErrInvalidBody, ErrInvalidParameter},
					description: "The body is not one JSON object, or a header is not valid."},
				apiResponse{status: http.StatusConflict, problems: []*Error{ErrConflict, ErrIdempotencyPending},
					description: "A document with the same unique key exists (errors names the unique index's fields, code duplicate), or a request with this Idempotency-Key is still in progress."},
				bodyTimeout, bodyTooLarge,
				apiResponse{status: http.StatusUnsupportedMediaType, problems: []*Error{ErrUnsupportedMediaType},
					description: "The body is not " + mediaJSON + " (a stream goes to the bulk insert), or declares a charset other than UTF-8.",
					headers:     []apiHeader{{name: "Accept-Post", required: true, schema: &jsonSchema{Type: "string", Const: mediaJSON}}}},
				apiResponse{status: invalid.status, problems: []*Error{ErrValidation, ErrIdempotencyKeyReused},
					description: invalid.description + " idempotency_key_reused: the Idempotency-Key was used for another request."},
			)
		case method == http.MethodPut || method == http.MethodPatch:
			patch := method == http.MethodPatch
			media := mediaJSON
			op.summary, op.description = "Replace a document of "+name,
				"The writable fields are replaced by the body's (absent ones removed); the others are kept. A document that does not exist is created."
			noneMatch := apiParam{name: "If-None-Match", schema: &jsonSchema{Type: "string", Const: "*"},
				description: "*: create only; an existing document gets 412, and so does If-Match beside it. Any other value, even empty, gets 400."}
			if patch {
				media = mediaMergePatch
				op.summary, op.description = "Change a document of "+name,
					"A JSON merge patch (RFC 7396) of the writable fields: the fields it names change, null removes one, nothing else moves."
				noneMatch = refuseNoneMatch
			}
			op.bodies = []apiContent{{mediaType: media, schema: r.writeBody(c, qp, base, patch)}}
			op.headers = []apiParam{ifMatch, noneMatch, prefer}
			rs = stored(http.StatusOK, "Changed.", false)
			notFound := "No document has this id."
			if !patch {
				rs = append(rs, stored(http.StatusCreated, "Created.", false)...)
				notFound = "The id cannot be created in the request's scope."
			}
			unsupported := apiResponse{status: http.StatusUnsupportedMediaType, problems: []*Error{ErrUnsupportedMediaType},
				description: "The body is not " + media + ", or declares a charset other than UTF-8."}
			if patch {
				unsupported.headers = []apiHeader{{name: "Accept-Patch", required: true, schema: &jsonSchema{Type: "string", Const: mediaMergePatch}}}
			}
			rs = append(rs, minimal(),
				apiResponse{status: http.StatusBadRequest, problems: []*Error{idErr, ErrInvalidBody, ErrInvalidParameter},
					description: "The id or a header is not valid (a malformed If-Match, an If-None-Match other than *), or the body is not one JSON object."},
				apiResponse{status: http.StatusNotFound, problems: []*Error{ErrNotFound}, description: notFound},
				apiResponse{status: http.StatusConflict, problems: []*Error{ErrConflict},
					description: "A document with the same unique key exists (errors names the unique index's fields, code duplicate), or the document kept changing while it was written."},
				apiResponse{status: http.StatusPreconditionFailed, problems: []*Error{ErrPreconditionFailed},
					description: "If-Match does not name the document's current ETag (or names no strong tag), or there is no document and If-Match needs one; or If-None-Match: * found a document."},
				bodyTimeout, bodyTooLarge, unsupported, invalid,
			)
		case method == http.MethodDelete:
			op.summary, op.description = "Delete a document of "+name, ""
			op.headers = []apiParam{ifMatch, refuseNoneMatch}
			rs = []apiResponse{
				{status: http.StatusNoContent, description: "Deleted.", headers: []apiHeader{noStore}},
				{status: http.StatusBadRequest, problems: []*Error{idErr, ErrInvalidParameter}, description: "The id or a header is not valid (a malformed If-Match, an If-None-Match naming anything)."},
				{status: http.StatusNotFound, problems: []*Error{ErrNotFound}, description: "No document has this id (and the request has no If-Match)."},
				{status: http.StatusPreconditionFailed, problems: []*Error{ErrPreconditionFailed}, description: "If-Match does not name the document's current ETag (or names no strong tag), or there is no document."},
			}
		}
		if method != http.MethodPost && r.writes.requireMatch {
			rs = append(rs, apiResponse{status: http.StatusPreconditionRequired, problems: []*Error{ErrPreconditionRequired},
				description: "Writes to this resource need If-Match (or If-None-Match: * to create)."})
		}
		if method != http.MethodDelete {
			op.description = strings.TrimSpace(op.description + " Query parameters are ignored.")
		}
		op.responses = append(rs, serverErrorAnswers()...)
		return op, nil
	}
}

// idempotencyTTL says how long Idempotency-Key answers are kept.
func (r *Resource[T]) idempotencyTTL() string {
	ttl := r.decl.Idempotency.TTL
	if ttl <= 0 {
		ttl = DefaultIdempotencyTTL
	}
	s := ttl.String() // "24h0m0s" → "24h"
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// writeBody returns a reference to the schema of a write body under qp:
// the policy's writable fields, typed as the body decoder reads them, and
// no other; in a merge patch, each may be null.
func (r *Resource[T]) writeBody(c *apiComponents, qp *QueryParser, base string, patch bool) *jsonSchema {
	root := &jsonSchema{Type: "object", Properties: map[string]*jsonSchema{}, AdditionalProperties: false}
	objects := map[string]*jsonSchema{"": root}
	var object func(path string) *jsonSchema
	object = func(path string) *jsonSchema {
		if o, ok := objects[path]; ok {
			return o
		}
		parent, key := "", path
		if i := strings.LastIndexByte(path, '.'); i >= 0 {
			parent, key = path[:i], path[i+1:]
		}
		o := &jsonSchema{Type: "object", Properties: map[string]*jsonSchema{}, AdditionalProperties: false}
		objects[path] = o
		object(parent).Properties[key] = maybeNull(o, patch)
		return o
	}
	w := qp.write
	for _, path := range w.names {
		parent, key := "", path
		if i := strings.LastIndexByte(path, '.'); i >= 0 {
			parent, key = path[:i], path[i+1:]
		}
		s := writeValueSchema(c, w.leaves[path], w.intRange(path))
		if rule := w.rules[path]; rule != nil {
			s = rule.describe(s)
		}
		// A merge patch may not remove a required field.
		object(parent).Properties[key] = maybeNull(s, patch && !w.requiredUnder(path))
	}
	var required []string
	if !patch {
		for path, children := range w.required {
			o := object(path)
			for _, c := range children {
				o.Required = append(o.Required, c.key)
			}
			slices.Sort(o.Required)
		}
		for _, path := range w.names {
			if r := w.rules[path]; r != nil && r.Required {
				required = append(required, path)
			}
		}
	}
	name, what := base+"Write", "A document to insert or replace with: the writable fields."
	if patch {
		name, what = base+"Patch", "A JSON merge patch (RFC 7396) of the writable fields: null removes a field."
	}
	if len(w.names) == 0 {
		what += " The policy lets no field be written."
	} else {
		what += " Writable: " + strings.Join(w.names, ", ") + "."
	}
	if len(required) > 0 {
		what += " Required: " + strings.Join(required, ", ") + "."
	}
	if len(w.writeOnly) > 0 {
		what += " Write-only (never stored as sent, never answered): " + strings.Join(w.writeOnly, ", ") + "."
	}
	root.Description = what
	return c.add(name, root)
}

// describe adds the rule to s, the schema of its field's values (of each
// element, for an array field).
func (rule *fieldRule) describe(s *jsonSchema) *jsonSchema {
	s.WriteOnly = rule.WriteOnly
	target := s
	if s.Items != nil {
		target = s.Items
	}
	if rule.MinLength > 0 {
		target.MinLength = pointerTo(rule.MinLength)
	}
	if rule.MaxLength > 0 {
		target.MaxLength = pointerTo(rule.MaxLength)
	}
	for _, v := range rule.Enum {
		target.Enum = append(target.Enum, v)
	}
	if rule.Pattern != "" {
		// The string's own pattern (no NUL) stays: both must match.
		target.AllOf = append(target.AllOf, &jsonSchema{Pattern: rule.Pattern})
	}
	switch {
	case target.Type == "integer":
		// The field's own range (its Go type's, or the integers clients
		// read exactly) and the rule's: a value must be within both.
		lo, hi := rule.loInt, rule.hiInt
		if n, err := target.Minimum.Int64(); err == nil {
			lo = max(lo, n)
		}
		if n, err := target.Maximum.Int64(); err == nil {
			hi = min(hi, n)
		}
		target.Minimum, target.Maximum = jsonInt(lo), jsonInt(hi)
	case target.Type == "number":
		if rule.Minimum != nil {
			target.Minimum = json.Number(formatBound(rule.lo))
		}
		if rule.Maximum != nil {
			target.Maximum = json.Number(formatBound(rule.hi))
		}
	}
	return s
}

// maybeNull lets s be null in a merge patch.
func maybeNull(s *jsonSchema, patch bool) *jsonSchema {
	if !patch {
		return s
	}
	return nullableSchema(s)
}

// writeValueSchema is a writable value of type t as the body decoder
// reads it: ObjectIDs also as {"$oid": …}, dates as {"$date": …} with a
// string or milliseconds since 1970; arrays of scalars. ints is the range
// of an Int field.
func writeValueSchema(c *apiComponents, t Type, ints intRange) *jsonSchema {
	if e, isArray := t.elem(); isArray {
		return &jsonSchema{Type: "array", Items: writeValueSchema(c, e, ints)}
	}
	switch t {
	case String:
		return &jsonSchema{Type: "string", Pattern: "^[^\\x00]*$"}
	case Int:
		s := integerSchema(ints.lo, ints.hi)
		s.Format = ints.format
		return s
	case Date:
		return c.add("WritableDate", &jsonSchema{AnyOf: []*jsonSchema{
			queryValueSchema(c, Date),
			extJSONWrapper("$date", &jsonSchema{AnyOf: []*jsonSchema{queryValueSchema(c, Date), integerSchema(int64(minDate), int64(maxDate))}}),
		}, Description: "A date-time or a date, or {\"$date\": …} with one or with milliseconds since 1970."})
	case ObjectID:
		return c.add("WritableObjectId", &jsonSchema{AnyOf: []*jsonSchema{
			queryValueSchema(c, ObjectID), extJSONWrapper("$oid", queryValueSchema(c, ObjectID)),
		}, Description: "An ObjectID, or {\"$oid\": …}."})
	}
	return queryValueSchema(c, t) // Float, Bool
}

// describe describes the handlers of m, one operation per method; HEAD
// goes with GET unless m has a HEAD handler of its own.
func (m Methods) describeAll(c *apiComponents, policy string) ([]*apiOperation, error) {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	order := []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}
	slices.SortFunc(names, func(a, b string) int {
		ia, ib := slices.Index(order, a), slices.Index(order, b)
		if ia < 0 {
			ia = len(order)
		}
		if ib < 0 {
			ib = len(order)
		}
		if ia != ib {
			return ia - ib
		}
		return strings.Compare(a, b)
	})
	_, ownHead := m[http.MethodHead]
	var ops []*apiOperation
	for _, method := range names {
		keep := []string{method}
		if method == http.MethodGet && !ownHead {
			keep = append(keep, http.MethodHead)
		}
		d, ok := m[method].(describer)
		if !ok {
			ops = append(ops, &apiOperation{methods: keep, undescribed: true,
				responses: []apiResponse{{status: http.StatusOK, description: "OK."}}})
			continue
		}
		op, err := d.describe(c, policy)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", method, err)
		}
		op.methods = slices.DeleteFunc(op.methods, func(x string) bool { return !slices.Contains(keep, x) })
		if len(op.methods) == 0 {
			return nil, fmt.Errorf("the handler given for %s does not serve it", method)
		}
		ops = append(ops, op)
	}
	return ops, nil
}
