package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeTryIt replays the curl lines of the README's "Try it" section
// against the service and checks that their answers are still the ones
// shown: the body, the status line and the headers shown, except for the
// after tokens, which are signed with a per-process key.
func TestReadmeTryIt(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	section := regexp.MustCompile(`(?s)<!-- section:tryit -->(.*)<!-- /section:tryit -->`).FindSubmatch(readme)
	if section == nil {
		t.Fatal("the README has no tryit section")
	}
	block := regexp.MustCompile("(?s)```console\n(.*?)```").FindSubmatch(section[1])
	if block == nil {
		t.Fatal("the tryit section has no console block")
	}
	commandRE := regexp.MustCompile(`^\$ curl -s(g?)(i?)g? '?localhost:8080(/[^' ]*)'?$`)
	afterRE := regexp.MustCompile(`after=[A-Za-z0-9_-]+`)
	runs := 0
	for _, example := range strings.Split(string(block[1]), "\n$ ") {
		example = "$ " + strings.TrimPrefix(example, "$ ")
		lines := strings.Split(strings.TrimRight(example, "\n"), "\n")
		m := commandRE.FindStringSubmatch(lines[0])
		if m == nil {
			t.Fatalf("README line %q is not a curl line the test understands", lines[0])
		}
		withHeaders, path := m[2] == "i", m[3]
		wantBody := lines[len(lines)-1]
		t.Run(path, func(t *testing.T) {
			runs++
			resp, body := fetch(t, "GET", path)
			if got := strings.TrimSuffix(string(body), "\n"); got != wantBody {
				t.Fatalf("body\n%s\nREADME shows\n%s", got, wantBody)
			}
			if !withHeaders {
				return
			}
			if status := "HTTP/1.1 " + resp.Status; lines[1] != status {
				t.Errorf("status %q, README shows %q", status, lines[1])
			}
			for _, h := range lines[2 : len(lines)-2] {
				name, want, _ := strings.Cut(h, ": ")
				got := resp.Header.Get(name)
				if afterRE.ReplaceAllString(got, "after=…") != afterRE.ReplaceAllString(want, "after=…") {
					t.Errorf("%s: %q, README shows %q", name, got, want)
				}
			}
		})
	}
	if runs != 5 {
		t.Errorf("%d curl lines in the README, want 5", runs)
	}
}
