package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// embeddedDB is a FerretDB running in this process: the SQLite handler, a
// loopback listener, data in a directory of its own.
type embeddedDB struct {
	uri     string
	dir     string
	tempDir bool // dir was made by us and is removed on stop

	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// ferretNew serialises ferretdb.New, which writes a package-level version
// record: two servers started at once in one process would race on it.
var ferretNew sync.Mutex

// startEmbedded starts FerretDB on addr (a loopback host; port 0 picks a
// free one) with its data in dataDir, or in a new temporary directory that
// stop removes when dataDir is "". FerretDB's own logs go to logger, which
// the caller keeps quiet (Warn and above).
func startEmbedded(addr, dataDir string, logger *slog.Logger) (*embeddedDB, error) {
	if err := checkLoopback(addr); err != nil {
		return nil, err
	}
	db := &embeddedDB{dir: dataDir}
	if dataDir == "" {
		dir, err := os.MkdirTemp("", "mongohttp-example-")
		if err != nil {
			return nil, err
		}
		db.dir, db.tempDir = dir, true
	} else if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(db.dir)
	if err != nil {
		db.removeTemp()
		return nil, err
	}

	ferretNew.Lock()
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: addr},
		Handler:   "sqlite",
		SQLiteURL: "file:" + abs + "/",
		Logger:    logger,
	})
	ferretNew.Unlock()
	if err != nil {
		db.removeTemp()
		return nil, fmt.Errorf("starting the embedded FerretDB: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	db.cancel, db.done = cancel, make(chan struct{})
	go func() {
		defer close(db.done)
		_ = f.Run(ctx)
	}()
	// FerretDB listens from New on; MongoDBURI reports the port actually
	// bound, which is how port 0 becomes a usable address.
	db.uri = f.MongoDBURI()
	return db, nil
}

// URI is the connection string of the embedded server.
func (db *embeddedDB) URI() string { return db.uri }

// Stop stops the server, waits until its listener and connections are
// closed, and removes a temporary data directory. It is safe to call twice.
func (db *embeddedDB) Stop() {
	db.once.Do(func() {
		db.cancel()
		<-db.done
		db.removeTemp()
	})
}

func (db *embeddedDB) removeTemp() {
	if db.tempDir {
		_ = os.RemoveAll(db.dir)
	}
}

// checkLoopback refuses addresses that would expose the embedded server,
// which has no authentication, beyond this machine.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("database address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return errors.New("the embedded database listens on loopback only (127.0.0.1, ::1 or localhost), not " + addr)
}
