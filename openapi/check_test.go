package openapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// An exchange is one request of a suite, checked against the document.
type exchange struct {
	name   string
	method string
	target string   // path and query, escaped as sent
	header []string // name, value, …
	// runtime is set for a request whose parameters match their schemas but
	// that a check made on arrival refuses, one of those the 400 answer's
	// description lists (a token this service did not issue, after with
	// skip, …): the code the service must answer.
	runtime string
	// base is the service's URL; default the example's (service.base).
	base string
	// body is the request body, sent with the Content-Type in header.
	body string
}

// checker holds a document and its router.
type checker struct {
	doc    *openapi3.T
	router routers.Router

	// JSON parameters (filter=) are validated against their schema
	// compiled once: kin-openapi compiles it again for every request,
	// which takes a second for the larger filter documents.
	compiler *jsonschema.Compiler
	mu       sync.Mutex
	compiled map[string]*jsonschema.Schema
}

// documentURL names the document for the schema compiler.
const documentURL = "mem://openapi.json"

func newChecker(document []byte) (*checker, error) {
	doc, err := openapi3.NewLoader().LoadFromData(document)
	if err != nil {
		return nil, err
	}
	r, err := legacy.NewRouter(doc)
	if err != nil {
		return nil, err
	}
	raw, err := jsonschema.UnmarshalJSON(bytes.NewReader(document))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource(documentURL, raw); err != nil {
		return nil, err
	}
	return &checker{doc: doc, router: r, compiler: c, compiled: map[string]*jsonschema.Schema{}}, nil
}

// jsonParams validates the JSON parameters of req against their schemas,
// and returns req without them, for kin-openapi to validate the rest.
func (c *checker) jsonParams(route *routers.Route, req *http.Request) (*http.Request, []string) {
	var reasons []string
	rest := req.Clone(req.Context())
	var kept []string
	for part := range strings.SplitSeq(req.URL.RawQuery, "&") {
		rawKey, rawVal, _ := strings.Cut(part, "=")
		key, _ := url.QueryUnescape(rawKey)
		p := route.Operation.Parameters.GetByInAndName("query", key)
		if p == nil || p.Content == nil {
			kept = append(kept, part)
			continue
		}
		val, err := url.QueryUnescape(rawVal)
		if err != nil {
			continue // the serialization rules report it
		}
		ref := p.Content.Get("application/json").Schema.Ref
		sch, err := c.compile(ref)
		if err != nil {
			reasons = append(reasons, fmt.Sprintf("compiling the schema of %s: %v", key, err))
			continue
		}
		v, err := jsonschema.UnmarshalJSON(strings.NewReader(val))
		if err != nil {
			reasons = append(reasons, fmt.Sprintf("parameter %q is not JSON: %v", key, err))
			continue
		}
		if err := sch.Validate(v); err != nil {
			reasons = append(reasons, fmt.Sprintf("parameter %q: %v", key, err))
		}
	}
	rest.URL.RawQuery = strings.Join(kept, "&")
	return rest, reasons
}

func (c *checker) compile(ref string) (*jsonschema.Schema, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if sch, ok := c.compiled[ref]; ok {
		return sch, nil
	}
	if !strings.HasPrefix(ref, "#/") {
		return nil, fmt.Errorf("the schema is not a reference to a component: %q", ref)
	}
	sch, err := c.compiler.Compile(documentURL + ref)
	if err == nil {
		c.compiled[ref] = sch
	}
	return sch, err
}

// theChecker checks against the example's document.
var theChecker = sync.OnceValues(func() (*checker, error) { return newChecker(service.doc) })

// verdict is what the document says of a request.
type verdict struct {
	noPath   bool // no path of the document matches
	noMethod bool // the path has no operation for the method
	reasons  []string
	// media is set when the body's media type is not one the operation
	// takes (the service answers 415); body when the body does not match
	// its schema (400 when it is not JSON, 422 when its fields are wrong).
	media, body bool
	bodyReasons []string
	input       *openapi3filter.RequestValidationInput
}

