package mongohttp

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// API collects the routes a service mounts and serves their OpenAPI 3.1
// document, built from the handlers' declarations and policies. Register
// each route as it is mounted, under any router: Handle returns the
// handler it is given.
//
//	api := &mongohttp.API{Title: "Shop", Version: "1.2.0"}
//	mux.Handle("/users", api.Handle("/users", users.Find()))
//	mux.Handle("/users/{id}", api.Handle("/users/{id}", users.FindOne()))
//	mux.Handle("GET /openapi.json", api.Handle("GET /openapi.json", api))
//
// The handlers of a Resource, HealthHandler, StatsHandler and API describe
// themselves: every query parameter they accept (and none they refuse),
// their answers with their schemas, headers and problem codes. Other
// handlers are documented by the Doc given with them.
//
// Two extensions say what OpenAPI cannot: x-mongohttp-strict-query marks
// the operations that refuse any query parameter they do not list, and
// x-mongohttp-other-methods marks the paths whose handler answers other
// methods itself, with the MethodNotAllowed response (405).
//
// An API is itself the handler that serves the document, as JSON, to GET
// and HEAD, with an ETag. Set its fields before the first request.
type API struct {
	// Title is the document's title. Default "API".
	Title string
	// Version is the version of the API (not of OpenAPI). Default "1".
	Version string
	// Description is a longer description, in CommonMark.
	Description string
	// Servers are the base URLs the API is served from. Default none: the
	// document's own location.
	Servers []APIServer
	// Policy names the policy the document describes, for declarations
	// that choose a policy per request (Collection.PolicyFor): "" describes
	// Collection.Policy. Serve one document per policy to describe each.
	Policy string

	mu     sync.Mutex
	routes []apiRoute
	built  *builtDocument
}

// APIServer is a base URL of the API.
type APIServer struct {
	URL         string
	Description string
}

// Doc documents a route beyond what its handler says about itself.
type Doc struct {
	// Summary is a one-line summary. Default: the handler's own.
	Summary string
	// Description is a longer description, in CommonMark, added to the
	// handler's own.
	Description string
	// OperationID names the operation of the route's first method; its
	// other methods get the name followed by the method ("listUsersHead").
	// Default: the method and the path, as "getUsersById".
	OperationID string
	// Tags group operations. Default: the collection's name, for the
	// handlers of a Resource.
	Tags []string
	// PathParams gives the types of the pattern's wildcards that a
	// handler reads itself (a parent id in a BaseFilter). A FindOne's id
	// is typed by its policy, and other wildcards are strings.
	PathParams map[string]Type
	// Errors are further problems the handler answers, such as those of a
	// BaseFilter (ErrNotFound for an unknown parent, ErrInvalidObjectID for
	// a malformed one). Each is listed under its status.
	Errors []*Error
	// Methods are the methods of a handler that does not describe itself,
	// when its pattern names none. Default GET.
	Methods []string
	// ContentType is the media type of such a handler's 200 answer, whose
	// body the document then leaves unconstrained. Default: none stated.
	ContentType string
	// Operations documents single methods of a route that serves several
	// (a Methods): by method, a Doc whose non-empty fields replace the
	// route's for that method's operation, and whose Errors add to them
	// ({"POST": {OperationID: "createUser"}}). HEAD takes GET's. Its
	// Operations are ignored. Default none.
	Operations map[string]Doc

	ownID bool // OperationID comes from Operations: it names its method's operation
}

type apiRoute struct {
	pattern string
	method  string   // from the pattern; "" when the handler sees every method
	path    string   // in OpenAPI form: /users/{id}
	params  []string // the path's wildcards, in order
	h       http.Handler
	doc     Doc
}

type builtDocument struct {
	body []byte
	etag string
	err  error
}

