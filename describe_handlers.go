package mongohttp

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// parserFor returns the query parser of the named policy.
func (r *Resource[T]) parserFor(policy string) (*QueryParser, error) {
	b, ok := r.bases[policy]
	if !ok {
		return nil, fmt.Errorf("mongohttp: collection %s has no policy named %q", r.coll.Name(), policy)
	}
	return b.parser, nil
}

// describeFind describes the handler Find makes.
func (r *Resource[T]) describeFind(c *apiComponents, policy string) (*apiOperation, error) {
	qp, err := r.parserFor(policy)
	if err != nil {
		return nil, err
	}
	doc := r.documentSchema(c, qp)
	ok := apiResponse{status: http.StatusOK, headers: r.successHeaders(),
		description: "A page of documents, in the order of sort. A JSON array, or one document per line (NDJSON) when the Accept header asks for " + NDJSON + ".",
		contents: []apiContent{
			{mediaType: "application/json", schema: &jsonSchema{Type: "array", Items: doc}},
			{mediaType: NDJSON, schema: doc},
		}}
	ok.headers = append(ok.headers,
		apiHeader{name: "Link", description: "The next page, when there is one: a relative URL carrying its after token.",
			schema: &jsonSchema{Type: "string", Pattern: `^<[^>]*>; rel="next"$`}},
		apiHeader{name: "X-Total-Count", description: "With ?count=: the documents matching the filter (exact) or in the collection (estimated).",
			schema: &jsonSchema{Type: "integer", Minimum: "0"}},
	)
	rs := []apiResponse{ok, {status: http.StatusBadRequest, problems: qp.parseErrors(),
		description: "The query is not one the policy allows. " + qp.runtimeChecks()}}
	return &apiOperation{
		methods:     []string{http.MethodGet, http.MethodHead},
		summary:     "List " + r.coll.Name(),
		tags:        []string{r.coll.Name()},
		description: listDescription(qp),
		query:       qp.listParams(c, pascalName(r.coll.Name())),
		strictQuery: true,
		responses:   append(rs, serverErrorAnswers()...),
	}, nil
}

// describeFindOne describes the handler FindOne makes.
func (r *Resource[T]) describeFindOne(c *apiComponents, policy string) (*apiOperation, error) {
	qp, err := r.parserFor(policy)
	if err != nil {
		return nil, err
	}
	doc := r.documentSchema(c, qp)
	etag := apiHeader{name: "ETag", required: true, description: "A strong validator of the answer; send it back in If-None-Match.",
		schema: &jsonSchema{Type: "string", Pattern: `^"[A-Za-z0-9_.-]+"$`}}
	idType := qp.filter["_id"]
	idSchema := pathIDSchema(c, idType)
	var query []apiParam
	if p, ok := qp.fieldsParam(); ok {
		query = append(query, p)
	}
	if p, ok := qp.embedParam(); ok {
		query = append(query, p)
	}
	rs := []apiResponse{
		{status: http.StatusOK, description: "The document.", headers: append(r.successHeaders(), etag),
			contents: []apiContent{{mediaType: "application/json", schema: doc}}},
		{status: http.StatusNotModified, description: "The document has not changed since the ETag given in If-None-Match.", headers: []apiHeader{etag}},
		{status: http.StatusBadRequest, problems: qp.projectionErrors(),
			description: fmt.Sprintf("The id or the query is not valid. Besides the schemas: the query string is at most %d bytes (limit_exceeded), "+
				"a parameter appears at most once, and fields names no field together with a field inside it (invalid_parameter).", qp.maxQuery)},
		{status: http.StatusNotFound, description: "No document has this id (or the declaration's base filter excludes it).", problems: []*Error{ErrNotFound}},
	}
	return &apiOperation{
		methods:     []string{http.MethodGet, http.MethodHead},
		summary:     "Get one document of " + r.coll.Name(),
		description: "Parameters not listed here are refused.",
		tags:        []string{r.coll.Name()},
		id: &apiParam{name: "id", required: true, schema: idSchema,
			description: fmt.Sprintf("The document's _id (%s).", idType)},
		query:       append(query, qp.extraParams()...),
		strictQuery: true,
		headers:     []apiParam{{name: "If-None-Match", schema: &jsonSchema{Type: "string"}, description: "ETags of copies the client holds; a match gets 304."}},
		responses:   append(rs, serverErrorAnswers()...),
	}, nil
}

