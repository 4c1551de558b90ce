package mongohttp

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// This file renders the operations the handlers describe (describe.go)
// into the OpenAPI document's objects: operations, their ids, parameters,
// answers, and the problem+json schema the error answers share.

// renderOperation renders op for method m, the i-th of its methods.
func renderOperation(c *apiComponents, op *apiOperation, rt apiRoute, m string, i int) oasOperation {
	o := oasOperation{
		OperationID: operationIDOf(rt, op, m, i),
		Summary:     op.summary,
		Description: op.description,
		Tags:        op.tags,
		Responses:   map[string]oasResponse{},
		StrictQuery: op.strictQuery,
	}
	head := m == http.MethodHead
	// Path parameters: the document's id at the wildcard named "id", else
	// the last one; the others typed by the Doc.
	idName := ""
	if op.id != nil {
		idName = rt.params[len(rt.params)-1]
		if slices.Contains(rt.params, "id") {
			idName = "id"
		}
	}
	for _, name := range rt.params {
		p := apiParam{name: name, required: true, schema: &jsonSchema{Type: "string"}}
		if name == idName {
			p = *op.id
			p.name = name
		} else if t, ok := op.doc.PathParams[name]; ok {
			p.schema = queryValueSchema(c, t)
		}
		o.Parameters = append(o.Parameters, renderParam(p, "path"))
	}
	for _, p := range op.query {
		o.Parameters = append(o.Parameters, renderParam(p, "query"))
	}
	for _, p := range op.headers {
		o.Parameters = append(o.Parameters, renderParam(p, "header"))
	}
	if len(op.bodies) > 0 && !head {
		o.RequestBody = &oasRequestBody{Required: true, Content: map[string]oasMediaType{}}
		for _, b := range op.bodies {
			o.RequestBody.Content[b.mediaType] = oasMediaType{Schema: b.schema}
		}
	}
	for _, r := range op.responses {
		o.Responses[strconv.Itoa(r.status)] = renderResponse(r, head)
	}
	return o
}

// operationIDOf is the Doc's, else the method and the path: "getUsersById".
// i counts the route's methods: all but its first get the method after a
// route's OperationID, unless Doc.Operations names theirs.
func operationIDOf(rt apiRoute, op *apiOperation, m string, i int) string {
	if id := op.doc.OperationID; id != "" {
		if op.doc.ownID {
			if m == op.methods[0] {
				return id
			}
			return id + pascalName(strings.ToLower(m))
		}
		if i == 0 {
			return id
		}
		return id + pascalName(strings.ToLower(m))
	}
	var b strings.Builder
	b.WriteString(strings.ToLower(m))
	for _, seg := range strings.Split(rt.path, "/") {
		if strings.HasPrefix(seg, "{") {
			b.WriteString("By")
		}
		b.WriteString(pascalName(seg))
	}
	return b.String()
}

func renderParam(p apiParam, in string) oasParameter {
	o := oasParameter{Name: p.name, In: in, Description: p.description, Required: p.required || in == "path",
		AllowEmpty: p.emptyValue && in == "query"}
	switch {
	case p.jsonContent:
		o.Content = map[string]oasMediaType{"application/json": {Schema: p.schema}}
	case p.commaList:
		o.Style, o.Explode, o.Schema = "form", pointerTo(false), p.schema
	default:
		o.Schema = p.schema
	}
	return o
}