// Handle records that h is mounted at pattern and returns h, for mounting.
// pattern is a method (optional) and a path, as for http.ServeMux:
// "GET /users/{id}". Without a method, the handler gets every method and
// the document lists those it serves; with one, that method, and HEAD
// with GET, as ServeMux routes it. Wildcards are {name}; chi's
// {name:regexp} and :name are read too. At most one doc is taken. Handle
// panics on a malformed pattern, as ServeMux does.
func (a *API) Handle(pattern string, h http.Handler, doc ...Doc) http.Handler {
	if len(doc) > 1 {
		panic("mongohttp: API.Handle takes at most one Doc")
	}
	rt, err := parseRoutePattern(pattern)
	if err != nil {
		panic("mongohttp: API.Handle: " + err.Error())
	}
	rt.h = h
	if len(doc) == 1 {
		rt.doc = doc[0]
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.routes = append(a.routes, rt)
	a.built = nil
	return h
}

// parseRoutePattern reads "[METHOD ][host]/path".
func parseRoutePattern(pattern string) (apiRoute, error) {
	rt := apiRoute{pattern: pattern}
	rest := strings.TrimSpace(pattern)
	if m, p, ok := strings.Cut(rest, " "); ok {
		rt.method, rest = m, strings.TrimLeft(p, " \t")
		if m != strings.ToUpper(m) || m == "" {
			return rt, fmt.Errorf("pattern %q: method %q is not upper case", pattern, m)
		}
	}
	i := strings.IndexByte(rest, '/')
	if i < 0 {
		return rt, fmt.Errorf("pattern %q has no path", pattern)
	}
	rest = rest[i:] // a host is not part of an OpenAPI path
	var segs []string
	for _, seg := range strings.Split(rest, "/")[1:] {
		name, wild := "", false
		switch {
		case strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}"):
			name, wild = strings.TrimSuffix(seg[1:len(seg)-1], "..."), true
			name, _, _ = strings.Cut(name, ":") // chi's {id:[0-9]+}
		case strings.HasPrefix(seg, ":"):
			name, wild = seg[1:], true
		}
		if name == "$" {
			continue // ServeMux's end anchor
		}
		if wild {
			if name == "" || strings.ContainsAny(name, "{}/") || slices.Contains(rt.params, name) {
				return rt, fmt.Errorf("pattern %q: bad wildcard %q", pattern, seg)
			}
			rt.params = append(rt.params, name)
			seg = "{" + name + "}"
		}
		segs = append(segs, seg)
	}
	rt.path = "/" + strings.Join(segs, "/")
	return rt, nil
}

// Document returns the OpenAPI 3.1 document of the routes handled so far,
// as JSON.
func (a *API) Document() ([]byte, error) {
	d := a.document()
	return d.body, d.err
}

func (a *API) document() *builtDocument {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.built == nil {
		body, err := a.build()
		a.built = &builtDocument{body: body, err: err}
		if err == nil {
			sum := sha256.Sum256(body)
			a.built.etag = `"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`
		}
	}
	return a.built
}

// ServeHTTP serves the document to GET and HEAD.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setRequestID(w, r)
	if !allowGetHead(w, r) {
		return
	}
	if r.URL.RawQuery != "" {
		WriteError(w, r, ErrUnknownParameter.Detailf("the document takes no query parameters"))
		return
	}
	d := a.document()
	if d.err != nil {
		logError(slog.Default(), r, ErrInternal.Detailf("the API document could not be built").withCause(d.err), patternRoute(r), setRequestID(w, r))
		WriteError(w, r, ErrInternal.Detailf("the API document could not be built"))
		return
	}
	hdr := w.Header()
	hdr.Set("ETag", d.etag)
	hdr.Set("X-Content-Type-Options", "nosniff")
	if etagMatches(r.Header.Values("If-None-Match"), d.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hdr.Set("Content-Type", "application/json")
	hdr.Set("Content-Length", strconv.Itoa(len(d.body)))
	if r.Method != http.MethodHead {
		_, _ = w.Write(d.body)
	}
}

func (a *API) describe(c *apiComponents, _ string) (*apiOperation, error) {
	etag := apiHeader{name: "ETag", required: true, schema: &jsonSchema{Type: "string"}, description: "A strong validator of the document."}
	return &apiOperation{
		methods:     []string{http.MethodGet, http.MethodHead},
		strictQuery: true,
		summary:     "This OpenAPI document",
		headers:     []apiParam{{name: "If-None-Match", schema: &jsonSchema{Type: "string"}, description: "ETags of copies the client holds; a match gets 304."}},
		responses: []apiResponse{
			{status: http.StatusOK, description: "The OpenAPI 3.1 document of this API.", headers: []apiHeader{etag},
				contents: []apiContent{{mediaType: "application/json", schema: &jsonSchema{Type: "object", Required: []string{"openapi", "info"}}}}},
			{status: http.StatusNotModified, description: "The document has not changed since the ETag given in If-None-Match.", headers: []apiHeader{etag}},
			{status: http.StatusBadRequest, description: "A query string was given.", problems: []*Error{ErrUnknownParameter}},
			{status: http.StatusInternalServerError, description: "The document could not be built.", problems: []*Error{ErrInternal}},
		},
	}, nil
}

