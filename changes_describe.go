package mongohttp

import (
	"net/http"
)

// describe makes a Feed describe itself to an API.
func (f *Feed) describe(c *apiComponents, policy string) (*apiOperation, error) {
	return f.h.(describer).describe(c, policy)
}

// describeChanges describes the handler Changes makes.
func (r *Resource[T]) describeChanges(c *apiComponents, policy string) (*apiOperation, error) {
	qp, err := r.parserFor(policy)
	if err != nil {
		return nil, err
	}
	doc := r.documentSchema(c, qp)
	token := &jsonSchema{Type: "string", Pattern: "^[A-Za-z0-9_-]+$", MinLength: pointerTo(1), MaxLength: pointerTo(MaxCursorLength)}
	idOnly := &jsonSchema{Type: "object", Properties: map[string]*jsonSchema{"_id": queryValueSchema(c, qp.filter["_id"])},
		Required: []string{"_id"}, AdditionalProperties: false}
	event := &jsonSchema{Type: "object", Required: []string{"event", "data"}, AdditionalProperties: false,
		Properties: map[string]*jsonSchema{
			"event": {Type: "string", Enum: []any{"change", "remove"}},
			"data":  {Description: "change: the document as the handler of one document serves it; remove: its _id alone.", AnyOf: []*jsonSchema{doc, idOnly}},
		}}
	pullJSON := &jsonSchema{Type: "object", Required: []string{"changes", "next"}, AdditionalProperties: false,
		Properties: map[string]*jsonSchema{
			"changes": {Type: "array", Items: event},
			"next":    token,
		}}
	ndjsonLine := &jsonSchema{AnyOf: []*jsonSchema{event, {Type: "object", Required: []string{"next"}, AdditionalProperties: false,
		Properties: map[string]*jsonSchema{"next": token}}}}
	query := qp.filterParams(c, pascalName(r.coll.Name()))
	if p, ok := qp.fieldsParam(); ok {
		query = append(query, p)
	}
	query = append(query, apiParam{name: "since", schema: token,
		description: "Where to start: 0 for every current document, then the changes; a resume token (an event's id, or next of the pull form) for the changes after it. Without it, the stream starts now and the pull form answers no change."})
	query = append(query, qp.extraParams()...)
	ok := apiResponse{status: http.StatusOK, headers: r.successHeaders(),
		description: "With Accept: " + EventStream + ", Server-Sent Events: \"change\" (data: the document) and \"remove\" (data: {\"_id\": …}, for a document deleted or no longer matching the scope and filter), each with an id that resumes after it, and heartbeats. " +
			"Otherwise the pull form: the changes since since=, and the token to continue from, last. Delivery is at least once: a client applying the events in order converges on the database.",
		contents: []apiContent{
			{mediaType: EventStream, schema: &jsonSchema{Type: "string", Description: "event: change|remove, id: a resume token, data: one line of JSON (see the pull form's data)."}},
			{mediaType: "application/json", schema: pullJSON},
			{mediaType: NDJSON, schema: ndjsonLine},
		}}
	rs := []apiResponse{ok,
		{status: http.StatusBadRequest, problems: append(qp.parseErrors(), ErrInvalidResumeToken),
			description: "The query is not one the policy allows, or the resume token is damaged or was made for another collection, scope, filter or fields."},
		{status: http.StatusGone, problems: []*Error{ErrResumeExpired},
			description: "The resume token is older than the feed's history: start again with since=0."},
	}
	return &apiOperation{
		methods:     []string{http.MethodGet},
		summary:     "Follow the changes of " + r.coll.Name(),
		tags:        []string{r.coll.Name()},
		description: "The collection's change feed, filtered like the list. Parameters not listed here are refused.",
		query:       query,
		strictQuery: true,
		headers: []apiParam{{name: "Last-Event-ID", schema: token,
			description: "The id of the last event received, which EventSource sends when it reconnects; it takes the place of since."}},
		responses: append(rs, serverErrorAnswers()...),
	}, nil
}
