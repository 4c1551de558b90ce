// Package integration_test runs mongohttp against a real server:
// a FerretDB child process by default, or the server named by MONGODB_URI.
package integration_test

import (
	"context"
	"testing"
	"time"

	"github.com/mongohttp/mongohttp"
	"github.com/mongohttp/mongohttp/integration/testserver"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// serverURI is the server every test in this package uses.
var serverURI string

func TestMain(m *testing.M) { testserver.Main(m, &serverURI) }

// connect builds a client on the test server and closes it when the test
// ends.
func connect(t *testing.T, pool mongohttp.PoolConfig) *mongohttp.Client {
	t.Helper()
	c, err := mongohttp.ConnectConfig(context.Background(), mongohttp.Config{URI: serverURI, Pool: pool})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = c.Close(ctx)
	})
	return c
}

// database gives the test a database of its own on c.
func database(t *testing.T, c *mongohttp.Client) *mongo.Database {
	t.Helper()
	return testserver.Database(t, c.Mongo())
}

// eventually retries cond until it holds or the deadline passes; tests use
// it instead of sleeping for a fixed time.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