// The document, as encoding/json writes it: structs keep OpenAPI's order
// of fields, maps are sorted.
type (
	oasDocument struct {
		OpenAPI    string                 `json:"openapi"`
		Info       oasInfo                `json:"info"`
		Servers    []oasServer            `json:"servers,omitempty"`
		Paths      map[string]oasPathItem `json:"paths"`
		Components oasComponents          `json:"components"`
	}
	oasInfo struct {
		Title       string `json:"title"`
		Version     string `json:"version"`
		Description string `json:"description,omitempty"`
	}
	oasServer struct {
		URL         string `json:"url"`
		Description string `json:"description,omitempty"`
	}
	oasPathItem  map[string]any // methods, and the extension of 405 answers
	oasOperation struct {
		OperationID string                 `json:"operationId"`
		Summary     string                 `json:"summary,omitempty"`
		Description string                 `json:"description,omitempty"`
		Tags        []string               `json:"tags,omitempty"`
		Parameters  []oasParameter         `json:"parameters,omitempty"`
		RequestBody *oasRequestBody        `json:"requestBody,omitempty"`
		Responses   map[string]oasResponse `json:"responses"`
		StrictQuery bool                   `json:"x-mongohttp-strict-query,omitempty"`
	}
	oasParameter struct {
		Name        string                  `json:"name"`
		In          string                  `json:"in"`
		Description string                  `json:"description,omitempty"`
		Required    bool                    `json:"required,omitempty"`
		AllowEmpty  bool                    `json:"allowEmptyValue,omitempty"`
		Style       string                  `json:"style,omitempty"`
		Explode     *bool                   `json:"explode,omitempty"`
		Schema      *jsonSchema             `json:"schema,omitempty"`
		Content     map[string]oasMediaType `json:"content,omitempty"`
	}
	oasRequestBody struct {
		Required bool                    `json:"required"`
		Content  map[string]oasMediaType `json:"content"`
	}
	oasMediaType struct {
		Schema *jsonSchema `json:"schema,omitempty"`
	}
	oasResponse struct {
		Description string                  `json:"description"`
		Headers     map[string]oasHeader    `json:"headers,omitempty"`
		Content     map[string]oasMediaType `json:"content,omitempty"`
	}
	oasHeader struct {
		Description string      `json:"description,omitempty"`
		Required    bool        `json:"required,omitempty"`
		Schema      *jsonSchema `json:"schema"`
	}
	oasComponents struct {
		Schemas   map[string]*jsonSchema `json:"schemas"`
		Responses map[string]oasResponse `json:"responses,omitempty"`
	}
)

// methodNotAllowedExtension marks the paths whose handlers answer every
// method they do not serve with 405, by the response it refers to.
const methodNotAllowedExtension = "x-mongohttp-other-methods"

func (a *API) build() ([]byte, error) {
	c := newAPIComponents()
	c.add("Problem", problemSchema()) // first, so that the name is its own
	doc := oasDocument{
		OpenAPI: "3.1.0",
		Info:    oasInfo{Title: a.Title, Version: a.Version, Description: a.Description},
		Paths:   map[string]oasPathItem{},
	}
	if doc.Info.Title == "" {
		doc.Info.Title = "API"
	}
	if doc.Info.Version == "" {
		doc.Info.Version = "1"
	}
	for _, s := range a.Servers {
		doc.Servers = append(doc.Servers, oasServer(s))
	}
	ids := map[string]string{}
	anyOtherMethods := false
	for _, rt := range a.routes {
		ops, err := a.describeRoute(c, rt)
		if err != nil {
			return nil, fmt.Errorf("mongohttp: API: route %q: %w", rt.pattern, err)
		}
		item := doc.Paths[rt.path]
		if item == nil {
			item = oasPathItem{}
			doc.Paths[rt.path] = item
		}
		i := 0
		var served []string
		for _, op := range ops {
			for _, m := range op.methods {
				key := strings.ToLower(m)
				if _, dup := item[key]; dup {
					return nil, fmt.Errorf("mongohttp: API: %s %s is handled twice", m, rt.path)
				}
				o := renderOperation(c, op, rt, m, i)
				if prev, dup := ids[o.OperationID]; dup {
					return nil, fmt.Errorf("mongohttp: API: operationId %q of %s %s is also that of %s", o.OperationID, m, rt.path, prev)
				}
				ids[o.OperationID] = m + " " + rt.path
				item[key] = o
				served = append(served, m)
				i++
			}
		}
		if allow, ok := answersOtherMethods(rt, served); ok {
			item[methodNotAllowedExtension] = map[string]string{"response": "#/components/responses/MethodNotAllowed", "allow": allow}
			anyOtherMethods = true
		}
	}
	doc.Components.Schemas = c.schemas
	if anyOtherMethods {
		doc.Components.Responses = map[string]oasResponse{"MethodNotAllowed": renderResponse(apiResponse{
			status:      http.StatusMethodNotAllowed,
			description: "Answered to any method of the path that has no operation here (extension " + methodNotAllowedExtension + "). The Allow header lists the methods served.",
			headers:     []apiHeader{{name: "Allow", required: true, schema: &jsonSchema{Type: "string"}, description: "The methods served, as \"GET, HEAD\"."}},
			problems:    []*Error{ErrMethodNotAllowed},
		}, false)}
	}
	return json.Marshal(doc)
}

