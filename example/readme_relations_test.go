package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeRelations replays the curl lines of the README's relations
// section against the service and checks that their answers are still the
// bodies shown.
func TestReadmeRelations(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	section := regexp.MustCompile(`(?s)<!-- section:relations -->(.*)<!-- /section:relations -->`).FindSubmatch(readme)
	if section == nil {
		t.Fatal("the README has no relations section")
	}
	block := regexp.MustCompile("(?s)```console\n(.*?)```").FindSubmatch(section[1])
	if block == nil {
		t.Fatal("the relations section has no console block")
	}
	commandRE := regexp.MustCompile(`^\$ curl -sg? '?localhost:8080(/[^' ]*)'?$`)
	runs := 0
	for _, example := range strings.Split(string(block[1]), "\n$ ") {
		lines := strings.Split(strings.TrimRight("$ "+strings.TrimPrefix(example, "$ "), "\n"), "\n")
		m := commandRE.FindStringSubmatch(lines[0])
		if m == nil || len(lines) != 2 {
			t.Fatalf("README example %q is not a curl line and a body", lines)
		}
		t.Run(m[1], func(t *testing.T) {
			runs++
			_, body := fetch(t, "GET", m[1])
			if got := strings.TrimSuffix(string(body), "\n"); got != lines[1] {
				t.Fatalf("body\n%s\nREADME shows\n%s", got, lines[1])
			}
		})
	}
	if runs != 5 {
		t.Errorf("%d curl lines in the section, want 5", runs)
	}
}
