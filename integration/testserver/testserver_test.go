package testserver

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	code := m.Run()
	removeProgram()
	os.Exit(code)
}

func TestStartSaysWhyTheProgramFailed(t *testing.T) {
	_, err := Start(filepath.Join(t.TempDir(), "missing"), "127.0.0.1:0")
	if err == nil || !strings.Contains(err.Error(), "existing directory") {
		t.Fatalf("Start on a missing directory: %v, want the program's complaint about it", err)
	}
}

// The program must not outlive the test process, however that ends: it
// exits when its standard input closes.
func TestProgramExitsWhenStdinCloses(t *testing.T) {
	c, err := startChild(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer c.stop()
	conn, err := net.DialTimeout("tcp", c.addr, 10*time.Second)
	if err != nil {
		t.Fatalf("the program said it listens on %s: %v", c.addr, err)
	}
	conn.Close()
	c.stdin.Close()
	select {
	case <-c.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("the program still runs 10 s after its standard input closed")
	}
	if !c.cmd.ProcessState.Success() {
		t.Fatalf("the program exited with %v, want a clean stop", c.cmd.ProcessState)
	}
}

func TestStopAndRestartKeepTheAddress(t *testing.T) {
	s, err := Start(t.TempDir(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	addr := s.Addr()
	s.Stop()
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Fatal("the stopped server's address still accepts connections")
	}
	if s.child.cmd.ProcessState == nil {
		t.Fatal("Stop returned before the program exited")
	}
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	if s.Addr() != addr {
		t.Fatalf("restarted on %s, want %s", s.Addr(), addr)
	}
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
}
