package openapi

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// sampleDocs are documents of the seeded data, read from the service.
type sampleDocs struct {
	user      map[string]any
	userID    string
	post      map[string]any
	postID    string
	authorID  string // a user with posts
	token     string // an after token of /users?limit=2
	nextUsers string // the next link of /users?limit=2
}

var samples = sync.OnceValues(func() (*sampleDocs, error) {
	s := &sampleDocs{}
	get := func(target string, v any) (*http.Response, error) {
		resp, err := http.Get(service.base + target)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		return resp, json.NewDecoder(resp.Body).Decode(v)
	}
	var users, posts []map[string]any
	resp, err := get("/users?limit=2", &users)
	if err != nil {
		return nil, err
	}
	s.user, s.userID = users[1], users[1]["_id"].(string)
	m := regexp.MustCompile(`^<([^>]+)>; rel="next"$`).FindStringSubmatch(resp.Header.Get("Link"))
	if m == nil {
		return nil, errFmt("no next link on /users?limit=2: %q", resp.Header.Get("Link"))
	}
	s.nextUsers = m[1]
	u, _ := url.Parse(m[1])
	s.token = u.Query().Get("after")
	if _, err := get("/posts?limit=1&sort=-likes", &posts); err != nil {
		return nil, err
	}
	s.post, s.postID, s.authorID = posts[0], posts[0]["_id"].(string), posts[0]["author_id"].(string)
	return s, nil
})

