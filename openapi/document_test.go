package openapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
)

// TestDocumentIsOpenAPI31 checks the example's document with two
// validators that share no code with mongohttp or with each other:
// libopenapi-validator checks it against the OpenAPI 3.1 schema, and
// kin-openapi loads it, resolves every reference and checks each part.
// Both must also refuse the document spoiled, so that their silence means
// something.
func TestDocumentIsOpenAPI31(t *testing.T) {
	var head struct {
		OpenAPI string `json:"openapi"`
	}
	if err := json.Unmarshal(service.doc, &head); err != nil || head.OpenAPI != "3.1.0" {
		t.Fatalf("openapi %q, %v", head.OpenAPI, err)
	}
	validateDocument(t, service.doc)

	var doc map[string]any
	_ = json.Unmarshal(service.doc, &doc)
	doc["info"].(map[string]any)["version"] = 7 // a number, not a string
	get := doc["paths"].(map[string]any)["/users"].(map[string]any)["get"].(map[string]any)
	get["parameters"] = append(get["parameters"].([]any), map[string]any{"name": "x", "in": "nowhere"})
	spoiled, _ := json.Marshal(doc)
	if errs := libopenapiErrors(spoiled); len(errs) == 0 {
		t.Error("libopenapi accepts a spoiled document")
	}
	if err := kinErrors(spoiled); err == nil {
		t.Error("kin-openapi accepts a spoiled document")
	}
}

// libopenapiErrors validates doc against the OpenAPI 3.1 schema.
func libopenapiErrors(doc []byte) []string {
	d, err := libopenapi.NewDocument(doc)
	if err != nil {
		return []string{err.Error()}
	}
	v, errs := validator.NewValidator(d)
	if len(errs) > 0 {
		return []string{fmt.Sprint(errs)}
	}
	var out []string
	if ok, verrs := v.ValidateDocument(); !ok {
		for _, e := range verrs {
			out = append(out, e.Message+": "+e.Reason)
			for _, se := range e.SchemaValidationErrors {
				out = append(out, "  "+se.Reason+" at "+se.FieldPath)
			}
		}
	}
	return out
}

// kinErrors loads doc with kin-openapi as OpenAPI 3.1 and validates it.
func kinErrors(doc []byte) error {
	d, err := openapi3.NewLoader().LoadFromData(doc)
	if err != nil {
		return err
	}
	if !d.IsOpenAPI31OrLater() {
		return errors.New("not read as OpenAPI 3.1")
	}
	return d.Validate(context.Background())
}

