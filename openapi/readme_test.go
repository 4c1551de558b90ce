package openapi

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"testing"
)

// TestReadmeExcerpt checks that the excerpt of the example's document in
// docs/openapi.md is the document, trimmed: every member it shows is in the
// document with the same value, and every array element it shows is in the
// document's array.
func TestReadmeExcerpt(t *testing.T) {
	text, err := os.ReadFile("../docs/openapi.md")
	if err != nil {
		t.Fatal(err)
	}
	section := regexp.MustCompile(`(?s)<!-- section:openapi -->(.*)<!-- /section:openapi -->`).FindSubmatch(text)
	if section == nil {
		t.Fatal("docs/openapi.md has no openapi section")
	}
	block := regexp.MustCompile("(?s)```json\n(.*?)```").FindSubmatch(section[1])
	if block == nil {
		t.Fatal("the openapi section has no json block")
	}
	var excerpt, doc any
	if err := json.Unmarshal(block[1], &excerpt); err != nil {
		t.Fatalf("the excerpt is not JSON: %v", err)
	}
	if err := json.Unmarshal(service.doc, &doc); err != nil {
		t.Fatal(err)
	}
	if err := within(excerpt, doc, "$"); err != nil {
		t.Errorf("docs/openapi.md shows what the document does not have: %v", err)
	}
	if err := within(map[string]any{"openapi": "3.0.0"}, doc, "$"); err == nil {
		t.Error("within finds a value the document does not have")
	}
}

// within reports where part is not a trimmed copy of whole.
func within(part, whole any, at string) error {
	switch p := part.(type) {
	case map[string]any:
		w, ok := whole.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: not an object in the document", at)
		}
		for k, v := range p {
			if err := within(v, w[k], at+"."+k); err != nil {
				return err
			}
		}
		return nil
	case []any:
		w, ok := whole.([]any)
		if !ok {
			return fmt.Errorf("%s: not an array in the document", at)
		}
		for i, v := range p {
			found := false
			for _, x := range w {
				found = found || within(v, x, at) == nil
			}
			if !found {
				return fmt.Errorf("%s[%d]: no such element in the document", at, i)
			}
		}
		return nil
	}
	if !reflect.DeepEqual(part, whole) {
		return fmt.Errorf("%s: %v, the document has %v", at, part, whole)
	}
	return nil
}
