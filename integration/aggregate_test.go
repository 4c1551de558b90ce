package integration_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mongohttp/mongohttp"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

type sale struct {
	ID     bson.ObjectID `bson:"_id"`
	Month  string        `bson:"month"`
	Region string        `bson:"region"`
	Shop   string        `bson:"shop"`
	Amount int32         `bson:"amount"`
	Secret string        `bson:"secret"`
}

var salesPolicy = mongohttp.Policy{
	Filter: map[string]mongohttp.Type{"region": mongohttp.String, "amount": mongohttp.Int, "month": mongohttp.String},
	Hidden: []string{"secret"},
}

// unitParam lets the client choose the grouping key among stored fields,
// without ever writing a field path.
var unitParam = mongohttp.Param{Choices: map[string]any{"month": "$month", "region": "$region"}, Default: "month"}

// countsBy counts sales per unit: one accumulator per $group, since
// FerretDB 1.24 computes only the first accumulator of a $group.
var countsBy = mongohttp.Aggregation{
	Pipeline: mongo.Pipeline{
		{{Key: "$group", Value: bson.D{{Key: "_id", Value: mongohttp.Arg("unit")}, {Key: "sales", Value: bson.D{{Key: "$sum", Value: 1}}}}}},
		{{Key: "$sort", Value: bson.D{{Key: "_id", Value: 1}}}},
		{{Key: "$limit", Value: mongohttp.Arg("top")}},
	},
	Params: map[string]mongohttp.Param{
		"unit": unitParam,
		"top":  {Type: mongohttp.Int, Min: "1", Max: "100", Default: "100"},
	},
}

// totalsBy gives, per unit, the number of sales and their amount, each
// from a pipeline of its own, combined by Reduce.
var totalsBy = mongohttp.Aggregation{
	Facets: map[string]mongo.Pipeline{
		"count": {{{Key: "$group", Value: bson.D{{Key: "_id", Value: mongohttp.Arg("unit")}, {Key: "n", Value: bson.D{{Key: "$sum", Value: 1}}}}}}},
		"sum":   {{{Key: "$group", Value: bson.D{{Key: "_id", Value: mongohttp.Arg("unit")}, {Key: "n", Value: bson.D{{Key: "$sum", Value: "$amount"}}}}}}},
	},
	Params: map[string]mongohttp.Param{"unit": unitParam},
	Reduce: func(r *http.Request, results map[string][]bson.Raw) (any, error) {
		type row struct {
			Key    string `bson:"key"`
			Sales  int64  `bson:"sales"`
			Amount int64  `bson:"amount"`
		}
		rows := map[string]*row{}
		get := func(doc bson.Raw) *row {
			key := doc.Lookup("_id").StringValue()
			if rows[key] == nil {
				rows[key] = &row{Key: key}
			}
			return rows[key]
		}
		out := struct {
			Sales  int64  `bson:"sales"`
			Amount int64  `bson:"amount"`
			Rows   []*row `bson:"rows"`
			Secret string `bson:"secret"` // a hidden path: never answered
		}{Rows: []*row{}, Secret: "s3cr3t-reduce"}
		for _, doc := range results["count"] {
			n := doc.Lookup("n").AsInt64()
			get(doc).Sales, out.Sales = n, out.Sales+n
		}
		for _, doc := range results["sum"] {
			n := doc.Lookup("n").AsInt64()
			get(doc).Amount, out.Amount = n, out.Amount+n
		}
		for _, k := range slices.Sorted(func(yield func(string) bool) {
			for k := range rows {
				if !yield(k) {
					return
				}
			}
		}) {
			out.Rows = append(out.Rows, rows[k])
		}
		return out, nil
	},
}

type salesFixture struct {
	log   *commandLog
	sales []sale
	srv   *httptest.Server
}