// renderResponse renders r; for HEAD, without its bodies.
func renderResponse(r apiResponse, head bool) oasResponse {
	o := oasResponse{Description: r.description}
	if len(r.problems) > 0 {
		codes := make([]string, len(r.problems))
		for i, p := range r.problems {
			codes[i] = p.Code
		}
		o.Description = strings.TrimSpace(o.Description + " Problem codes: " + strings.Join(codes, ", ") + ".")
		if !head {
			o.Content = map[string]oasMediaType{"application/problem+json": {Schema: problemResponseSchema(r.status, codes)}}
		}
	}
	if head {
		o.Description = strings.TrimSpace(o.Description + " HEAD answers carry the headers alone.")
	} else {
		for _, ct := range r.contents {
			if o.Content == nil {
				o.Content = map[string]oasMediaType{}
			}
			o.Content[ct.mediaType] = oasMediaType{Schema: ct.schema}
		}
	}
	o.Headers = map[string]oasHeader{RequestIDHeader: requestIDHeader}
	for _, h := range r.headers {
		o.Headers[h.name] = oasHeader{Description: h.description, Required: h.required, Schema: h.schema}
	}
	return o
}

// requestIDHeader describes the RequestIDHeader every answer carries.
var requestIDHeader = oasHeader{
	Description: "The request's id: the request's own " + RequestIDHeader + " when it is 1 to 128 visible ASCII characters without quotes or backslashes, " +
		"else one the server made. Log lines and reports of the request carry it.",
	Required: true,
	Schema:   &jsonSchema{Type: "string", Pattern: `^[!#-\[\]-~]{1,128}$`},
}

// problemSchema is an RFC 9457 problem as WriteError writes it.
func problemSchema() *jsonSchema {
	return &jsonSchema{
		Type:        "object",
		Description: "An RFC 9457 problem. code is stable: switch on it, not on title or detail.",
		Required:    []string{"type", "title", "status", "code"},
		Properties: map[string]*jsonSchema{
			"type":     {Type: "string", Pattern: "^" + ProblemTypeBase + "[a-z_]+$", Description: "The problem type: " + ProblemTypeBase + " and the code."},
			"title":    {Type: "string", Description: "A short summary of the problem type."},
			"status":   integerSchema(400, 599),
			"detail":   {Type: "string", Description: "What went wrong with this request, and what is accepted."},
			"instance": {Type: "string", Description: "The request's path."},
			"code":     {Type: "string", Description: "The stable code of the problem."},
			"errors": {Type: "array", Description: "The failing fields of a 422 answer, which always has at least one, and the fields of the unique index a 409 conflict broke.", Items: &jsonSchema{
				Type: "object", Required: []string{"pointer", "code"}, AdditionalProperties: false,
				Properties: map[string]*jsonSchema{
					"pointer": {Type: "string", Description: "The field, as a JSON pointer into the request body (RFC 6901); \"\" is the whole body."},
					"code": {Type: "string", Description: "not_writable, invalid_type, invalid_value, invalid_object_id, required, min_length, max_length, minimum, maximum, pattern, enum, " +
						"conflicts_with_scope, duplicate (a 409's unique key), or the service's own."},
					"detail": {Type: "string"},
				}}},
			"inserted": {Type: "integer", Minimum: "0", Description: "A bulk insert's documents stored before the failing line."},
			"line":     {Type: "integer", Minimum: "1", Description: "A bulk insert's failing line, from 1."},
		},
		AdditionalProperties: false,
	}
}

// problemResponseSchema is a problem with the given status and one of the
// given codes.
func problemResponseSchema(status int, codes []string) *jsonSchema {
	enum := make([]any, len(codes))
	for i, c := range codes {
		enum[i] = c
	}
	own := &jsonSchema{Properties: map[string]*jsonSchema{
		"status": {Type: "integer", Const: status},
		"code":   {Type: "string", Enum: enum},
	}}
	switch status {
	case http.StatusUnprocessableEntity:
		own.Required = []string{"errors"}
		own.Properties["errors"] = &jsonSchema{MinItems: pointerTo(1)}
	case http.StatusConflict:
		own.Properties["errors"] = &jsonSchema{Description: "The fields of the unique index the write broke, when the server tells them.",
			Items: &jsonSchema{Properties: map[string]*jsonSchema{"code": {Const: "duplicate"}}}}
	}
	return &jsonSchema{AllOf: []*jsonSchema{schemaRef("Problem"), own}}
}