// describeAggregate describes the handler Aggregate makes.
func (r *Resource[T]) describeAggregate(c *apiComponents, plan *aggPlan) (*apiOperation, error) {
	qp := plan.parser
	query := qp.filterParams(c, pascalName(r.coll.Name()))
	for _, name := range sortedKeys(plan.params) {
		query = append(query, plan.params[name].describe(c))
	}
	query = append(query, qp.extraParams()...)
	result := &jsonSchema{Type: "object", Description: "A result of the aggregation, as its pipeline makes it."}
	ok := apiResponse{status: http.StatusOK, headers: r.successHeaders()}
	if plan.reduce != nil {
		ok.description = "The aggregation's answer: one JSON object."
		ok.contents = []apiContent{{mediaType: mediaJSON, schema: &jsonSchema{Type: "object"}}}
	} else {
		ok.description = fmt.Sprintf("The aggregation's results, at most %d: a JSON array, or one result per line (NDJSON) when the Accept header asks for %s.", plan.maxResults, NDJSON)
		ok.contents = []apiContent{{mediaType: mediaJSON, schema: &jsonSchema{Type: "array", Items: result}}, {mediaType: NDJSON, schema: result}}
	}
	bad := slices.DeleteFunc(qp.parseErrors(), func(e *Error) bool { return e == ErrInvalidCursor })
	rs := []apiResponse{ok, {status: http.StatusBadRequest, problems: bad,
		description: fmt.Sprintf("The query is not one the policy allows, a parameter's value is not valid, or the aggregation has more than %d results (limit_exceeded). %s", plan.maxResults, qp.runtimeChecks())}}
	return &apiOperation{
		methods:     []string{http.MethodGet, http.MethodHead},
		summary:     "Aggregate " + r.coll.Name(),
		tags:        []string{r.coll.Name()},
		description: "Filterable: " + fieldTypeList(qp) + ". Parameters not listed here are refused.",
		query:       query,
		strictQuery: true,
		responses:   append(rs, serverErrorAnswers()...),
	}, nil
}

// describe describes an aggregation's parameter as its value method
// checks it.
func (p *param) describe(c *apiComponents) apiParam {
	ap := apiParam{name: p.name, required: !p.hasDefault}
	switch {
	case p.choices != nil:
		names := sortedKeys(p.choices)
		enum := make([]any, len(names))
		for i, n := range names {
			enum[i] = n
		}
		ap.schema = &jsonSchema{Type: "string", Enum: enum}
		ap.description = "One of the listed values."
	case p.typ == String:
		ap.schema = &jsonSchema{Type: "string", MaxLength: pointerTo(p.maxLength), Pattern: `^(?:[^$\x00][^\x00]*)?$`}
		ap.emptyValue = true
		ap.description = "A string that does not start with \"$\"."
	default:
		ap.schema = queryValueSchema(c, p.typ)
		ap.description = "A value of type " + p.typ.String() + "."
		if p.min != nil || p.max != nil {
			ap.description += " Bounds: " + p.bounds() + "."
			if s := copySchema(c.resolve(ap.schema)); p.typ == Int || p.typ == Float {
				if p.min != nil {
					s.Minimum = json.Number(fmt.Sprint(p.min))
				}
				if p.max != nil {
					s.Maximum = json.Number(fmt.Sprint(p.max))
				}
				ap.schema = s
			}
		}
	}
	if p.hasDefault {
		ap.description += " Has a default."
	}
	return ap
}

