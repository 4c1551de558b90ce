package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// database is the server the benchmark reads: the example binary in its
// database-only mode, run as a child process, or the one MONGODB_URI names.
type database struct {
	uri  string
	cmd  *exec.Cmd
	done chan struct{}
	tmp  string // removed on stop
}

// examplePackage is the example service, whose -db-only mode runs the
// embedded FerretDB on its own.
const examplePackage = "github.com/mongohttp/mongohttp/example"

// startDatabase builds the example once and starts it with -db-only, or
// returns the server of MONGODB_URI (cfg.uri).
func startDatabase(ctx context.Context, cfg config, log io.Writer) (*database, error) {
	if cfg.uri != "" {
		fmt.Fprintln(log, "database: MONGODB_URI")
		return &database{uri: cfg.uri}, nil
	}
	tmp, err := os.MkdirTemp("", "mongohttp-bench-")
	if err != nil {
		return nil, err
	}
	d := &database{tmp: tmp}
	bin := filepath.Join(tmp, "example")
	fmt.Fprintln(log, "database: building the example (the first build of FerretDB takes a few minutes)")
	args := append(append([]string{"build"}, cfg.buildFlags...), "-o", bin, examplePackage)
	build := exec.CommandContext(ctx, "go", args...)
	build.Stdout, build.Stderr = log, log
	if err := build.Run(); err != nil {
		d.stop()
		return nil, fmt.Errorf("building the example: %w", err)
	}
	dataDir := cfg.dataDir
	if dataDir == "" {
		dataDir = filepath.Join(tmp, "data")
	}
	cmd := exec.Command(bin, "-db-only", "-data", dataDir)
	cmd.Stderr = log
	setParentDeath(cmd)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		d.stop()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		d.stop()
		return nil, fmt.Errorf("starting the example's database: %w", err)
	}
	d.cmd, d.done = cmd, make(chan struct{})
	uri := make(chan string, 1)
	go func() {
		defer close(d.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "MONGODB_URI="); ok {
				select {
				case uri <- v:
				default:
				}
			}
		}
		_ = cmd.Wait()
	}()
	select {
	case d.uri = <-uri:
	case <-d.done:
		d.stop()
		return nil, errors.New("the example's database exited before printing MONGODB_URI")
	case <-time.After(2 * time.Minute):
		d.stop()
		return nil, errors.New("the example's database printed no MONGODB_URI within 2 minutes")
	case <-ctx.Done():
		d.stop()
		return nil, ctx.Err()
	}
	fmt.Fprintf(log, "database: the example's FerretDB at %s, data in %s\n", d.uri, dataDir)
	return d, nil
}

// stop ends the child (SIGINT, then SIGKILL after 15 s) and removes the
// temporary directory.
func (d *database) stop() {
	if d.cmd != nil && d.cmd.Process != nil {
		_ = d.cmd.Process.Signal(os.Interrupt)
		select {
		case <-d.done:
		case <-time.After(15 * time.Second):
			_ = d.cmd.Process.Kill()
			<-d.done
		}
	}
	if d.tmp != "" {
		_ = os.RemoveAll(d.tmp)
	}
}
