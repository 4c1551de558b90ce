package main

import (
	"regexp"
	"strings"
	"testing"
)

// TestReadmeRelations replays the curl lines of docs/relations.md against
// the service and checks that their answers are still the bodies shown.
func TestReadmeRelations(t *testing.T) {
	block := docBlock(t, "docs/relations.md", "relations", "console")
	commandRE := regexp.MustCompile(`^\$ curl -sg? '?localhost:8080(/[^' ]*)'?$`)
	runs := 0
	for _, example := range strings.Split(block, "\n$ ") {
		lines := strings.Split(strings.TrimRight("$ "+strings.TrimPrefix(example, "$ "), "\n"), "\n")
		m := commandRE.FindStringSubmatch(lines[0])
		if m == nil || len(lines) != 2 {
			t.Fatalf("docs/relations.md: example %q is not a curl line and a body", lines)
		}
		t.Run(m[1], func(t *testing.T) {
			runs++
			_, body := fetch(t, "GET", m[1])
			if got := strings.TrimSuffix(string(body), "\n"); got != lines[1] {
				t.Fatalf("body\n%s\nthe docs show\n%s", got, lines[1])
			}
		})
	}
	if runs != 5 {
		t.Errorf("%d curl lines in the section, want 5", runs)
	}
}