// TestDocumentDescribesTheExample checks what the document says about the
// example's routes against the example's declarations.
func TestDocumentDescribesTheExample(t *testing.T) {
	doc := loadDocument(t)
	var ids []string
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			ids = append(ids, method+" "+path+" "+op.OperationID)
		}
	}
	for _, want := range []string{
		"GET /users listUsers", "HEAD /users listUsersHead", "GET /users/{id} getUser",
		"GET /users/{id}/posts listUserPosts", "GET /posts listPosts", "GET /posts/{id} getPost",
		"GET /healthz health", "GET /openapi.json openapi",
		"POST /users createUser", "POST /posts createPost", "PUT /posts/{id} replacePost", "PATCH /posts/{id} patchPost",
		"DELETE /posts/{id} deletePost", "GET /users/{id}/stats userPostStats", "GET /posts/stats postStats",
	} {
		found := false
		for _, id := range ids {
			found = found || id == want
		}
		if !found {
			t.Errorf("no operation %q among %v", want, ids)
		}
	}
	list := doc.Paths.Find("/users").Get
	params := map[string]*openapi3.Parameter{}
	for _, p := range list.Parameters {
		params[p.Value.Name] = p.Value
	}
	for _, name := range []string{"name", "age[gte]", "tags[in]", "profile.city[ne]", "created[lt]", "_id[nin]", "filter", "sort", "fields", "limit", "skip", "after", "count"} {
		if params[name] == nil {
			t.Errorf("/users has no parameter %s", name)
		}
	}
	for _, name := range []string{"password_hash", "password_hash[eq]", "age[regex]", "name[elemMatch]", "age[$gt]"} {
		if params[name] != nil {
			t.Errorf("/users lists parameter %s, which it refuses", name)
		}
	}
	limit := params["limit"].Schema.Value
	if *limit.Min != 1 || *limit.Max != 100 || limit.Default != float64(20) {
		t.Errorf("limit: minimum %v, maximum %v, default %v", *limit.Min, *limit.Max, limit.Default)
	}
	var sortEnum []string
	for _, v := range params["sort"].Schema.Value.Items.Value.Enum {
		sortEnum = append(sortEnum, v.(string))
	}
	if got := strings.Join(sortEnum, " "); got != "_id -_id age -age name -name created -created" {
		t.Errorf("sort items %s", got)
	}
	if p := doc.Components.Schemas["Users"]; p == nil || p.Value.Properties["_id"] == nil {
		t.Errorf("no Users schema with _id")
	}
	post := doc.Components.Schemas["Post"]
	if post == nil || post.Value.Properties["published"].Value.Format != "date-time" ||
		post.Value.Properties["author_id"].Value.Pattern != "^[0-9a-f]{24}$" {
		t.Fatalf("Post schema %v", post)
	}
	codes := doc.Paths.Find("/users/{id}/posts").Get.Responses.Status(404)
	if codes == nil {
		t.Error("the posts of a user have no 404 answer")
	}

	// Writes: bodies from the write policy, media types, preconditions.
	posts := doc.Paths.Find("/posts")
	// One media type, and one answer type, per operation: a stream goes
	// to the bulk insert.
	if c := posts.Post.RequestBody.Value.Content; len(c) != 1 || c.Get("application/json") == nil {
		t.Errorf("POST /posts takes %v, want application/json alone", c)
	}
	if c := doc.Paths.Find("/posts/bulk").Post.RequestBody.Value.Content; len(c) != 1 || c.Get("application/x-ndjson") == nil {
		t.Errorf("POST /posts/bulk takes %v, want application/x-ndjson alone", c)
	}
	for _, op := range []string{"/posts", "/posts/bulk"} {
		var ok []string
		for status, r := range doc.Paths.Find(op).Post.Responses.Map() {
			if status[0] == '2' && r.Value.Content.Get("application/json") != nil {
				ok = append(ok, status)
			}
		}
		if len(ok) != 1 {
			t.Errorf("POST %s has JSON success answers %v, want one", op, ok)
		}
	}
	write := doc.Components.Schemas["PostsWrite"].Value
	if write.AdditionalProperties.Has == nil || *write.AdditionalProperties.Has || write.Properties["month"] != nil || write.Properties["title"] == nil {
		t.Errorf("PostsWrite: %+v", write)
	}
	if users := doc.Components.Schemas["UsersWrite"].Value; users.Properties["password"] == nil || users.Properties["password_hash"] != nil {
		t.Errorf("UsersWrite: %v", users.Properties)
	}
	patch := doc.Paths.Find("/posts/{id}").Patch
	if patch.RequestBody.Value.Content.Get("application/merge-patch+json") == nil {
		t.Error("PATCH /posts/{id} does not take a merge patch")
	}
	for _, status := range []int{200, 204, 400, 404, 408, 409, 412, 413, 415, 422, 503, 504} {
		if patch.Responses.Status(status) == nil {
			t.Errorf("PATCH /posts/{id} has no %d answer", status)
		}
	}
	if patch.Parameters.GetByInAndName("header", "If-Match") == nil {
		t.Error("PATCH /posts/{id} does not read If-Match")
	}
	created := posts.Post.Responses.Status(201).Value
	if created.Headers["Location"] == nil || created.Headers["ETag"] == nil {
		t.Errorf("201 of POST /posts: headers %v", created.Headers)
	}

	// ?embed=author adds the author, as the users' policy serves it.
	if p := posts.Get.Parameters.GetByInAndName("query", "embed"); p == nil {
		t.Error("GET /posts has no embed parameter")
	}
	if a := doc.Components.Schemas["Post"].Value.Properties["author"]; a == nil {
		t.Error("the Post schema has no author relation")
	}
	if doc.Paths.Find("/users").Get.Parameters.GetByInAndName("query", "embed") != nil {
		t.Error("GET /users lists embed, which it refuses")
	}
}

func loadDocument(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(service.doc)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}