func newSalesFixture(t *testing.T) *salesFixture {
	t.Helper()
	c, log := connectLogged(t)
	coll := database(t, c).Collection("sales")
	f := &salesFixture{log: log}
	var docs []any
	for i := range 240 {
		s := sale{
			ID: bson.NewObjectID(), Month: fmt.Sprintf("2024-%02d", 1+i%12), Region: []string{"north", "south", "east"}[i%3],
			Shop: []string{"a", "b"}[i%2], Amount: int32(i * 7 % 101), Secret: "s3cr3t",
		}
		f.sales = append(f.sales, s)
		docs = append(docs, s)
	}
	if _, err := coll.InsertMany(context.Background(), docs); err != nil {
		t.Fatal(err)
	}
	decl := mongohttp.Collection[bson.Raw]{Client: c, Coll: coll, Policy: salesPolicy}
	shopA := decl
	shopA.BaseFilter = func(*http.Request) (bson.D, error) { return bson.D{{Key: "shop", Value: "a"}}, nil }
	mustAggregate := func(decl mongohttp.Collection[bson.Raw], a mongohttp.Aggregation) http.Handler {
		h, err := mongohttp.Must(mongohttp.New(decl)).Aggregate(a)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	passThrough := mongohttp.Aggregation{Pipeline: mongo.Pipeline{{{Key: "$sort", Value: bson.D{{Key: "amount", Value: -1}, {Key: "_id", Value: 1}}}}}, MaxResults: 300}
	small := countsBy
	small.MaxResults = 5
	unsupported := mongohttp.Aggregation{Pipeline: mongo.Pipeline{{{Key: "$lookup", Value: bson.D{
		{Key: "from", Value: "users"}, {Key: "localField", Value: "shop"}, {Key: "foreignField", Value: "_id"}, {Key: "as", Value: "u"},
	}}}}}
	mux := http.NewServeMux()
	mux.Handle("/counts", mustAggregate(decl, countsBy))
	mux.Handle("/shop-a/counts", mustAggregate(shopA, countsBy))
	mux.Handle("/totals", mustAggregate(decl, totalsBy))
	mux.Handle("/all", mustAggregate(decl, passThrough))
	mux.Handle("/small", mustAggregate(decl, small))
	mux.Handle("/lookup", mustAggregate(decl, unsupported))
	// Past a look-ahead of 1 KiB the results stream; past MaxResults the
	// stream is cut.
	streamed := decl
	streamed.Lookahead = 1 << 10
	capped := passThrough
	capped.MaxResults = 100
	mux.Handle("/all-streamed", mustAggregate(streamed, passThrough))
	mux.Handle("/all-capped", mustAggregate(streamed, capped))
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	f.log.reset()
	return f
}

func (f *salesFixture) get(t *testing.T, target string, header ...string) response {
	t.Helper()
	req, err := http.NewRequest("GET", f.srv.URL+target, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(body, []byte("s3cr3t")) || bytes.Contains(body, []byte(`"secret"`)) {
		t.Fatalf("%s leaked the hidden field: %s", target, body)
	}
	return response{resp.StatusCode, resp.Header, body}
}

// expectCounts counts the sales that keep holds by key, sorted by key.
func (f *salesFixture) expectCounts(key func(sale) string, keep func(sale) bool) (keys []string, counts map[string]int64, amounts map[string]int64) {
	counts, amounts = map[string]int64{}, map[string]int64{}
	for _, s := range f.sales {
		if keep(s) {
			counts[key(s)]++
			amounts[key(s)] += int64(s.Amount)
		}
	}
	for k := range counts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys, counts, amounts
}

type countRow struct {
	ID    string `json:"_id"`
	Sales int64  `json:"sales"`
}

func TestAggregateStreams(t *testing.T) {
	f := newSalesFixture(t)
	byMonth := func(s sale) string { return s.Month }
	byRegion := func(s sale) string { return s.Region }
	for _, tt := range []struct {
		target string
		key    func(sale) string
		keep   func(sale) bool
		top    int
	}{
		{"/counts", byMonth, func(sale) bool { return true }, 100},
		{"/counts?unit=region", byRegion, func(sale) bool { return true }, 100},
		{"/counts?unit=region&amount[gte]=50", byRegion, func(s sale) bool { return s.Amount >= 50 }, 100},
		{"/counts?region=north&top=3", byMonth, func(s sale) bool { return s.Region == "north" }, 3},
		{`/counts?filter={"$or":[{"region":"east"},{"amount":{"$lt":10}}]}`, byMonth, func(s sale) bool { return s.Region == "east" || s.Amount < 10 }, 100},
		{"/shop-a/counts?unit=region&region[in]=north,south", byRegion, func(s sale) bool { return s.Shop == "a" && s.Region != "east" }, 100},
	} {
		t.Run(tt.target, func(t *testing.T) {
			f.log.reset()
			r := f.get(t, tt.target)
			if r.status != 200 || r.header.Get("Content-Type") != "application/json" {
				t.Fatalf("%d %s: %s", r.status, r.header.Get("Content-Type"), r.body)
			}
			var got []countRow
			if err := json.Unmarshal(r.body, &got); err != nil {
				t.Fatal(err)
			}
			keys, counts, _ := f.expectCounts(tt.key, tt.keep)
			keys = keys[:min(len(keys), tt.top)]
			if len(got) != len(keys) {
				t.Fatalf("%d rows, want %d: %s", len(got), len(keys), r.body)
			}
			for i, k := range keys {
				if got[i].ID != k || got[i].Sales != counts[k] {
					t.Fatalf("row %d: %+v, want %s: %d", i, got[i], k, counts[k])
				}
			}
			// One aggregate command: the $match of the base filter and the
			// client's filter first, the service's stages, the $limit, and
			// the time limit.
			cmds := f.log.commands("aggregate")
			if len(cmds) != 1 || len(f.log.sent) != 1 {
				t.Fatalf("commands %v, want one aggregate", f.log.counts())
			}
			if ms, ok := cmds[0].Lookup("maxTimeMS").AsInt64OK(); !ok || ms <= 0 || ms > mongohttp.DefaultMaxTime.Milliseconds() {
				t.Fatalf("aggregate without the time limit: %s", cmds[0])
			}
			stages, _ := cmds[0].Lookup("pipeline").Array().Values()
			first := stages[0].Document().Index(0).Key()
			last := stages[len(stages)-1].Document().Lookup("$limit").AsInt64()
			hasMatch := strings.Contains(tt.target, "?") && !strings.HasSuffix(tt.target, "?unit=region") || strings.HasPrefix(tt.target, "/shop-a")
			if (first == "$match") != hasMatch || last != 1001 {
				t.Fatalf("pipeline sent: %s", cmds[0].Lookup("pipeline"))
			}
		})
	}

	// NDJSON on request, and HEAD.
	r := f.get(t, "/counts?unit=region", "Accept", "application/x-ndjson")
	lines := 0
	for sc := bufio.NewScanner(bytes.NewReader(r.body)); sc.Scan(); lines++ {
		var row countRow
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil || row.Sales != 80 {
			t.Fatalf("NDJSON line %q: %v", sc.Text(), err)
		}
	}
	if lines != 3 || r.header.Get("Content-Type") != mongohttp.NDJSON {
		t.Fatalf("NDJSON: %d lines, %s", lines, r.header.Get("Content-Type"))
	}
	head, err := http.Head(f.srv.URL + "/counts")
	if err != nil {
		t.Fatal(err)
	}
	head.Body.Close()
	if head.StatusCode != 200 || head.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("HEAD: %d %v", head.StatusCode, head.Header)
	}

	// A pipeline that passes documents through never shows a hidden field
	// (the leak check of get), and gives them all in order, whether they
	// fit in the look-ahead or stream past it.
	first := f.get(t, "/all")
	for _, target := range []string{"/all", "/all-streamed"} {
		r := f.get(t, target)
		var all []map[string]any
		if err := json.Unmarshal(r.body, &all); err != nil || len(all) != len(f.sales) {
			t.Fatalf("%s: %d documents, %v", target, len(all), err)
		}
		for i := 1; i < len(all); i++ {
			if all[i-1]["amount"].(float64) < all[i]["amount"].(float64) {
				t.Fatalf("%s: not sorted at %d", target, i)
			}
		}
		if !bytes.Equal(r.body, first.body) {
			t.Fatalf("%s differs from /all", target)
		}
	}
	// A stream that runs past MaxResults is cut: the client sees a broken
	// answer, never a short one that looks whole.
	// (The connection drops before or after the headers, depending on
	// what the writer had sent.)
	if resp, err := http.Get(f.srv.URL + "/all-capped"); err == nil {
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil && json.Valid(body) {
			t.Fatalf("capped stream: %d and %d bytes of valid JSON", resp.StatusCode, len(body))
		}
	}
}

func TestAggregateReduce(t *testing.T) {
	f := newSalesFixture(t)
	type totals struct {
		Sales  int64 `json:"sales"`
		Amount int64 `json:"amount"`
		Rows   []struct {
			Key    string `json:"key"`
			Sales  int64  `json:"sales"`
			Amount int64  `json:"amount"`
		} `json:"rows"`
	}
	for _, tt := range []struct {
		target string
		key    func(sale) string
		keep   func(sale) bool
	}{
		{"/totals", func(s sale) string { return s.Month }, func(sale) bool { return true }},
		{"/totals?unit=region&month[gte]=2024-06&month[lt]=2024-09", func(s sale) string { return s.Region }, func(s sale) bool { return s.Month >= "2024-06" && s.Month < "2024-09" }},
		{"/totals?amount[gt]=1000", func(s sale) string { return s.Month }, func(sale) bool { return false }},
	} {
		t.Run(tt.target, func(t *testing.T) {
			f.log.reset()
			r := f.get(t, tt.target)
			if r.status != 200 || r.header.Get("Content-Type") != "application/json" {
				t.Fatalf("%d: %s", r.status, r.body)
			}
			var got totals
			if err := json.Unmarshal(r.body, &got); err != nil {
				t.Fatal(err)
			}
			keys, counts, amounts := f.expectCounts(tt.key, tt.keep)
			var sales, amount int64
			for _, k := range keys {
				sales, amount = sales+counts[k], amount+amounts[k]
			}
			if got.Sales != sales || got.Amount != amount || len(got.Rows) != len(keys) {
				t.Fatalf("got %s; want %d sales, amount %d, %d rows", r.body, sales, amount, len(keys))
			}
			for i, k := range keys {
				if row := got.Rows[i]; row.Key != k || row.Sales != counts[k] || row.Amount != amounts[k] {
					t.Fatalf("row %d: %+v, want %s %d %d", i, row, k, counts[k], amounts[k])
				}
			}
			if n := len(f.log.commands("aggregate")); n != 2 {
				t.Fatalf("%d aggregate commands, want one per facet", n)
			}
		})
	}
}

func TestAggregateHostileInput(t *testing.T) {
	f := newSalesFixture(t)
	for _, tt := range []struct {
		target string
		status int
		code   string
	}{
		{"/counts?unit=$secret", 400, "invalid_parameter"},
		{"/counts?unit=day", 400, "invalid_parameter"},
		{"/counts?unit=", 400, "invalid_parameter"},
		{"/counts?unit=%00", 400, "invalid_parameter"},
		{"/counts?unit=%ff", 400, "invalid_parameter"},
		{"/counts?top=0", 400, "invalid_parameter"},
		{"/counts?top=101", 400, "invalid_parameter"},
		{"/counts?top=-1", 400, "invalid_parameter"},
		{"/counts?top=1e2", 400, "invalid_parameter"},
		{"/counts?top=99999999999999999999999", 400, "invalid_parameter"},
		{"/counts?top=1&top=2", 400, "invalid_parameter"},
		{"/counts?top[gt]=1", 400, "field_not_allowed"},
		{`/counts?top={"$gt":1}`, 400, "invalid_parameter"},
		{"/counts?sort=-sales", 400, "unknown_parameter"},
		{"/counts?limit=1", 400, "unknown_parameter"},
		{"/counts?skip=1", 400, "unknown_parameter"},
		{"/counts?fields=_id", 400, "unknown_parameter"},
		{"/counts?count=exact", 400, "unknown_parameter"},
		{"/counts?pipeline=[]", 400, "field_not_allowed"},
		{"/counts?$group=1", 400, "operator_not_allowed"},
		{"/counts?secret=x", 400, "field_not_allowed"},
		{"/counts?secret[eq]=x", 400, "field_not_allowed"},
		{"/counts?shop=a", 400, "field_not_allowed"},
		{"/counts?region[$ne]=x", 400, "operator_not_allowed"},
		{"/counts?amount=ten", 400, "invalid_parameter"},
		{`/counts?filter={"secret":"x"}`, 400, "field_not_allowed"},
		{`/counts?filter={"$where":"sleep(1000)"}`, 400, "operator_not_allowed"},
		{`/counts?filter={"$expr":{"$gt":["$amount",1]}}`, 400, "operator_not_allowed"},
		{`/counts?filter={"region":{"$function":{}}}`, 400, "operator_not_allowed"},
		{`/counts?filter=[{"$group":{}}]`, 400, "invalid_parameter"},
		{"/counts?" + strings.Repeat("a", 5000), 400, "limit_exceeded"},
		{"/totals?unit=shop", 400, "invalid_parameter"},
		{"/totals?top=3", 400, "field_not_allowed"},
		// More results than the aggregation allows: refused before any
		// byte of the answer.
		{"/small", 400, "limit_exceeded"},
		// A stage FerretDB does not execute: a 500 without its message.
		{"/lookup", 500, "internal"},
	} {
		t.Run(shortName(tt.target), func(t *testing.T) {
			f.log.reset()
			r := f.get(t, tt.target)
			if r.status != tt.status {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			checkProblem(t, r, tt.code)
			if strings.Contains(string(r.body), "not implemented") || strings.Contains(string(r.body), "$lookup") {
				t.Fatalf("the server's message reached the client: %s", r.body)
			}
			sent := len(f.log.commands("aggregate"))
			if tt.status == 400 && tt.code != "limit_exceeded" && sent != 0 {
				t.Fatalf("%d aggregate commands for a refused request", sent)
			}
		})
	}
	if r := f.get(t, "/small?unit=region"); r.status != 200 {
		t.Fatalf("3 results under a bound of 5: %d %s", r.status, r.body)
	}
	req, _ := http.NewRequest("DELETE", f.srv.URL+"/counts", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Fatalf("DELETE: %d %v", resp.StatusCode, resp.Header)
	}
}

// TestAggregateAdmission: an aggregation handler has its own place bound,
// as Find does.
func TestAggregateAdmission(t *testing.T) {
	c := connect(t, mongohttp.PoolConfig{})
	coll := database(t, c).Collection("sales")
	if _, err := coll.InsertOne(context.Background(), bson.D{{Key: "month", Value: "2024-01"}}); err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	res := mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{
		Client: c,
		Coll:   coll,
		BaseFilter: func(r *http.Request) (bson.D, error) {
			if r.Header.Get("X-Hold") != "" {
				once.Do(func() { close(entered) })
				<-release
			}
			return nil, nil
		},
		Admission: mongohttp.Admission{MaxActive: 1, MaxQueued: -1},
	}))
	agg, err := res.Aggregate(mongohttp.Aggregation{Pipeline: mongo.Pipeline{{{Key: "$count", Value: "n"}}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(agg)
	defer srv.Close()
	held := make(chan int)
	go func() {
		req, _ := http.NewRequest("GET", srv.URL, nil)
		req.Header.Set("X-Hold", "1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			held <- 0
			return
		}
		resp.Body.Close()
		held <- resp.StatusCode
	}()
	<-entered
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	refused := response{resp.StatusCode, resp.Header, body}
	if refused.status != 503 {
		t.Fatalf("while the only place is taken: %d %s", refused.status, refused.body)
	}
	checkProblem(t, refused, "overloaded")
	close(release)
	if s := <-held; s != 200 {
		t.Fatalf("held request ended %d", s)
	}
	// The held request's answer can reach the client a moment before its
	// handler gives its place back.
	var last string
	eventually(t, 10*time.Second, "a 200 once the place is free: "+last, func() bool {
		resp, err := http.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		last = fmt.Sprintf("%d %s", resp.StatusCode, body)
		return resp.StatusCode == 200
	})
	if last != `200 [{"n":1}]` {
		t.Fatalf("after release: %s", last)
	}
}

// shortName keeps subtest names readable for long targets.
func shortName(target string) string {
	if len(target) > 60 {
		return target[:60] + "…"
	}
	return target
}