func (v verdict) accepted() bool {
	return !v.noPath && !v.noMethod && len(v.reasons) == 0 && !v.media && !v.body
}

// statuses are the answers a refusing verdict allows: 400 for parameters
// and headers, 415 for the media type, 400 or 422 for the body.
func (v verdict) statuses() []int {
	var out []int
	if len(v.reasons) > 0 {
		out = append(out, 400)
	}
	if v.media {
		out = append(out, 415)
	}
	if v.body {
		out = append(out, 400, 422)
	}
	return out
}

func (v verdict) String() string {
	switch {
	case v.noPath:
		return "no such path"
	case v.noMethod:
		return "no such method"
	case !v.accepted():
		return fmt.Sprintf("refused (media type %v): %s", v.media, strings.Join(append(slices.Clone(v.reasons), v.bodyReasons...), "; "))
	}
	return "accepted"
}

// judge asks the document about req: kin-openapi validates the path, the
// parameters and their schemas; the rules the document states in words
// and kin-openapi does not enforce are checked here (see serialization).
func (c *checker) judge(req *http.Request) verdict {
	return c.judgeBody(req, nil)
}

// judgeBody is judge for a request with a body.
func (c *checker) judgeBody(req *http.Request, body []byte) verdict {
	route, pathParams, err := c.router.FindRoute(req)
	var re *routers.RouteError
	switch {
	case errors.As(err, &re) && re.Reason == routers.ErrPathNotFound.Error():
		// The router reports a method no operation of the document uses
		// as an unknown path.
		if c.pathOf(req) != "" {
			return verdict{noMethod: true}
		}
		return verdict{noPath: true}
	case errors.As(err, &re) && re.Reason == routers.ErrMethodNotAllowed.Error():
		return verdict{noMethod: true}
	case err != nil:
		panic(fmt.Sprintf("routing %s %s: %v", req.Method, req.URL, err))
	case !templateMatches(route.Path, req.URL.Path):
		// The router forgives a trailing slash, and takes /posts for
		// /posts/{id} when /posts lacks the method; OpenAPI's paths do not.
		if p := c.pathOf(req); p != "" && c.doc.Paths.Find(p).GetOperation(req.Method) == nil {
			return verdict{noMethod: true}
		}
		return verdict{noPath: true}
	}
	rest, reasons := c.jsonParams(route, req)
	v := verdict{reasons: reasons, input: &openapi3filter.RequestValidationInput{
		Request: rest, PathParams: pathParams, Route: route,
		// Defaults would be written into the request before it is sent.
		Options: &openapi3filter.Options{MultiError: true, SkipSettingDefaults: true, ExcludeRequestBody: true},
	}}
	if err := openapi3filter.ValidateRequest(context.Background(), v.input); err != nil {
		v.reasons = append(v.reasons, err.Error())
	}
	c.judgeRequestBody(&v, route, req, body)
	v.reasons = append(v.reasons, serialization(route.Operation, req.URL.RawQuery)...)
	return v
}

// judgeRequestBody checks a request's body against the operation's
// request body, by its media type, with schemas compiled once: the whole
// body for JSON, each line that is not blank for NDJSON.
func (c *checker) judgeRequestBody(v *verdict, route *routers.Route, req *http.Request, body []byte) {
	rb := route.Operation.RequestBody
	if rb == nil {
		return // the handler reads no body
	}
	mt, _, err := mime.ParseMediaType(req.Header.Get("Content-Type"))
	if err != nil || rb.Value.Content.Get(mt) == nil || rb.Value.Content[mt] == nil {
		v.media = true
		v.bodyReasons = append(v.bodyReasons, fmt.Sprintf("media type %q is not taken", req.Header.Get("Content-Type")))
		return
	}
	pointer := "#/paths/" + pointerPart(route.Path) + "/" + strings.ToLower(req.Method) +
		"/requestBody/content/" + pointerPart(mt) + "/schema"
	sch, err := c.compile(pointer)
	if err != nil {
		v.reasons = append(v.reasons, fmt.Sprintf("compiling %s: %v", pointer, err))
		return
	}
	values := [][]byte{body}
	if mt == "application/x-ndjson" {
		values = nil
		for line := range bytes.SplitSeq(body, []byte("\n")) {
			if len(bytes.TrimSpace(line)) > 0 {
				values = append(values, line)
			}
		}
	}
	for i, b := range values {
		val, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err == nil {
			err = sch.Validate(val)
		}
		if err != nil {
			v.body = true
			v.bodyReasons = append(v.bodyReasons, fmt.Sprintf("body value %d: %v", i+1, err))
		}
	}
}

