package main

import (
	"encoding/json"
	"expvar"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/mongohttp/mongohttp"
)

// newOperatorMux builds the endpoints for the people who run the service,
// not for its clients: the pool statistics, and expvar, which shows the
// command line and the memory statistics. They are served on a listener of
// their own (-debug-addr, loopback by default), never on the public address.
// /metrics serves metrics in the Prometheus text format (nil: none).
// Later endpoints of the kind (profiles) belong here too: add them to the
// returned mux.
func newOperatorMux(client *mongohttp.Client, logger *slog.Logger, metrics http.Handler) *http.ServeMux {
	publishPoolStats(client)
	mux := http.NewServeMux()
	mux.Handle("/debug/pool", &mongohttp.StatsHandler{Client: client, Logger: logger})
	mux.Handle("/debug/vars", getOnly(expvar.Handler()))
	if metrics != nil {
		mux.Handle("/metrics", metrics)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		mongohttp.WriteError(w, r, mongohttp.ErrNotFound.Detailf("no operator endpoint serves this path; try /debug/pool, /debug/vars or /metrics"))
	})
	return mux
}

// getOnly lets GET and HEAD through to h and answers other methods 405.
func getOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			methodNotAllowed(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// poolStats is the client whose statistics /debug/vars shows under
// "mongohttp.pool". expvar.Publish panics on a second publication of a
// name, so the variable is published once per process and reads whichever
// client was built last (tests build several services in one process).
var poolStats struct {
	once   sync.Once
	client atomic.Pointer[mongohttp.Client]
}

func publishPoolStats(c *mongohttp.Client) {
	poolStats.client.Store(c)
	poolStats.once.Do(func() {
		expvar.Publish("mongohttp.pool", expvar.Func(func() any {
			return json.RawMessage(poolStats.client.Load().Expvar().String())
		}))
	})
}