// successHeaders are the caching headers of a successful answer.
func (r *Resource[T]) successHeaders() []apiHeader {
	if r.decl.CacheControl == "" {
		return nil
	}
	return []apiHeader{{name: "Cache-Control", required: true, schema: &jsonSchema{Type: "string", Const: r.decl.CacheControl}}}
}

// listDescription says in words what a list accepts.
func listDescription(qp *QueryParser) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Filterable: %s. Sortable: %s.", fieldTypeList(qp), strings.Join(qp.sortNames, ", "))
	if qp.project != nil {
		fmt.Fprintf(&b, " Projectable: %s.", strings.Join(qp.projectNames, ", "))
	}
	fmt.Fprintf(&b, " Operators: %s.", qp.ops)
	fmt.Fprintf(&b, " Pages hold %d documents by default, %d at most; follow the Link header for the next one.", qp.defaultLimit, qp.maxLimit)
	b.WriteString(" Parameters not listed here are refused.")
	return b.String()
}

func fieldTypeList(qp *QueryParser) string {
	parts := make([]string, len(qp.filterNames))
	for i, n := range qp.filterNames {
		parts[i] = fmt.Sprintf("%s (%s)", n, qp.filter[n])
	}
	return strings.Join(parts, ", ")
}

func (h *HealthHandler) describe(c *apiComponents, _ string) (*apiOperation, error) {
	ok := c.add("Health", &jsonSchema{Type: "object", Required: []string{"status"}, AdditionalProperties: false,
		Properties: map[string]*jsonSchema{"status": {Type: "string", Const: "ok"}}})
	return &apiOperation{
		methods: []string{http.MethodGet, http.MethodHead},
		summary: "Check that the database answers",
		responses: []apiResponse{
			{status: http.StatusOK, description: "The database answered a ping.", contents: []apiContent{{mediaType: "application/json", schema: ok}}},
			{status: http.StatusServiceUnavailable, description: "The database did not answer a ping in time.",
				problems: []*Error{ErrUnavailable}, headers: []apiHeader{retryAfterHeader()}},
		},
	}, nil
}

func (h *StatsHandler) describe(c *apiComponents, _ string) (*apiOperation, error) {
	count := &jsonSchema{Type: "integer", Minimum: "0"}
	millis := &jsonSchema{Type: "number", Minimum: "0"}
	props := func(s *jsonSchema, names ...string) map[string]*jsonSchema {
		m := map[string]*jsonSchema{}
		for _, n := range names {
			m[n] = s
		}
		return m
	}
	current := &jsonSchema{Type: "object", AdditionalProperties: false, Required: []string{"open", "in_use", "idle", "waiting"},
		Properties: props(count, "open", "in_use", "idle", "waiting")}
	cumulative := &jsonSchema{Type: "object", AdditionalProperties: false,
		Required:   []string{"checkouts", "checkout_failures", "checkout_wait_total_ms", "checkout_wait_max_ms", "connections_created", "connections_closed", "clears"},
		Properties: props(count, "checkouts", "connections_created", "connections_closed", "clears")}
	cumulative.Properties["checkout_wait_total_ms"] = millis
	cumulative.Properties["checkout_wait_max_ms"] = millis
	cumulative.Properties["checkout_failures"] = &jsonSchema{Type: "object", AdditionalProperties: count,
		Description: "Failed checkouts by the driver's reason (timeout, connectionError, poolClosed)."}
	stats := c.add("PoolStats", &jsonSchema{Type: "object", AdditionalProperties: false, Required: []string{"current", "cumulative"},
		Properties: map[string]*jsonSchema{"current": current, "cumulative": cumulative}})
	return &apiOperation{
		methods: []string{http.MethodGet, http.MethodHead},
		summary: "Connection pool statistics",
		responses: []apiResponse{
			{status: http.StatusOK, description: "A snapshot of the client's connection pools.", contents: []apiContent{{mediaType: "application/json", schema: stats}}},
			{status: http.StatusServiceUnavailable, description: "No database client is configured.",
				problems: []*Error{ErrUnavailable}, headers: []apiHeader{retryAfterHeader()}},
		},
	}, nil
}