func mustSamples(t *testing.T) *sampleDocs {
	t.Helper()
	s, err := samples()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestEndToEnd sends the requests of the example's end-to-end suite (and
// follows the links they answer) and checks each against the document.
func TestEndToEnd(t *testing.T) {
	s := mustSamples(t)
	q := url.QueryEscape
	name := s.user["name"].(string)
	xs := []exchange{
		{target: "/users"},
		{target: "/users?limit=100"},
		{target: "/users?name=" + q(name) + "&sort=age&limit=100&count=exact"},
		{target: "/users?email=" + q(s.user["email"].(string))},
		{target: "/users?age=30&sort=age&limit=100&count=exact"},
		{target: "/users?age[gte]=70&age[lt]=72&sort=age&limit=100&count=exact"},
		{target: "/users?tags=go&age[lt]=40&sort=age&limit=100"},
		{target: "/users?tags[in]=music,cooking&profile.city=Berlin&sort=age&limit=100"},
		{target: "/users?profile.city=" + q("São Paulo") + "&sort=age&limit=100"},
		{target: "/users?profile.city[ne]=Lisbon&age[lte]=20&sort=age&limit=100"},
		{target: "/users?created[gte]=2022-01-01&created[lt]=2022-03-01&sort=age&limit=100"},
		{target: "/users?filter=" + q(`{"$or":[{"age":{"$lt":19}},{"profile.city":"Osaka","tags":"go"}]}`) + "&sort=age&limit=100"},
		{target: "/users?age[gte]=75&sort=-name&limit=25&count=exact"},
		{target: "/users?sort=-age,name&limit=30"},
		{target: "/users?sort=-created&limit=10"},
		{target: "/users?fields=name,profile.city&limit=5"},
		{target: "/users?limit=4", header: []string{"Accept", "application/x-ndjson"}},
		{target: "/users?limit=3&count=estimated", header: []string{"Accept", "application/json, application/x-ndjson;q=0.5"}},
		{method: "HEAD", target: "/users?limit=2"},
		{target: s.nextUsers},
		{target: "/users/" + s.userID},
		{target: "/users/" + strings.ToUpper(s.userID)},
		{target: "/users/" + s.userID + "?fields=email"},
		{method: "HEAD", target: "/users/" + s.userID},
		{target: "/users/" + s.authorID + "/posts?limit=100&count=exact"},
		{target: "/users/" + s.authorID + "/posts?sort=-likes&limit=2"},
		{target: "/users/" + s.authorID + "/posts?author_id=" + s.userID},
		{target: "/users/" + s.authorID + "/posts?filter=" + q(`{"$or":[{"author_id":{"$oid":"`+s.userID+`"}},{"likes":{"$gte":0}}],"author_id":"`+s.userID+`"}`)},
		{target: "/posts?limit=15"},
		{target: "/posts?likes[gte]=1950&limit=100&count=exact"},
		{target: "/posts?author_id=" + s.userID + "&limit=100"},
		{target: "/posts?title=" + q(s.post["title"].(string)) + "&published[lt]=2023-01-01&limit=100"},
		{target: "/posts?filter=" + q(`{"published":{"$gte":{"$date":"2025-06-01T00:00:00Z"}},"likes":{"$gt":500}}`) + "&limit=100"},
		{target: "/posts/" + s.postID},
		{target: "/posts?limit=3", header: []string{"Accept", "application/x-ndjson"}},
		{target: "/posts?embed=author&limit=5"},
		{target: "/posts/" + s.postID + "?embed=author"},
		{target: "/users/" + s.authorID + "/posts?embed=author&limit=2", header: []string{"Accept", "application/x-ndjson"}},
		{target: "/users/" + s.authorID + "/stats"},
		{target: "/posts/stats"},
		{target: "/posts/stats?likes[gte]=1000&published[lt]=2025-01-01"},
		{method: "HEAD", target: "/posts/stats"},
		{target: "/healthz"},
		{method: "HEAD", target: "/healthz"},
		{target: "/openapi.json"},
		{method: "HEAD", target: "/openapi.json"},
	}
	runAll(t, xs)

	// Conditional requests and links, which need an answer first.
	c, _ := theChecker()
	resp, _ := c.run(t, exchange{target: "/users/" + s.userID})
	c.run(t, exchange{target: "/users/" + s.userID, header: []string{"If-None-Match", resp.Header.Get("ETag")}})
	resp, _ = c.run(t, exchange{target: "/openapi.json"})
	c.run(t, exchange{target: "/openapi.json", header: []string{"If-None-Match", resp.Header.Get("ETag")}})
	for target, pages := "/users?age[gte]=75&sort=-name&limit=25&count=exact", 0; target != "" && pages < 10; pages++ {
		resp, _ := c.run(t, exchange{target: target})
		target = ""
		if m := regexp.MustCompile(`^<([^>]+)>; rel="next"$`).FindStringSubmatch(resp.Header.Get("Link")); m != nil {
			target = m[1]
		}
	}
}

// TestHostileInput sends the requests of the example's hostile suite:
// the document must refuse every one the service refuses, with a code it
// lists, except those only a check on arrival can refuse, which are
// marked with their code.
func TestHostileInput(t *testing.T) {
	s := mustSamples(t)
	q := url.QueryEscape
	tampered := []byte(s.token)
	i := len(tampered) / 2
	tampered[i] = map[bool]byte{true: 'B', false: 'A'}[tampered[i] == 'A']
	user, post := s.userID, s.postID
	xs := []exchange{
		// Operator injection.
		{target: "/users?name[$ne]=x"},
		{target: "/users?$where=sleep(1000)"},
		{target: "/users?filter=" + q(`{"$where":"sleep(1000)"}`)},
		{target: "/users?filter=" + q(`{"$or":[{"age":1},{"$where":"1"}]}`)},
		{target: "/users?filter=" + q(`{"$expr":{"$gt":["$age",1]}}`)},
		{target: "/users?name[regex]=^A"},
		{target: "/users?filter=" + q(`{"name":{"$regex":"^A"}}`)},
		{target: "/users?age[foo]=1"},
		{target: "/posts?likes[$gt]=1"},

		// The hidden field, every way in.
		{target: "/users?password_hash=x"},
		{target: "/users?password_hash[exists]=true"},
		{target: "/users?filter=" + q(`{"password_hash":{"$exists":true}}`)},
		{target: "/users?filter=" + q(`{"$or":[{"password_hash":"x"},{"age":30}]}`)},
		{target: "/users?filter=" + q(`{"$nor":[{"password_hash":{"$gt":""}}]}`)},
		{target: "/users?sort=password_hash"},
		{target: "/users?sort=age,-password_hash"},
		{target: "/users?fields=password_hash"},
		{target: "/users?fields=name,password_hash"},
		{target: "/users/" + user + "?fields=password_hash"},

		// Other fields that are not allowed.
		{target: "/users?profile.score=5"},
		{target: "/users?filter=" + q(`{"profile.score":{"$gt":5}}`)},
		{target: "/users?sort=email"},
		{target: "/posts?fields=title"},

		// Values of the wrong type.
		{target: "/users?age=thirty"},
		{target: "/users?created[gte]=yesterday"},
		{target: "/users?filter=" + q(`{"age":"30"}`)},
		{target: "/users?filter=" + q(`{age:30`)},
		{target: "/posts?author_id=bob"},

		// Limits and paging.
		{target: "/users?limit=0"},
		{target: "/users?limit=-1"},
		{target: "/users?limit=ten"},
		{target: "/users?limit=101"},
		{target: "/users?limit=99999999999999999999999"},
		{target: "/users?skip=1000000"},
		{target: "/users?after=garbage", runtime: "invalid_cursor"},
		{target: "/users?limit=2&after=" + string(tampered), runtime: "invalid_cursor"},
		{target: "/users?sort=age&after=" + s.token, runtime: "invalid_cursor"},
		{target: "/users?after=" + s.token + "&skip=2", runtime: "invalid_parameter"},
		{target: "/users?count=all"},
		{target: "/users?limit=5&limit=6"},
		{target: "/users?name=" + strings.Repeat("a", 5000), runtime: "limit_exceeded"},

		// Unknown parameters.
		{target: "/users?admin=true"},
		{target: "/users/" + user + "?admin=true"},
		{target: "/posts/" + post + "?likes=1"},

		// Ids.
		{target: "/users/xyz"},
		{target: "/users/zzzzzzzzzzzzzzzzzzzzzzzz"},
		{target: "/users/" + user + "00"},
		{target: "/users/" + url.PathEscape(`{"$ne":null}`)},
		{target: "/users/0123456789abcdef01234567"},
		{target: "/users/xyz/posts"},
		{target: "/users/0123456789abcdef01234567/posts"},
		{target: "/posts/" + post[:23]},
		{target: "/posts/0123456789abcdef01234567"},
		{target: "/posts/" + user},
		{target: "/users/xyz/stats"},
		{target: "/users/0123456789abcdef01234567/stats"},

		// Relations and aggregations.
		{target: "/posts?embed=nope"},
		{target: "/posts?embed=author,author"},
		{target: "/posts?embed="},
		{target: "/users?embed=author"},
		{target: "/posts/stats?sort=likes"},
		{target: "/posts/stats?limit=5"},
		{target: "/posts/stats?password_hash=x"},

		// Methods.
		{method: "POST", target: "/users"},
		{method: "DELETE", target: "/users/" + user},
		{method: "PUT", target: "/users/" + user + "/posts"},
		{method: "PATCH", target: "/posts/" + post},
		{method: "POST", target: "/posts"},
		{method: "POST", target: "/healthz"},
		{method: "POST", target: "/users/" + user + "/stats"},
		{method: "DELETE", target: "/posts"},
		{method: "POST", target: "/openapi.json"},

		// Paths no route serves.
		{target: "/admin"},
		{target: "/users/"},
		{target: "/users/" + user + "/posts/" + post},
	}
	runAll(t, xs)
}

// TestCheckerRefusesWrongAnswers makes sure the checks above can fail:
// answers the document does not describe are reported.
func TestCheckerRefusesWrongAnswers(t *testing.T) {
	c, err := theChecker()
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, service.base+"/users?limit=1", nil)
	v := c.judge(req)
	if !v.accepted() {
		t.Fatalf("/users?limit=1: %s", v)
	}
	page := http.Header{"Content-Type": {"application/json"}, "X-Request-Id": {"0123456789abcdef"}}
	if errs := c.answerErrors(v.input, 200, page, []byte(`[{"_id":"5feee5b37448184aad5332d6","age":30}]`)); len(errs) > 0 {
		t.Fatalf("a right answer is refused: %v", errs)
	}
	problem := http.Header{"Content-Type": {"application/problem+json"}, "X-Request-Id": {"0123456789abcdef"}}
	for name, answer := range map[string]struct {
		status int
		header http.Header
		body   string
	}{
		"an id that is no ObjectID":   {200, page, `[{"_id":"x"}]`},
		"an age that is no integer":   {200, page, `[{"_id":"5feee5b37448184aad5332d6","age":"30"}]`},
		"a document that is no array": {200, page, `{"_id":"5feee5b37448184aad5332d6"}`},
		"a count that is no number":   {200, http.Header{"Content-Type": {"application/json"}, "X-Total-Count": {"many"}}, `[]`},
		"an undocumented status":      {418, page, `[]`},
		"an undocumented media type":  {200, http.Header{"Content-Type": {"text/csv"}}, `_id`},
		"a code not listed for 400":   {400, problem, `{"type":"urn:mongohttp:problem:not_found","title":"Not found","status":400,"code":"not_found"}`},
		"a 503 without Retry-After":   {503, problem, `{"type":"urn:mongohttp:problem:unavailable","title":"Database unavailable","status":503,"code":"unavailable"}`},
	} {
		if errs := c.answerErrors(v.input, answer.status, answer.header, []byte(answer.body)); len(errs) == 0 {
			t.Errorf("%s: not reported", name)
		}
	}
}
