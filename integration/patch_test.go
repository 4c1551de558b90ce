package integration_test

import (
	"fmt"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// TestDistinctFieldPatchesRarelyGiveUp: four clients patch one document
// 25 times each, without If-Match, each its own field. The server merges
// each patch into the version it read and retries when another writer
// came first, so almost none gives up (409) and no update is lost: each
// field ends at its writer's last accepted value.
func TestDistinctFieldPatchesRarelyGiveUp(t *testing.T) {
	f := newWriteFixture(t, nil)
	id, _ := f.insertNote(t, "/notes", `{"title":"t","likes":0}`)
	const each = 25
	writers := []func(i int) string{
		func(i int) string { return fmt.Sprintf(`{"title":"title %d"}`, i) },
		func(i int) string { return fmt.Sprintf(`{"likes":%d}`, i) },
		func(i int) string { return fmt.Sprintf(`{"tags":["tag %d"]}`, i) },
		func(i int) string { return fmt.Sprintf(`{"city":{"name":"city %d"}}`, i) },
	}
	lastOK := make([]int, len(writers))
	gaveUp := make([]int, len(writers))
	var wg sync.WaitGroup
	for w, patch := range writers {
		wg.Go(func() {
			for i := 1; i <= each; i++ {
				got := f.send(t, "PATCH", "/notes/"+id, "application/merge-patch+json", patch(i))
				switch got.status {
				case 200:
					lastOK[w] = i
				case 409:
					gaveUp[w]++
				default:
					t.Errorf("writer %d, patch %d: %d %s", w, i, got.status, got.body)
				}
			}
		})
	}
	wg.Wait()
	total := 0
	for _, n := range gaveUp {
		total += n
	}
	rate := float64(total) / float64(len(writers)*each)
	t.Logf("%d of %d patches gave up (%.0f %%); per writer %v", total, len(writers)*each, 100*rate, gaveUp)
	if rate > 0.05 {
		t.Errorf("%.0f %% of the patches gave up with 409; want at most 5 %%", 100*rate)
	}
	stored := f.stored(t, id)
	want := []any{fmt.Sprintf("title %d", lastOK[0]), int32(lastOK[1]), fmt.Sprintf("tag %d", lastOK[2]), fmt.Sprintf("city %d", lastOK[3])}
	got := []any{stored["title"], stored["likes"], nil, cityName(stored)}
	if tags, ok := stored["tags"].(bson.A); ok && len(tags) == 1 {
		got[2] = tags[0]
	}
	for w := range writers {
		if lastOK[w] > 0 && got[w] != want[w] {
			t.Errorf("writer %d: stored %v, want its last accepted value %v (lost update)", w, got[w], want[w])
		}
	}
}
