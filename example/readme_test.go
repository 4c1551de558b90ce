package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// docBlock returns the first code block of the given language between the
// markers <!-- section:name --> and <!-- /section:name --> of a file of the
// repository's documentation (a path from the repository's root), which the
// tests replay against the service.
func docBlock(t *testing.T, file, name, lang string) string {
	t.Helper()
	text, err := os.ReadFile(filepath.Join("..", file))
	if err != nil {
		t.Fatal(err)
	}
	section := regexp.MustCompile(`(?s)<!-- section:` + name + ` -->(.*)<!-- /section:` + name + ` -->`).FindSubmatch(text)
	if section == nil {
		t.Fatalf("%s has no section %s", file, name)
	}
	block := regexp.MustCompile("(?s)```" + lang + "\n(.*?)```").FindSubmatch(section[1])
	if block == nil {
		t.Fatalf("the section %s of %s has no %s block", name, file, lang)
	}
	return string(block[1])
}

// TestReadmeTryIt replays the curl lines of the example's tour
// (docs/example.md) against the service and checks that their answers are
// still the ones shown: the body, the status line and the headers shown,
// except for the after tokens, which are signed with a per-process key.
func TestReadmeTryIt(t *testing.T) {
	block := docBlock(t, "docs/example.md", "tryit", "console")
	commandRE := regexp.MustCompile(`^\$ curl -s(g?)(i?)g? '?localhost:8080(/[^' ]*)'?$`)
	afterRE := regexp.MustCompile(`after=[A-Za-z0-9_-]+`)
	runs := 0
	for _, example := range strings.Split(block, "\n$ ") {
		example = "$ " + strings.TrimPrefix(example, "$ ")
		lines := strings.Split(strings.TrimRight(example, "\n"), "\n")
		m := commandRE.FindStringSubmatch(lines[0])
		if m == nil {
			t.Fatalf("docs/example.md: line %q is not a curl line the test understands", lines[0])
		}
		withHeaders, path := m[2] == "i", m[3]
		wantBody := lines[len(lines)-1]
		t.Run(path, func(t *testing.T) {
			runs++
			resp, body := fetch(t, "GET", path)
			if got := strings.TrimSuffix(string(body), "\n"); got != wantBody {
				t.Fatalf("body\n%s\nthe docs show\n%s", got, wantBody)
			}
			if !withHeaders {
				return
			}
			if status := "HTTP/1.1 " + resp.Status; lines[1] != status {
				t.Errorf("status %q, the docs show %q", status, lines[1])
			}
			for _, h := range lines[2 : len(lines)-2] {
				name, want, _ := strings.Cut(h, ": ")
				got := resp.Header.Get(name)
				if afterRE.ReplaceAllString(got, "after=…") != afterRE.ReplaceAllString(want, "after=…") {
					t.Errorf("%s: %q, the docs show %q", name, got, want)
				}
			}
		})
	}
	if runs != 5 {
		t.Errorf("%d curl lines in the docs, want 5", runs)
	}
}
