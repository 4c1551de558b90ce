package mongohttp_test

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
)

// docFiles are the Markdown files whose links TestDocLinks checks: the front
// page and every file under docs/.
func docFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no docs/*.md")
	}
	return append([]string{"README.md"}, files...)
}

var (
	mdLink    = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	mdHeading = regexp.MustCompile(`^#{1,6}\s+(.*?)\s*#*\s*$`)
	mdCode    = regexp.MustCompile("`[^`]*`")
)

// headingAnchor is the anchor GitHub gives a heading: lower case, without
// punctuation but hyphens and underscores, spaces as hyphens.
func headingAnchor(heading string) string {
	heading = strings.ToLower(strings.ReplaceAll(heading, "`", ""))
	var b strings.Builder
	for _, r := range heading {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 0x7f:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// markdownDoc is what the link check needs of a Markdown file: its links,
// outside code blocks and code spans, and its headings' anchors, numbered
// as GitHub numbers repeated headings (writes, writes-1, …).
type markdownDoc struct {
	links   []string
	anchors map[string]bool
}

func parseMarkdown(text string) markdownDoc {
	doc := markdownDoc{anchors: map[string]bool{}}
	seen := map[string]int{}
	fenced := false
	for line := range strings.SplitSeq(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		if fenced {
			continue
		}
		if m := mdHeading.FindStringSubmatch(line); m != nil {
			a := headingAnchor(m[1])
			if n := seen[a]; n > 0 {
				doc.anchors[fmt.Sprintf("%s-%d", a, n)] = true
			} else {
				doc.anchors[a] = true
			}
			seen[a]++
		}
		for _, m := range mdLink.FindAllStringSubmatch(mdCode.ReplaceAllString(line, ""), -1) {
			doc.links = append(doc.links, m[1])
		}
	}
	return doc
}

// brokenLinks lists the relative links of the file at name in fsys that
// point to no file, or to no heading of the Markdown file they name.
func brokenLinks(fsys fs.FS, name string) ([]string, error) {
	text, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, err
	}
	var broken []string
	for _, link := range parseMarkdown(string(text)).links {
		if strings.Contains(link, "://") || strings.HasPrefix(link, "mailto:") {
			continue
		}
		target, anchor, _ := strings.Cut(link, "#")
		file := name
		if target != "" {
			file = path.Join(path.Dir(name), target)
		}
		if _, err := fs.Stat(fsys, file); err != nil {
			broken = append(broken, fmt.Sprintf("%s: %s: no such file", name, link))
			continue
		}
		if anchor == "" {
			continue
		}
		if !strings.HasSuffix(file, ".md") {
			broken = append(broken, fmt.Sprintf("%s: %s: an anchor into a file that is not Markdown", name, link))
			continue
		}
		linked, err := fs.ReadFile(fsys, file)
		if err != nil {
			return nil, err
		}
		if !parseMarkdown(string(linked)).anchors[anchor] {
			broken = append(broken, fmt.Sprintf("%s: %s: no such heading", name, link))
		}
	}
	return broken, nil
}

// TestDocLinks checks that every relative link of README.md and docs/*.md
// points to a file of the repository, and every anchor to a heading of the
// file it names.
func TestDocLinks(t *testing.T) {
	for _, name := range docFiles(t) {
		broken, err := brokenLinks(os.DirFS("."), name)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range broken {
			t.Error(b)
		}
	}
}

// TestDocsIndexListsEveryPage checks that docs/README.md, the index of the
// documentation, links to every other page of docs/.
func TestDocsIndexListsEveryPage(t *testing.T) {
	index, err := os.ReadFile("docs/README.md")
	if err != nil {
		t.Fatal(err)
	}
	linked := map[string]bool{}
	for _, link := range parseMarkdown(string(index)).links {
		target, _, _ := strings.Cut(link, "#")
		linked[path.Join("docs", target)] = true
	}
	for _, name := range docFiles(t) {
		if name != "README.md" && name != "docs/README.md" && !linked[name] {
			t.Errorf("docs/README.md does not link to %s", name)
		}
	}
}

// TestDocLinksFindsBrokenOnes checks the check: it reports a missing file, a
// missing heading, a path out of the repository and an anchor into a file
// that is not Markdown, and passes what exists.
func TestDocLinksFindsBrokenOnes(t *testing.T) {
	page := strings.Join([]string{
		"# Title",
		"## Writes: `If-Match`",
		"## Writes: `If-Match`",
		"[ok](#title) [ok](#writes-if-match-1) [ok](query.md#grammar) [ok](../LICENSE) [ok](../example) [ok](https://example.com/x)",
		"[bad](#nowhere) [bad](nowhere.md) [bad](query.md#nowhere) [bad](../../x.md) [bad](../collection.go#New)",
		"`[in code](#nowhere)`",
		"```",
		"[in a block](#nowhere)",
		"```",
	}, "\n")
	fsys := fstest.MapFS{
		"docs/page.md":   {Data: []byte(page)},
		"docs/query.md":  {Data: []byte("# Query language\n\n## Grammar\n")},
		"LICENSE":        {},
		"collection.go":  {},
		"example/go.mod": {},
	}
	broken, err := brokenLinks(fsys, "docs/page.md")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"docs/page.md: #nowhere: no such heading",
		"docs/page.md: nowhere.md: no such file",
		"docs/page.md: query.md#nowhere: no such heading",
		"docs/page.md: ../../x.md: no such file",
		"docs/page.md: ../collection.go#New: an anchor into a file that is not Markdown",
	}
	if strings.Join(broken, "\n") != strings.Join(want, "\n") {
		t.Errorf("broken links\n%s\nwant\n%s", strings.Join(broken, "\n"), strings.Join(want, "\n"))
	}
}

// TestQuickStartBuilds builds the quick start of README.md as it is written,
// as a program of its own.
func TestQuickStartBuilds(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	section := regexp.MustCompile(`(?s)<!-- section:quickstart -->(.*)<!-- /section:quickstart -->`).FindSubmatch(readme)
	if section == nil {
		t.Fatal("README.md has no quickstart section")
	}
	block := regexp.MustCompile("(?s)```go\n(.*?)```").FindSubmatch(section[1])
	if block == nil || !strings.HasPrefix(string(block[1]), "package main\n") {
		t.Fatal("the quickstart section has no Go program")
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("building the quick start needs the go command: %v", err)
	}
	program := filepath.Join(t.TempDir(), "main.go")
	if err := os.WriteFile(program, block[1], 0o600); err != nil {
		t.Fatal(err)
	}
	// Built from this module, so it imports this checkout's mongohttp.
	cmd := exec.Command(goCmd, "build", "-o", os.DevNull, program)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the quick start does not build: %v\n%s", err, out)
	}
}
