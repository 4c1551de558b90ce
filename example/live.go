package main

import (
	_ "embed"
	"net/http"
	"strconv"
)

// The /live page: plain HTML and JavaScript, no build step, nothing from
// elsewhere. It follows /posts/changes with EventSource.
var (
	//go:embed web/live.html
	liveHTML []byte
	//go:embed web/live.js
	liveJS []byte
)

// livePage serves /live, and its script at /live.js.
var livePage = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	body, ct := liveHTML, "text/html; charset=utf-8"
	if r.URL.Path == "/live.js" {
		body, ct = liveJS, "text/javascript; charset=utf-8"
	}
	h := w.Header()
	h.Set("Content-Type", ct)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	// Only this origin's script and feed: no inline script, nothing else.
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'")
	_, _ = w.Write(body)
})
