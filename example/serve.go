package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// serverLimits bound what one client can hold on a listener: a goroutine,
// a socket, memory for its headers, and a place in the queue of a graceful
// shutdown. Both listeners, public and operator, use them.
type serverLimits struct {
	// readHeader bounds reading a request's headers, so a client that
	// trickles them (slowloris) is cut.
	readHeader time.Duration

	// read bounds reading a whole request, headers and body. The service
	// reads no bodies, but net/http reads an announced one before it
	// answers, to keep the connection usable: without this bound, a client
	// that announces "Content-Length: 100" and sends nothing holds its
	// connection, and any graceful shutdown, forever. It does not limit
	// the answer: net/http lifts the read deadline once the request is in.
	read time.Duration

	// write bounds each write of an answer (see writeDeadlines), so a
	// client that stops reading is cut while an export that keeps flowing
	// runs as long as it needs.
	write time.Duration

	// idle bounds a keep-alive connection between requests.
	idle time.Duration

	// maxHeaderBytes bounds the memory of one request's headers (net/http's
	// default is 1 MiB).
	maxHeaderBytes int
}

// defaultLimits are the service's. read and write are shorter than
// shutdownTimeout, so that a stalled client is cut before the grace period
// of a shutdown runs out.
var defaultLimits = serverLimits{
	readHeader: 5 * time.Second,
	read:       10 * time.Second,
	write:      10 * time.Second,
	idle:       time.Minute,
	// Four times the longest query string the policies accept (4 KiB),
	// with room for cookies and a bearer token.
	maxHeaderBytes: 16 << 10,
}

// newServer builds an http.Server for h with the limits. There is no
// WriteTimeout: writeDeadlines sets a deadline per write instead.
func newServer(h http.Handler, lim serverLimits, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           writeDeadlines(h, lim.write),
		ReadHeaderTimeout: lim.readHeader,
		ReadTimeout:       lim.read,
		IdleTimeout:       lim.idle,
		MaxHeaderBytes:    lim.maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// writeDeadlines gives every write of an answer a deadline of budget from
// the moment the write starts. http.Server's WriteTimeout is a single
// deadline for the whole answer, set once the request is read: short
// enough to cut a client that stops reading, it also cuts an export that
// streams for longer; long enough for any export, it lets a stalled client
// hold its connection, and a shutdown, that long. Re-armed before each
// write, a deadline bounds the stall instead of the answer, and the gaps
// between writes (the database preparing the next batch) do not count. The
// handlers' MaxTime still bounds the queries.
func writeDeadlines(next http.Handler, budget time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dw := &deadlineWriter{ResponseWriter: w, rc: http.NewResponseController(w), budget: budget}
		dw.arm()
		next.ServeHTTP(dw, r)
		// net/http writes out what the handler left buffered after it
		// returns: give that its own budget too.
		dw.arm()
	})
}

// deadlineWriter re-arms the connection's write deadline before each write
// and flush. It implements FlushError and Unwrap, so the handlers'
// http.ResponseController finds the flusher and the other controls.
type deadlineWriter struct {
	http.ResponseWriter
	rc     *http.ResponseController
	budget time.Duration
}

func (d *deadlineWriter) arm() { _ = d.rc.SetWriteDeadline(time.Now().Add(d.budget)) }

func (d *deadlineWriter) WriteHeader(code int) {
	d.arm() // 1xx answers go out at once
	d.ResponseWriter.WriteHeader(code)
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	d.arm()
	return d.ResponseWriter.Write(p)
}

func (d *deadlineWriter) FlushError() error {
	d.arm()
	return d.rc.Flush()
}

// Flush is for handlers that look for http.Flusher directly.
func (d *deadlineWriter) Flush() { _ = d.FlushError() }

func (d *deadlineWriter) Unwrap() http.ResponseWriter { return d.ResponseWriter }

// listener is one HTTP listener of the service: the public one or the
// operator one.
type listener struct {
	name string // for errors: "public", "operator"
	srv  *http.Server
	l    net.Listener
	url  string // http://host:port, as a browser can open it
}

// listen opens addr and prepares a server for h on it; serve starts it.
func listen(name, addr string, h http.Handler, lim serverLimits, logger *slog.Logger) (*listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s listener: %w", name, err)
	}
	return &listener{name: name, srv: newServer(h, lim, logger), l: l, url: "http://" + displayAddr(l.Addr())}, nil
}

// serve runs the server until it is shut down, then sends nil to done, or
// sends the error that stopped it.
func (s *listener) serve(done chan<- error) {
	err := s.srv.Serve(s.l)
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	} else if err != nil {
		err = fmt.Errorf("%s listener: %w", s.name, err)
	}
	done <- err
}

// shutdownAll shuts the servers down at once, each finishing its requests
// in flight, within ctx. A server that cannot finish in time is closed
// (its connections dropped) and the failure returned.
func shutdownAll(ctx context.Context, ls []*listener) error {
	errs := make(chan error, len(ls))
	for _, s := range ls {
		go func() {
			err := s.srv.Shutdown(ctx)
			if err != nil {
				_ = s.srv.Close()
				err = fmt.Errorf("%s listener: %w", s.name, err)
			}
			errs <- err
		}()
	}
	var all []error
	for range ls {
		all = append(all, <-errs)
	}
	return errors.Join(all...)
}

// displayAddr turns a listener address into one a browser can open:
// an unspecified host (":8080") becomes localhost.
func displayAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

// sameListenAddress reports whether listening on a and on b would compete
// for one socket: the same port (not 0, which picks a free one) on hosts
// that overlap. An empty or unspecified host (":8080", "0.0.0.0:8080",
// "[::]:8080") takes the port on every interface, IPv4 and IPv6 alike in
// Go, so it overlaps any host; "localhost" stands for 127.0.0.1 and ::1.
// Other host names are compared as written, not resolved: if two names
// share an address, the second listen fails instead.
func sameListenAddress(a, b string) (bool, error) {
	ha, pa, err := splitListenAddr(a)
	if err != nil {
		return false, err
	}
	hb, pb, err := splitListenAddr(b)
	if err != nil {
		return false, err
	}
	if pa == 0 || pa != pb {
		return false, nil
	}
	if ha.any || hb.any {
		return true, nil
	}
	if ha.name != "" || hb.name != "" {
		return ha.name == hb.name, nil
	}
	for _, x := range ha.ips {
		for _, y := range hb.ips {
			if x == y {
				return true, nil
			}
		}
	}
	return false, nil
}

// listenHost is the host part of a listen address: every interface, some
// addresses, or a name that is not resolved.
type listenHost struct {
	any  bool
	ips  []netip.Addr
	name string
}

var loopbacks = []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback()}

func splitListenAddr(addr string) (listenHost, int, error) {
	host, portName, err := net.SplitHostPort(addr)
	if err != nil {
		return listenHost{}, 0, err
	}
	port, err := net.LookupPort("tcp", portName)
	if err != nil {
		return listenHost{}, 0, err
	}
	switch ip, err := netip.ParseAddr(host); {
	case host == "":
		return listenHost{any: true}, port, nil
	case err == nil && ip.Unmap().IsUnspecified():
		return listenHost{any: true}, port, nil
	case err == nil:
		return listenHost{ips: []netip.Addr{ip.Unmap()}}, port, nil
	case strings.EqualFold(host, "localhost"):
		return listenHost{ips: loopbacks}, port, nil
	default:
		return listenHost{name: strings.ToLower(host)}, port, nil
	}
}