// answersOtherMethods reports whether the handler of rt answers the
// methods it does not serve with 405 and the Allow header it sends: a
// handler that describes itself, or Methods, mounted without a method.
func answersOtherMethods(rt apiRoute, served []string) (string, bool) {
	if rt.method != "" {
		return "", false
	}
	switch h := rt.h.(type) {
	case Methods:
		return h.allowed(), true
	case describer:
		return strings.Join(served, ", "), true
	}
	return "", false
}

// describeRoute describes one route from its handler and its Doc: one
// operation per handler (Methods has one per method), each with its doc.
func (a *API) describeRoute(c *apiComponents, rt apiRoute) ([]*apiOperation, error) {
	var ops []*apiOperation
	switch h := rt.h.(type) {
	case Methods:
		var err error
		if ops, err = h.describeAll(c, a.Policy); err != nil {
			return nil, err
		}
	case describer:
		op, err := h.describe(c, a.Policy)
		if err != nil {
			return nil, err
		}
		ops = []*apiOperation{op}
	default:
		ops = []*apiOperation{{methods: rt.doc.Methods, undescribed: true}}
		if len(ops[0].methods) == 0 {
			ops[0].methods = []string{http.MethodGet}
		}
	}
	if rt.method != "" {
		// The router sends this method alone (with HEAD for GET, as
		// ServeMux does) to the handler.
		kept := ops[:0]
		for _, op := range ops {
			if op.undescribed && rt.h != nil {
				if _, isMethods := rt.h.(Methods); !isMethods {
					op.methods = []string{rt.method}
				}
			}
			op.methods = slices.DeleteFunc(op.methods, func(m string) bool {
				return m != rt.method && !(rt.method == http.MethodGet && m == http.MethodHead)
			})
			if len(op.methods) > 0 {
				kept = append(kept, op)
			}
		}
		if ops = kept; len(ops) == 0 {
			return nil, fmt.Errorf("the handler does not serve %s", rt.method)
		}
	}
	for _, op := range ops {
		doc := rt.doc.forMethod(op.methods[0])
		op.doc = doc
		if op.undescribed {
			ok := apiResponse{status: http.StatusOK, description: "OK."}
			if doc.ContentType != "" {
				ok.contents = []apiContent{{mediaType: doc.ContentType, schema: &jsonSchema{}}}
			}
			op.responses = []apiResponse{ok}
		}
		if doc.Summary != "" {
			op.summary = doc.Summary
		}
		if doc.Tags != nil {
			op.tags = doc.Tags
		}
		if doc.Description != "" {
			op.description = strings.TrimSpace(doc.Description + "\n\n" + op.description)
		}
		op.responses = problemsFrom(op.responses, doc.Errors)
		if op.id != nil && len(rt.params) == 0 {
			return nil, errors.New("the handler reads a document id, and the pattern has no wildcard for it")
		}
	}
	return ops, nil
}

// forMethod is d with the Doc of method m (HEAD takes GET's) laid over it:
// its non-zero fields win, and its Errors add to d's.
func (d Doc) forMethod(m string) Doc {
	o, ok := d.Operations[m]
	if !ok && m == http.MethodHead {
		o, ok = d.Operations[http.MethodGet]
	}
	if !ok {
		return d
	}
	if o.Summary != "" {
		d.Summary = o.Summary
	}
	if o.Description != "" {
		d.Description = o.Description
	}
	if o.OperationID != "" {
		d.OperationID, d.ownID = o.OperationID, true
	}
	if o.Tags != nil {
		d.Tags = o.Tags
	}
	if o.PathParams != nil {
		d.PathParams = o.PathParams
	}
	d.Errors = append(slices.Clone(d.Errors), o.Errors...)
	if o.ContentType != "" {
		d.ContentType = o.ContentType
	}
	return d
}
