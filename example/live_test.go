package main

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"

	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLivePage opens /live in headless Chromium, makes writes through the
// API and sees the page follow them: a new post appears, a patch changes
// its likes, a delete removes it. The browser is driven over the DevTools
// protocol by the small client below.
func TestLivePage(t *testing.T) {
	page := openChromium(t, shared.base+"/live")
	eval := func(expr string) string {
		t.Helper()
		v, err := page.eval(expr)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	eventually(t, time.Minute, 100*time.Millisecond, func() (bool, string) {
		// Every sample post (other tests may have added some).
		n := eval(`document.getElementById("count").textContent`)
		count, _ := strconv.Atoi(n)
		return count >= len(wantPosts), "the page lists " + n + " posts"
	})
	_, body := send(t, "POST", "/posts", "application/json",
		fmt.Sprintf(`{"author_id":%q,"title":"live <b>page</b> test","likes":3}`, wantUsers[0].ID.Hex()))
	var created postJSON
	if err := json.Unmarshal(body, &created); err != nil || created.ID == "" {
		t.Fatalf("POST /posts: %s", body)
	}
	item := fmt.Sprintf(`(document.getElementById("post-%s") || {}).textContent || ""`, created.ID)
	eventually(t, 10*time.Second, 50*time.Millisecond, func() (bool, string) {
		s := eval(item)
		return s == "live <b>page</b> test · 3 likes", fmt.Sprintf("the new post reads %q", s)
	})
	send(t, "PATCH", "/posts/"+created.ID, "application/merge-patch+json", `{"likes":42}`)
	eventually(t, 10*time.Second, 50*time.Millisecond, func() (bool, string) {
		s := eval(item)
		return strings.HasSuffix(s, " · 42 likes"), fmt.Sprintf("the patched post reads %q", s)
	})
	send(t, "DELETE", "/posts/"+created.ID, "", "")
	eventually(t, 10*time.Second, 50*time.Millisecond, func() (bool, string) {
		s := eval(item)
		return s == "", fmt.Sprintf("the deleted post still reads %q", s)
	})
	if s := eval(`document.getElementById("status").textContent`); s != "live" {
		t.Fatalf("status %q", s)
	}
}

var devtoolsRE = regexp.MustCompile(`DevTools listening on (ws://\S+)`)

// openChromium starts headless Chromium on target and returns a DevTools
// connection to its page. Chromium and its profile are removed at the end.
func openChromium(t *testing.T, target string) *cdpConn {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not installed (scripts/test.sh installs Debian's chromium package): ", err)
	}
	// Not t.TempDir: Chromium's helper processes may still be writing the
	// profile for a moment after they are killed, which fails its removal.
	profile, err := os.MkdirTemp("", "live-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+profile, "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", target)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	// Its own process group, so that the helpers it forks die with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		for i := 0; ; i++ {
			err := os.RemoveAll(profile)
			if err == nil {
				return
			}
			if i == 50 {
				t.Logf("the Chromium profile is left behind: %v", err)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := devtoolsRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	var browser string
	select {
	case browser = <-found:
	case <-time.After(time.Minute):
		t.Fatal("chromium did not start its DevTools server within a minute")
	}
	u, _ := url.Parse(browser)
	// The page's own DevTools socket, from the list of targets.
	var pageWS string
	eventually(t, 30*time.Second, 100*time.Millisecond, func() (bool, string) {
		resp, err := http.Get("http://" + u.Host + "/json/list")
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		var targets []struct{ Type, URL, WebSocketDebuggerURL string }
		_ = json.NewDecoder(resp.Body).Decode(&targets)
		for _, tg := range targets {
			if tg.Type == "page" && tg.URL == target {
				pageWS = tg.WebSocketDebuggerURL
				return true, ""
			}
		}
		return false, fmt.Sprintf("no page at %s among %d targets", target, len(targets))
	})
	c, err := dialCDP(pageWS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.conn.Close() })
	return c
}

// cdpConn is a DevTools protocol connection: JSON messages over a
// WebSocket (RFC 6455), of which it implements what a client needs.
type cdpConn struct {
	conn net.Conn
	r    *bufio.Reader
	id   int
}

func dialCDP(ws string) (*cdpConn, error) {
	u, err := url.Parse(ws)
	if err != nil {
		return nil, err
	}
	conn, err := net.DialTimeout("tcp", u.Host, 10*time.Second)
	if err != nil {
		return nil, err
	}
	key := make([]byte, 16)
	_, _ = rand.Read(key)
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
		u.RequestURI(), u.Host, base64.StdEncoding.EncodeToString(key))
	r := bufio.NewReader(conn)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		conn.Close()
		return nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		conn.Close()
		return nil, fmt.Errorf("websocket handshake: %s", resp.Status)
	}
	return &cdpConn{conn: conn, r: r}, nil
}

// eval evaluates a JavaScript expression in the page and returns its value
// as text.
func (c *cdpConn) eval(expr string) (string, error) {
	c.id++
	msg, _ := json.Marshal(map[string]any{"id": c.id, "method": "Runtime.evaluate",
		"params": map[string]any{"expression": "String(" + expr + ")", "returnByValue": true}})
	_ = c.conn.SetDeadline(time.Now().Add(30 * time.Second))
	if err := c.send(msg); err != nil {
		return "", err
	}
	for {
		data, err := c.recv()
		if err != nil {
			return "", err
		}
		var reply struct {
			ID     int
			Result struct {
				Result struct{ Value any }
			}
			Error *struct{ Message string }
		}
		if json.Unmarshal(data, &reply) != nil || reply.ID != c.id {
			continue // an event
		}
		if reply.Error != nil {
			return "", errors.New(reply.Error.Message)
		}
		return fmt.Sprint(reply.Result.Result.Value), nil
	}
}

// send writes one masked text frame, as a client must.
func (c *cdpConn) send(p []byte) error {
	hdr := []byte{0x81}
	switch n := len(p); {
	case n < 126:
		hdr = append(hdr, 0x80|byte(n))
	case n < 1<<16:
		hdr = append(hdr, 0x80|126, byte(n>>8), byte(n))
	default:
		hdr = binary.BigEndian.AppendUint64(append(hdr, 0x80|127), uint64(n))
	}
	mask := make([]byte, 4)
	_, _ = rand.Read(mask)
	frame := append(hdr, mask...)
	for i, b := range p {
		frame = append(frame, b^mask[i%4])
	}
	_, err := c.conn.Write(frame)
	return err
}

// recv reads one message, joining fragments and skipping control frames.
func (c *cdpConn) recv() ([]byte, error) {
	var msg []byte
	for {
		var h [2]byte
		if _, err := io.ReadFull(c.r, h[:]); err != nil {
			return nil, err
		}
		n := uint64(h[1] & 0x7f)
		switch n {
		case 126:
			var b [2]byte
			if _, err := io.ReadFull(c.r, b[:]); err != nil {
				return nil, err
			}
			n = uint64(binary.BigEndian.Uint16(b[:]))
		case 127:
			var b [8]byte
			if _, err := io.ReadFull(c.r, b[:]); err != nil {
				return nil, err
			}
			n = binary.BigEndian.Uint64(b[:])
		}
		if n > 64<<20 {
			return nil, fmt.Errorf("a %d-byte frame", n)
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(c.r, payload); err != nil {
			return nil, err
		}
		switch op := h[0] & 0x0f; op {
		case 0x8:
			return nil, io.EOF
		case 0x9, 0xa:
			continue // ping, pong
		}
		msg = append(msg, payload...)
		if h[0]&0x80 != 0 {
			return msg, nil
		}
	}
}
