package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// writeCases are the loads of the write handlers: Insert POSTs the users
// of b.bodies in turn; Patch sets the age of the users of b.ids in turn, so
// that concurrent requests change different documents.
func (b *bench) writeCases() []benchCase {
	patches := make([][]byte, 62)
	for k := range patches {
		patches[k] = fmt.Appendf(nil, `{"age":%d}`, 18+k)
	}
	return []benchCase{
		{
			name: "Insert one document", key: writeInsert, op: "Insert", variants: insertVariants,
			req: func(v string) func(uint64) request {
				url := b.sc.base + "/" + v + "/inserts"
				return func(i uint64) request {
					return request{method: http.MethodPost, url: url, body: b.bodies[i%uint64(len(b.bodies))],
						contentType: "application/json", want: http.StatusCreated}
				}
			},
		},
		{
			// mongohttp answers 409 when a patch without If-Match fails its
			// versioned write 8 times running, which a loaded FerretDB
			// made happen now and then: such answers are counted and
			// reported rather than ending the run.
			name: "Patch one field", key: writePatch, op: "Patch", variants: patchVariants, tolerate: http.StatusConflict,
			req: func(v string) func(uint64) request {
				prefix := b.sc.base + "/" + v + "/patch/"
				ids := b.ids[:min(patchDocs, len(b.ids))]
				return func(i uint64) request {
					return request{method: http.MethodPatch, url: prefix + ids[i%uint64(len(ids))],
						body: patches[i%uint64(len(patches))], contentType: "application/merge-patch+json"}
				}
			},
		},
	}
}

// dropWrites drops the collections the variants write in case kind, so a
// case starts from empty ones, also in a reused -data directory.
func (b *bench) dropWrites(ctx context.Context, kind string, vs []string) error {
	for _, v := range vs {
		if err := b.db.Collection(writeColl(kind, v)).Drop(ctx); err != nil {
			return fmt.Errorf("dropping %s: %w", writeColl(kind, v), err)
		}
	}
	return nil
}

// bulkRound is one bulk insert of n documents, from the client's and the
// serve process's side.
type bulkRound struct {
	Total  time.Duration // request to answer
	Peak   uint64        // serve process heap objects, highest sample
	Start  uint64        // the same when the request began
	CPU    time.Duration
	Allocs float64
	Bytes  float64
}

type bulkResult struct {
	n      int
	rounds map[string][]bulkRound
}

// runBulk POSTs n users as one NDJSON stream to each bulk variant, into an
// empty collection each round, and checks that all of them were stored.
func (b *bench) runBulk(ctx context.Context, n int) (bulkResult, error) {
	res := bulkResult{n: n, rounds: map[string][]bulkRound{}}
	lines := make([][]byte, len(b.bodies))
	for i, body := range b.bodies {
		lines[i] = append(body[:len(body):len(body)], '\n')
	}
	for r := range b.cfg.bulkRounds {
		for _, v := range rotate(bulkVariants, r) {
			coll := b.db.Collection(writeColl(writeBulk, v))
			if err := coll.Drop(ctx); err != nil {
				return res, err
			}
			// Collect first, as for exports, so the heap holds what the
			// last round left behind no more than it must.
			if err := b.sc.gc(ctx); err != nil {
				return res, err
			}
			before, err := b.sc.stats(ctx)
			if err != nil {
				return res, err
			}
			start := time.Now()
			inserted, err := b.postBulk(ctx, b.sc.base+"/"+v+"/bulk", newNDJSONReader(lines, n))
			total := time.Since(start)
			if err != nil {
				return res, fmt.Errorf("bulk insert of %d documents, %s: %w", n, v, err)
			}
			after, err := b.sc.stats(ctx)
			if err != nil {
				return res, err
			}
			stored, err := coll.CountDocuments(ctx, bson.D{})
			if err != nil {
				return res, err
			}
			if inserted != n || stored != int64(n) {
				return res, fmt.Errorf("bulk insert of %d documents, %s: answered %d inserted, %d stored", n, v, inserted, stored)
			}
			br := bulkRound{
				Total: total, Peak: after.Export.Peak, Start: after.Export.Start,
				CPU:    after.CPU - before.CPU,
				Allocs: float64(after.Allocs - before.Allocs),
				Bytes:  float64(after.AllocBytes - before.AllocBytes),
			}
			res.rounds[v] = append(res.rounds[v], br)
			fmt.Fprintf(b.log, "bulk %d, round %d/%d, %-16s %-9s %8.0f docs/s  heap %.1f MiB at the start, %.1f MiB at the peak, CPU %s\n",
				n, r+1, b.cfg.bulkRounds, v, fmtDur(total), float64(n)/total.Seconds(), mib(br.Start), mib(br.Peak), fmtDur(br.CPU))
		}
	}
	if b.cfg.profileDir != "" {
		for _, v := range bulkVariants {
			if err := b.dropWrites(ctx, writeBulk, []string{v}); err != nil {
				return res, err
			}
			// The profiles cover the insert, which took about the
			// slowest round's time.
			slowest := slices.MaxFunc(res.rounds[v], func(a, b bulkRound) int { return cmp.Compare(a.Total, b.Total) })
			err := b.profiled(ctx, fmt.Sprintf("bulk%d-%s", n, v), max(1, int(math.Ceil(slowest.Total.Seconds()))), func() error {
				_, err := b.postBulk(ctx, b.sc.base+"/"+v+"/bulk", newNDJSONReader(lines, n))
				return err
			})
			if err != nil {
				return res, fmt.Errorf("profiling the bulk insert, %s: %w", v, err)
			}
		}
	}
	// Leave no copies behind in a reused -data directory.
	return res, b.dropWrites(ctx, writeBulk, bulkVariants)
}

// postBulk sends body as one NDJSON request and returns the "inserted"
// count of the answer.
func (b *bench) postBulk(ctx context.Context, url string, body *ndjsonReader) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, body)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := b.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	msg, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return 0, err
	}
	var answer struct {
		Inserted *int `json:"inserted"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(msg, &answer) != nil || answer.Inserted == nil {
		return 0, fmt.Errorf("%s: %s", resp.Status, msg)
	}
	return *answer.Inserted, nil
}