// serialization checks what the document states and kin-openapi leaves
// to the server: an operation marked x-mongohttp-strict-query refuses the
// parameters it does not list; no parameter is an exploded array, so none
// may appear twice; and a boolean is written true or false, as RFC 6570
// expands it (kin-openapi also reads 1, t, TRUE…).
func serialization(op *openapi3.Operation, rawQuery string) []string {
	strict := op.Extensions["x-mongohttp-strict-query"] == true
	declared := map[string]*openapi3.Parameter{}
	for _, p := range op.Parameters {
		if p.Value.In == "query" {
			declared[p.Value.Name] = p.Value
		}
	}
	var reasons []string
	seen := map[string]bool{}
	for part := range strings.SplitSeq(rawQuery, "&") {
		if part == "" {
			continue
		}
		rawKey, rawVal, _ := strings.Cut(part, "=")
		key, err1 := url.QueryUnescape(rawKey)
		val, err2 := url.QueryUnescape(rawVal)
		if err1 != nil || err2 != nil {
			if strict {
				reasons = append(reasons, fmt.Sprintf("%q is not percent-encoded correctly", part))
			}
			continue
		}
		p := declared[key]
		switch {
		case p == nil && strict:
			reasons = append(reasons, fmt.Sprintf("parameter %q is not listed", key))
		case p == nil:
		case seen[key]:
			reasons = append(reasons, fmt.Sprintf("parameter %q is given twice", key))
		case p.Schema != nil && !booleans(p.Schema.Value, val):
			reasons = append(reasons, fmt.Sprintf("boolean parameter %q is %q", key, val))
		}
		seen[key] = true
	}
	return reasons
}

