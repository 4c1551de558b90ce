// Package testserver gives tests a real MongoDB-compatible server.
//
// By default it starts FerretDB in-process (SQLite backend, a loopback
// listener on a free port, data in a temporary directory, logs silenced).
// When MONGODB_URI is set, the same tests run against that server instead.
//
// It lives in a nested module so that FerretDB never enters the root go.mod.
package testserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Server is an embedded FerretDB behind a small TCP proxy, so that tests can
// take the database away and bring it back on the same address. Stop acts
// like a crash or a network partition: the proxy drops every connection at
// once, then FerretDB stops.
type Server struct {
	dir  string
	addr string // the proxy's host:port, fixed after the first start

	mu      sync.Mutex
	running bool
	ln      net.Listener
	conns   map[net.Conn]struct{}
	cancel  context.CancelFunc
	done    chan struct{} // closed when FerretDB has stopped
	proxied sync.WaitGroup
}

// Start starts an embedded FerretDB storing its data in dir, reachable at
// addr, a loopback TCP address; "127.0.0.1:0" picks a free port.
func Start(dir, addr string) (*Server, error) {
	s := &Server{dir: dir, addr: addr}
	if err := s.start(); err != nil {
		return nil, err
	}
	return s, nil
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return errors.New("testserver: already running")
	}
	backend, err := freeAddr()
	if err != nil {
		return err
	}
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: backend},
		Handler:   "sqlite",
		SQLiteURL: "file:" + s.dir + "/",
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		return fmt.Errorf("testserver: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = f.Run(ctx)
	}()
	if err := waitListening(backend, 30*time.Second); err != nil {
		cancel()
		<-done
		return err
	}
	if s.addr == "" {
		s.addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		cancel()
		<-done
		return fmt.Errorf("testserver: %w", err)
	}
	s.addr = ln.Addr().String()
	s.ln, s.cancel, s.done, s.running = ln, cancel, done, true
	s.conns = map[net.Conn]struct{}{}
	s.proxied.Add(1)
	go s.accept(ln, backend)
	return nil
}

// accept proxies each client connection to FerretDB until ln closes.
func (s *Server) accept(ln net.Listener, backend string) {
	defer s.proxied.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		b, err := net.Dial("tcp", backend)
		if err != nil {
			c.Close()
			continue
		}
		s.mu.Lock()
		if !s.running {
			s.mu.Unlock()
			c.Close()
			b.Close()
			return
		}
		s.conns[c], s.conns[b] = struct{}{}, struct{}{}
		s.mu.Unlock()
		s.proxied.Add(2)
		pipe := func(dst, src net.Conn) {
			defer s.proxied.Done()
			_, _ = io.Copy(dst, src)
			dst.Close()
			src.Close()
		}
		go pipe(b, c)
		go pipe(c, b)
	}
}

// waitListening waits until something accepts connections on addr.
func waitListening(addr string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("testserver: %s not listening after %s: %w", addr, limit, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// URI is the connection string of the server.
func (s *Server) URI() string { return "mongodb://" + s.addr + "/" }

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.addr }

// Stop drops every connection, stops FerretDB and waits until all is
// closed. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	if !s.running {
		s.mu.Unlock()
		return
	}
	s.running = false
	s.ln.Close()
	for c := range s.conns {
		c.Close()
	}
	cancel, done := s.cancel, s.done
	s.mu.Unlock()
	s.proxied.Wait()
	cancel()
	<-done
}

// Restart starts a stopped server again on the same address and data.
func (s *Server) Restart() error { return s.start() }

// URI returns the server tests should use: MONGODB_URI when set, otherwise
// the URI of a FerretDB started in a temporary directory. The returned stop
// function stops the embedded server (a no-op for MONGODB_URI) and removes
// its data.
func URI() (uri string, stop func(), err error) {
	if uri := os.Getenv("MONGODB_URI"); uri != "" {
		return uri, func() {}, nil
	}
	dir, err := os.MkdirTemp("", "mongohttp-ferretdb-")
	if err != nil {
		return "", nil, err
	}
	s, err := Start(dir, "127.0.0.1:0")
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	return s.URI(), func() { s.Stop(); os.RemoveAll(dir) }, nil
}

// TB is the part of testing.TB the helpers need.
type TB interface {
	Helper()
	Name() string
	Cleanup(func())
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
}

var dbSeq atomic.Int64

// Database returns a database of its own for the test, dropped when the
// test ends, so tests never see each other's data.
func Database(t TB, mc *mongo.Client) *mongo.Database {
	t.Helper()
	name := fmt.Sprintf("t%d_%d", os.Getpid()%100000, dbSeq.Add(1))
	db := mc.Database(name)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := db.Drop(ctx); err != nil {
			t.Logf("dropping %s: %v", name, err)
		}
	})
	return db
}
