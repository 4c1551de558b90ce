package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// TestMain lets the test binary play the serve role, as the program does:
// the orchestrator under test starts os.Executable() in that role.
func TestMain(m *testing.M) {
	if os.Getenv(roleEnv) == roleServe {
		if err := serveMain(os.Stdin, os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, "bench serve:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestSmoke runs the whole program on tiny data with tiny rounds: the
// example's database as a child, the seed, the serve role, every case,
// the report.
func TestSmoke(t *testing.T) {
	cfg, err := parseFlags([]string{
		"-docs", "300", "-limits", "10", "-exports", "100,300", "-bulk", "1200",
		"-rounds", "1", "-export-rounds", "1", "-bulk-rounds", "1", "-duration", "200ms", "-warmup", "0", "-conns", "4",
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cfg.uri = "" // always the example's own database: never reseed a server of the user's
	if raceEnabled {
		cfg.buildFlags = []string{"-race"} // shares the build cache with the example's own tests
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	var out, log bytes.Buffer
	if err := run(ctx, cfg, &out, &log); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	for _, want := range []string{
		"| Find, limit 10 | mongohttp `Find[bson.Raw]` |",
		"| FindOne by _id | mongohttp `FindOne[bson.Raw]` |",
		"| 300 | mongohttp `Find[bson.Raw]` |",
		"| Export of 300 documents: peak heap through mongohttp < 16 MiB |",
		"| Insert one document | mongohttp `Insert[bson.Raw]` |",
		"| Patch one field | mongohttp `Patch[bson.Raw]` |",
		"|  | hand-written (`FindOneAndUpdate`) |",
		"| 1,200 | mongohttp `Insert[bson.Raw]` |",
		"|  | hand-written (`bufio.Scanner`, `InsertMany`) |",
		"| Patch one field: CPU/req of `Patch[bson.Raw]` ≤ 1.0× hand-written (`UpdateOne` + `FindOne`) |",
		"|  | mongohttp `FindOne[bson.Raw]` + otelmongohttp |",
		"|  | mongohttp `FindOne[bson.Raw]` + otelhttp, command spans |",
		"| FindOne by _id: CPU/req with otelmongohttp ≤ 1.10× without | ",
		"× (otelhttp and a span per command: ",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestUserDoc(t *testing.T) {
	a, b := userDoc(7), userDoc(7)
	ra, _ := bson.Marshal(a)
	rb, _ := bson.Marshal(b)
	if !bytes.Equal(ra, rb) {
		t.Fatal("userDoc is not deterministic")
	}
	var u User
	if err := bson.Unmarshal(ra, &u); err != nil {
		t.Fatal(err)
	}
	if u.Name == "" || u.Email == "" || u.Age < 18 || len(u.Tags) == 0 || u.Profile.City == "" || u.Created.IsZero() {
		t.Errorf("incomplete user: %+v", u)
	}
	if h, _ := bson.Raw(ra).LookupErr("password_hash"); !strings.HasPrefix(h.StringValue(), "$2a$10$") {
		t.Errorf("password_hash = %v", h)
	}
	if ids := sampleIDs(10, 1000); len(ids) != 10 || ids[0] == ids[1] {
		t.Errorf("sampleIDs = %v", ids)
	}
}

func TestUserJSON(t *testing.T) {
	var got map[string]any
	if err := json.Unmarshal(userJSON(7), &got); err != nil {
		t.Fatal(err)
	}
	if _, ok := got["_id"]; ok {
		t.Errorf("the body carries an _id: %v", got)
	}
	if _, ok := got["password_hash"]; ok {
		t.Errorf("the body carries the hidden field: %v", got)
	}
	var u User
	raw, _ := bson.Marshal(userDoc(7))
	if err := bson.Unmarshal(raw, &u); err != nil {
		t.Fatal(err)
	}
	if got["name"] != u.Name || got["age"] != float64(u.Age) || got["created"] != u.Created.Format(time.RFC3339Nano) {
		t.Errorf("userJSON(7) = %v, not user %+v", got, u)
	}
	for _, k := range []string{"email", "tags", "profile"} {
		if got[k] == nil {
			t.Errorf("userJSON(7) lacks %s: %v", k, got)
		}
	}
}

func TestNDJSONReader(t *testing.T) {
	lines := [][]byte{[]byte("{\"a\":1}\n"), []byte("{\"b\":22}\n")}
	for _, bufSize := range []int{1, 3, 7, 4096} {
		var out bytes.Buffer
		r := newNDJSONReader(lines, 5)
		buf := make([]byte, bufSize)
		for {
			n, err := r.Read(buf)
			out.Write(buf[:n])
			if err == io.EOF {
				break
			}
			if err != nil || n == 0 {
				t.Fatalf("Read: %d, %v", n, err)
			}
		}
		want := "{\"a\":1}\n{\"b\":22}\n{\"a\":1}\n{\"b\":22}\n{\"a\":1}\n"
		if out.String() != want {
			t.Errorf("buffer of %d: %q, want %q", bufSize, out.String(), want)
		}
	}
}

func TestHandUserPatchSet(t *testing.T) {
	var p handUserPatch
	if err := json.Unmarshal([]byte(`{"age":30,"profile":{"city":"Lisbon"},"tags":[]}`), &p); err != nil {
		t.Fatal(err)
	}
	got, _ := bson.MarshalExtJSON(p.set(), false, false)
	if want := `{"age":30,"tags":[],"profile.city":"Lisbon"}`; string(got) != want {
		t.Errorf("$set = %s, want %s", got, want)
	}
}

func TestParseCases(t *testing.T) {
	cfg, err := parseFlags([]string{"-cases", "insert, bulk", "-bulk", "5"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.cases) != 2 || !cfg.cases["insert"] || !cfg.cases["bulk"] || cfg.bulk != 5 {
		t.Errorf("cases %v, bulk %d", cfg.cases, cfg.bulk)
	}
	cfg, err = parseFlags([]string{"-quick"}, io.Discard)
	if err != nil || cfg.bulk != 10000 || cfg.bulkRounds != 1 || len(cfg.cases) != len(allCases) {
		t.Errorf("-quick: bulk %d, rounds %d, cases %v, %v", cfg.bulk, cfg.bulkRounds, cfg.cases, err)
	}
	for _, args := range [][]string{{"-cases", "upsert"}, {"-bulk", "0"}, {"-bulk-rounds", "0"}} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}

func TestStatistics(t *testing.T) {
	if got := median([]float64{3, 1, 2}); got != 2 {
		t.Errorf("median = %v", got)
	}
	if got := median([]float64{4, 1, 2, 3}); got != 2.5 {
		t.Errorf("median = %v", got)
	}
	lat := make([]time.Duration, 100)
	for i := range lat {
		lat[i] = time.Duration(i+1) * time.Millisecond
	}
	if p50, p99 := percentile(lat, 0.5), percentile(lat, 0.99); p50 != 50*time.Millisecond || p99 != 99*time.Millisecond {
		t.Errorf("p50 %v, p99 %v", p50, p99)
	}
	if got := fmtCount(1234567); got != "1,234,567" {
		t.Errorf("fmtCount = %q", got)
	}
	if got := rotate([]string{"a", "b", "c"}, 4); strings.Join(got, "") != "bca" {
		t.Errorf("rotate = %v", got)
	}
	if a, b := slicesPerRound(3*time.Second), slicesPerRound(200*time.Millisecond); a != 6 || b != 1 {
		t.Errorf("slices per round: %d for 3 s, %d for 200 ms; want 6 and 1", a, b)
	}
}

// TestSlices checks that a round's slices add up: its figures per request
// are the sums over its slices divided by their requests, its latencies
// those of every slice.
func TestSlices(t *testing.T) {
	ms := time.Millisecond
	one := &slice{
		load:  loadResult{ok: 2, elapsed: 500 * ms, lat: []time.Duration{3 * ms, 1 * ms}, bytes: 200, byStatus: map[int]int{}},
		stats: processStats{CPU: 2 * ms, SysCPU: ms, Allocs: 100, AllocBytes: 1000},
	}
	two := &slice{
		load:  loadResult{ok: 3, errs: 1, firstErr: errors.New("409"), elapsed: 500 * ms, lat: []time.Duration{2 * ms, 5 * ms, 4 * ms}, bytes: 300, byStatus: map[int]int{409: 1}},
		stats: processStats{CPU: 3 * ms, SysCPU: 2 * ms, Allocs: 150, AllocBytes: 1500},
	}
	one.add(two)
	rr, err := one.result(benchCase{name: "case"}, "v")
	if err != nil {
		t.Fatal(err)
	}
	want := roundResult{RPS: 5, P50: 3 * ms, P99: 5 * ms, CPU: ms, SysCPU: 600 * time.Microsecond, Allocs: 50, Bytes: 500, Body: 100, Requests: 5, Errors: 1, FirstErr: "409"}
	if rr != want {
		t.Errorf("round:\n got %+v\nwant %+v", rr, want)
	}
	if _, err := (&slice{load: loadResult{byStatus: map[int]int{}}}).result(benchCase{name: "case"}, "v"); err == nil {
		t.Error("a round without a finished request has figures")
	}
}

func TestFirstDiff(t *testing.T) {
	decode := func(s string) any {
		dec := json.NewDecoder(strings.NewReader(s))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	same := [][2]string{
		{`{"a":45,"t":"2021-01-14T01:22:29.81Z"}`, `{"t":"2021-01-14T01:22:29.810Z","a":45.0}`},
		{`[{"x":[1,"y"]}]`, `[{"x":[1,"y"]}]`},
	}
	for _, c := range same {
		if d := firstDiff(decode(c[0]), decode(c[1]), ""); d != "" {
			t.Errorf("%s vs %s: %s", c[0], c[1], d)
		}
	}
	differ := [][2]string{
		{`{"a":1}`, `{"a":2}`},
		{`{"a":1}`, `{"a":1,"b":1}`},
		{`[1]`, `[1,2]`},
		{`{"t":"2021-01-14T01:22:29.81Z"}`, `{"t":"2021-01-14T01:22:29.811Z"}`},
	}
	for _, c := range differ {
		if d := firstDiff(decode(c[0]), decode(c[1]), ""); d == "" {
			t.Errorf("%s vs %s: no difference found", c[0], c[1])
		}
	}
}

// TestReportWrites checks the write rows, the tolerated answers' note and
// the CPU target of a write case, on made-up figures.
func TestReportWrites(t *testing.T) {
	c := caseResult{benchCase: benchCase{name: "Patch one field", op: "Patch", variants: patchVariants, tolerate: 409},
		rounds: map[string][]roundResult{
			variantRaw:         {{CPU: 300 * time.Microsecond, Requests: 98, Errors: 2, FirstErr: "PATCH /x: 409 Conflict"}},
			variantStruct:      {{CPU: 400 * time.Microsecond, Requests: 100}},
			variantHand:        {{CPU: 200 * time.Microsecond, Requests: 100}},
			variantHandFAU:     {{CPU: 100 * time.Microsecond, Requests: 100}},
			variantHandClaimed: {{CPU: 250 * time.Microsecond, Requests: 100}},
		}}
	var out bytes.Buffer
	report{cfg: config{rounds: 1}, cases: []caseResult{c}}.write(&out)
	for _, want := range []string{
		"|  | hand-written (`FindOneAndUpdate`) |",
		"- Patch one field, mongohttp `Patch[bson.Raw]`: 2 of 100 requests answered 409;",
		"| Patch one field: CPU/req of `Patch[bson.Raw]` ≤ 1.0× hand-written (`UpdateOne` + `FindOne`) | 1.50× (3.00× hand-written (`FindOneAndUpdate`)) | **missed** |",
		"| Patch one field, same guarantee on FerretDB: CPU/req of `Patch[bson.Raw]` ≤ 1.0× hand-written with a claim (`FindOne`, claim, `FindOneAndUpdate`) | 1.20× | **missed** |",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the report lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "allocs/req of every mongohttp read handler") {
		t.Errorf("a write case counted in the reads' targets:\n%s", out.String())
	}
}