// run sends x and checks that the service and the document agree on it,
// and that the answer is one the document describes.
func (c *checker) run(t *testing.T, x exchange) (*http.Response, []byte) {
	t.Helper()
	method := x.method
	if method == "" {
		method = http.MethodGet
	}
	base := x.base
	if base == "" {
		base = service.base
	}
	req, err := http.NewRequest(method, base+x.target, strings.NewReader(x.body))
	if err != nil {
		t.Fatalf("%s: %v", x.target, err)
	}
	if x.body == "" {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	for i := 0; i+1 < len(x.header); i += 2 {
		req.Header.Set(x.header[i], x.header[i+1])
	}
	v := c.judgeBody(req, []byte(x.body))
	resp, body := send(t, req)
	// A hash never leaves the service, and no answer has the field, even
	// as a name (problem details, 400 and 422, quote what the client sent).
	if bytes.Contains(body, []byte("$2a$10$")) || bytes.Contains(body, []byte(`"password_hash":`)) ||
		(resp.StatusCode != 400 && resp.StatusCode != 422 && bytes.Contains(body, []byte("password_hash"))) {
		t.Errorf("%s %s: the answer holds the hidden field:\n%s", method, x.target, clip(body))
	}
	code := problemCode(resp, body)
	switch {
	case v.noPath:
		if resp.StatusCode != 404 || code != "not_found" {
			t.Errorf("%s %s: the document has no such path; the service answered %d %s", method, x.target, resp.StatusCode, code)
		}
		c.checkProblem(t, "Problem", body)
		return resp, body
	case v.noMethod:
		c.checkMethodNotAllowed(t, req, resp, body)
		return resp, body
	case !v.accepted():
		if !slices.Contains(v.statuses(), resp.StatusCode) {
			t.Errorf("%s %s: the document refuses it (%s), which is answered %v; the service answered %d:\n%s", method, x.target, v, v.statuses(), resp.StatusCode, clip(body))
		}
		if x.runtime != "" {
			t.Errorf("%s %s: marked as refused only on arrival (%s), but the document refuses it: %s", method, x.target, x.runtime, v)
		}
	case x.runtime != "":
		if want := runtimeStatus(x.runtime); resp.StatusCode != want || code != x.runtime {
			t.Errorf("%s %s: want %d %s, refused on arrival; the service answered %d %s", method, x.target, want, x.runtime, resp.StatusCode, code)
		}
	default:
		if slices.Contains([]int{400, 415, 422}, resp.StatusCode) {
			t.Errorf("%s %s: the document accepts it; the service answered %d %s:\n%s", method, x.target, resp.StatusCode, code, clip(body))
		}
	}
	c.checkAnswer(t, v.input, resp, body)
	return resp, body
}

// runtimeStatus is the status of a code a check on arrival answers: the
// service's validation and a reused Idempotency-Key are 422, the others 400.
func runtimeStatus(code string) int {
	switch code {
	case "validation_failed", "idempotency_key_reused":
		return 422
	}
	return 400
}

// checkAnswer validates an answer against its operation: the status is
// documented, the headers and the body match their schemas.
func (c *checker) checkAnswer(t *testing.T, input *openapi3filter.RequestValidationInput, resp *http.Response, body []byte) {
	t.Helper()
	for _, e := range c.answerErrors(input, resp.StatusCode, resp.Header, body) {
		t.Errorf("%s %s: the answer %d does not match the document: %s\n%s", input.Request.Method, input.Request.URL, resp.StatusCode, e, clip(body))
	}
}

// answerErrors checks an answer: kin-openapi checks the status and the
// headers; the body is checked against its schema compiled once, where
// kin-openapi would compile it again for every answer.
func (c *checker) answerErrors(input *openapi3filter.RequestValidationInput, status int, header http.Header, body []byte) []string {
	var errs []string
	opts := &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true, ExcludeResponseBody: true}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: input, Status: status, Header: header, Options: opts}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		errs = append(errs, err.Error())
	}
	if len(body) == 0 {
		return errs // HEAD, 304
	}
	mt, _, _ := mime.ParseMediaType(header.Get("Content-Type"))
	documented := input.Route.Operation.Responses.Status(status)
	if documented == nil || documented.Value.Content.Get(mt) == nil {
		return append(errs, fmt.Sprintf("no %s body is documented for status %d", mt, status))
	}
	pointer := "#/paths/" + pointerPart(input.Route.Path) + "/" + strings.ToLower(input.Request.Method) +
		"/responses/" + strconv.Itoa(status) + "/content/" + pointerPart(mt) + "/schema"
	sch, err := c.compile(pointer)
	if err != nil {
		return append(errs, fmt.Sprintf("compiling %s: %v", pointer, err))
	}
	values := [][]byte{body}
	if mt == "application/x-ndjson" {
		values = bytes.Split(bytes.TrimSuffix(body, []byte("\n")), []byte("\n"))
	}
	for i, b := range values {
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err == nil {
			err = sch.Validate(v)
		}
		if err != nil {
			errs = append(errs, fmt.Sprintf("value %d: %v", i+1, err))
		}
	}
	return errs
}

