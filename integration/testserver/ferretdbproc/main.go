// Command ferretdbproc runs an embedded FerretDB (SQLite backend, logs
// silenced) for package testserver, which starts it as a child process so
// that FerretDB stays out of the race-instrumented test binaries.
//
// It prints the address it listens on as one line on standard output, then
// serves until SIGTERM or SIGINT, or until its standard input closes: the
// test process holds the other end, so the server never outlives it.
//
//	ferretdbproc -dir DIR [-addr 127.0.0.1:0]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	dir := flag.String("dir", "", "directory of the SQLite databases (required)")
	addr := flag.String("addr", "127.0.0.1:0", "TCP address to listen on; port 0 picks a free one")
	flag.Parse()
	if *dir == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*dir, *addr); err != nil {
		fmt.Fprintln(os.Stderr, "ferretdbproc:", err)
		os.Exit(1)
	}
}

func run(dir, addr string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		// Standard input closes when the parent exits, however it exits.
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: addr},
		Handler:   "sqlite",
		SQLiteURL: "file:" + dir + "/",
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		return err
	}
	// New has bound the listener: connections made from now on wait in its
	// backlog until Run accepts them.
	u, err := url.Parse(f.MongoDBURI())
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	if _, err := fmt.Println(u.Host); err != nil {
		cancel()
		<-done
		return err
	}
	return <-done
}
