package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// rawRequest opens a connection to the shared service and writes head, a
// request's line and headers.
func rawRequest(t *testing.T, head string) net.Conn {
	t.Helper()
	u, err := url.Parse(shared.base)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout("tcp", u.Host, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := fmt.Fprintf(c, head, u.Host); err != nil {
		t.Fatal(err)
	}
	return c
}

// readAnswer reads the first response on c within limit and returns it
// with its problem code.
func readAnswer(t *testing.T, c net.Conn, limit time.Duration) (*http.Response, string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(limit))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	defer resp.Body.Close()
	var p struct {
		Code string `json:"code"`
	}
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &p)
	return resp, p.Code
}

// TestStalledWriteBodyIsCut sends part of a write's body, then nothing:
// the service answers 408 "body_timeout" once no byte has come for its
// BodyIdleTimeout, and closes the connection, for one document and for a
// bulk insert. (A request that only trickles its headers is cut by
// ReadHeaderTimeout, see TestSlowBodyIsCut.)
func TestStalledWriteBodyIsCut(t *testing.T) {
	for _, tt := range []struct{ name, head string }{
		{"one document", "POST /posts HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"title\":"},
		{"bulk", "POST /posts/bulk HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n9\r\n{\"title\":\r\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := rawRequest(t, tt.head)
			began := time.Now()
			resp, code := readAnswer(t, c, cutWithin)
			if resp.StatusCode != http.StatusRequestTimeout || code != "body_timeout" {
				t.Fatalf("a stalled body: %s %q, want 408 body_timeout", resp.Status, code)
			}
			if err := waitCut(c, cutWithin); err != nil {
				t.Fatalf("after the 408: %v", err)
			}
			t.Logf("answered and cut after %s", time.Since(began).Round(100*time.Millisecond))
		})
	}
}

// TestTooLargeBodyWrittenBeforeReading writes a 20 MiB POST whole before
// it reads, as Python's urllib and many HTTP libraries do: it must read
// the 413, not a reset of its connection. With "Expect: 100-continue" the
// 413 comes at once, without "100 Continue", and nothing is sent.
func TestTooLargeBodyWrittenBeforeReading(t *testing.T) {
	const size = 20 << 20
	t.Run("whole body first", func(t *testing.T) {
		c := rawRequest(t, fmt.Sprintf("POST /posts HTTP/1.1\r\nHost: %%s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", size))
		_ = c.SetWriteDeadline(time.Now().Add(cutWithin))
		chunk := []byte(strings.Repeat(" ", 64<<10))
		for sent := 0; sent < size; sent += len(chunk) {
			if _, err := c.Write(chunk); err != nil {
				t.Fatalf("writing the body, %d bytes in: %v", sent, err)
			}
		}
		resp, code := readAnswer(t, c, cutWithin)
		if resp.StatusCode != http.StatusRequestEntityTooLarge || code != "body_too_large" {
			t.Fatalf("%s %q, want 413 body_too_large", resp.Status, code)
		}
	})
	t.Run("Expect: 100-continue", func(t *testing.T) {
		c := rawRequest(t, fmt.Sprintf("POST /posts HTTP/1.1\r\nHost: %%s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", size))
		resp, code := readAnswer(t, c, cutWithin)
		if resp.StatusCode != http.StatusRequestEntityTooLarge || code != "body_too_large" {
			t.Fatalf("%s %q, want 413 body_too_large and no 100 Continue", resp.Status, code)
		}
	})
}