// pointerPart escapes a JSON Pointer token for a URI fragment.
func pointerPart(s string) string {
	return url.PathEscape(strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1"))
}

// checkMethodNotAllowed checks the answer to a method the path has no
// operation for: 405, with the Allow header the document's extension
// gives and the body of its MethodNotAllowed response.
func (c *checker) checkMethodNotAllowed(t *testing.T, req *http.Request, resp *http.Response, body []byte) {
	t.Helper()
	if resp.StatusCode != 405 {
		t.Errorf("%s %s: the path has no such operation; the service answered %d", req.Method, req.URL, resp.StatusCode)
		return
	}
	item := c.doc.Paths.Find(c.pathOf(req))
	ext, ok := item.Extensions["x-mongohttp-other-methods"].(map[string]any)
	if !ok {
		return // a handler that does not describe itself; its 405 is its own
	}
	if got := resp.Header.Get("Allow"); got != ext["allow"] {
		t.Errorf("%s %s: Allow %q, the document says %q", req.Method, req.URL, got, ext["allow"])
	}
	mna := c.doc.Components.Responses["MethodNotAllowed"].Value
	if req.Method == http.MethodHead {
		return
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Errorf("405 body: %v", err)
		return
	}
	if err := mna.Content.Get("application/problem+json").Schema.Value.VisitJSON(v, openapi3.EnableJSONSchema2020()); err != nil {
		t.Errorf("%s %s: the 405 answer does not match MethodNotAllowed: %v", req.Method, req.URL, err)
	}
}

// pathOf returns the document path matching req's path, whatever its
// method: a path without wildcards first, as routers prefer it.
func (c *checker) pathOf(req *http.Request) string {
	found := ""
	for _, path := range c.doc.Paths.InMatchingOrder() {
		if path == req.URL.Path {
			return path
		}
		if found == "" && templateMatches(path, req.URL.Path) {
			found = path
		}
	}
	return found
}

// checkProblem validates a body against a named schema.
func (c *checker) checkProblem(t *testing.T, name string, body []byte) {
	t.Helper()
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Errorf("problem body: %v\n%s", err, clip(body))
		return
	}
	if err := c.doc.Components.Schemas[name].Value.VisitJSON(v, openapi3.EnableJSONSchema2020()); err != nil {
		t.Errorf("the answer does not match %s: %v", name, err)
	}
}

// booleans reports whether a boolean value, or each item of an array of
// booleans, is written true or false.
func booleans(schema *openapi3.Schema, val string) bool {
	items := []string{val}
	if schema.Type.Is("array") {
		schema = schema.Items.Value
		items = strings.Split(val, ",")
	}
	if !schema.Type.Is("boolean") {
		return true
	}
	for _, it := range items {
		if it != "true" && it != "false" {
			return false
		}
	}
	return true
}

// templateMatches reports whether path matches an OpenAPI path template
// exactly, each {name} standing for one non-empty segment.
func templateMatches(template, path string) bool {
	ts, ps := strings.Split(template, "/"), strings.Split(path, "/")
	if len(ts) != len(ps) {
		return false
	}
	for i, t := range ts {
		if strings.HasPrefix(t, "{") && strings.HasSuffix(t, "}") {
			if ps[i] == "" {
				return false
			}
		} else if t != ps[i] {
			return false
		}
	}
	return true
}

func problemCode(resp *http.Response, body []byte) string {
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/problem+json" {
		return ""
	}
	var p struct {
		Code string `json:"code"`
	}
	_ = json.Unmarshal(body, &p)
	return p.Code
}

func clip(b []byte) string {
	if len(b) > 400 {
		return string(b[:400]) + "…"
	}
	return string(b)
}

// runAll runs the exchanges, a few at a time (the service's admission
// bound would otherwise answer some of them 503, which hides verdicts).
func runAll(t *testing.T, xs []exchange) {
	c, err := theChecker()
	if err != nil {
		t.Fatal(err)
	}
	c.runAll(t, xs)
}

func (c *checker) runAll(t *testing.T, xs []exchange) {
	names := map[string]int{}
	sem := make(chan struct{}, 4)
	t.Run("group", func(t *testing.T) {
		for _, x := range xs {
			name := x.name
			if name == "" {
				name = x.method + " " + x.target
			}
			names[name]++
			if n := names[name]; n > 1 {
				name = fmt.Sprintf("%s#%d", name, n)
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				sem <- struct{}{}
				defer func() { <-sem }()
				c.run(t, x)
			})
		}
	})
}

func errFmt(format string, args ...any) error { return fmt.Errorf(format, args...) }
