package openapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestTypeScriptClient generates TypeScript types from the example's
// document with openapi-typescript and type-checks, with tsc --noEmit,
// testdata/tsclient/client.ts: an openapi-fetch client that lists users
// and a user's posts, reads a post, creates posts one at a time and in
// bulk, and patches one, using the answers as
// the plain JSON types (Users[], Post) without casts or type guards.
// wrong.ts, which misuses them, must not compile. The npm packages are
// pinned by package-lock.json and installed with npm ci into the
// testdata directory (ignored by git) when the lock file changes. Node
// and npm are required: without them the test fails.
func TestTypeScriptClient(t *testing.T) {
	dir := filepath.Join("testdata", "tsclient")
	npmCI(t, dir)
	gen := filepath.Join(dir, "generated")
	if err := os.MkdirAll(gen, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(gen, "openapi.json"), service.doc, 0o644); err != nil {
		t.Fatal(err)
	}
	command(t, dir, "node", "node_modules/openapi-typescript/bin/cli.js", "generated/openapi.json", "-o", "generated/api.d.ts")
	types, err := os.ReadFile(filepath.Join(gen, "api.d.ts"))
	if err != nil {
		t.Fatal(err)
	}
	// NDJSON is described, as a media type of its own.
	if !bytes.Contains(types, []byte(`"application/x-ndjson"`)) {
		t.Errorf("the generated types describe no NDJSON")
	}
	command(t, dir, "node", "node_modules/typescript/bin/tsc", "-p", ".")

	wrong := exec.Command("node", "node_modules/typescript/bin/tsc", "--noEmit", "--strict", "--skipLibCheck",
		"--target", "es2022", "--module", "esnext", "--moduleResolution", "bundler", "--lib", "es2022,dom", "wrong.ts")
	wrong.Dir = dir
	out, err := wrong.CombinedOutput()
	if err == nil {
		t.Fatalf("tsc accepted wrong.ts")
	}
	for _, want := range []string{"wrong.ts(12,", "wrong.ts(16,"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("tsc did not refuse %s…:\n%s", want, out)
		}
	}
}

// npmCI installs the packages of dir's package-lock.json with npm ci,
// unless node_modules already holds them.
func npmCI(t *testing.T, dir string) {
	t.Helper()
	if _, err := exec.LookPath("npm"); err != nil {
		t.Fatalf("npm is needed to check the TypeScript client: %v", err)
	}
	lock, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(lock)
	stamp := filepath.Join(dir, "node_modules", ".package-lock.sha256")
	if got, err := os.ReadFile(stamp); err == nil && string(got) == hex.EncodeToString(sum[:]) {
		return
	}
	command(t, dir, "npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
	if err := os.WriteFile(stamp, []byte(hex.EncodeToString(sum[:])), 0o644); err != nil {
		t.Fatal(err)
	}
}
