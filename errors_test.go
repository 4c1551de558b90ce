package mongohttp

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// TestSentinelsAreRegistered reads the package's source: every exported
// variable named Err… is declared through newSentinel, so that
// detachSentinel knows it, and no *Error is built at package level any
// other way. The registry then holds one sentinel per call, each with a
// code of its own (errors.Is compares codes).
func TestSentinelsAreRegistered(t *testing.T) {
	fset := token.NewFileSet()
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	calls := 0
	for _, f := range files {
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.VAR {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					var value ast.Expr
					if i < len(vs.Values) {
						value = vs.Values[i]
					}
					call, isSentinel := value.(*ast.CallExpr)
					isSentinel = isSentinel && isIdent(call.Fun, "newSentinel")
					if isSentinel {
						calls++
					}
					// Errors of set-up calls that no handler answers with
					// are plain errors, declared beside the sentinels.
					plain := isCall(value, "errors", "New") && filepath.Base(fset.Position(name.Pos()).Filename) == "errors.go"
					if name.IsExported() && strings.HasPrefix(name.Name, "Err") && !isSentinel && !plain {
						t.Errorf("%s: %s is not declared through newSentinel in errors.go", fset.Position(name.Pos()), name.Name)
					}
					if value != nil && !isSentinel && buildsError(value) {
						t.Errorf("%s: %s builds an *Error at package level without newSentinel", fset.Position(name.Pos()), name.Name)
					}
				}
			}
		}
	}
	if calls == 0 || calls != len(sentinels) {
		t.Errorf("%d sentinels declared, %d registered", calls, len(sentinels))
	}
	codes := map[string]bool{}
	for _, s := range sentinels {
		if codes[s.Code] {
			t.Errorf("code %q is used by two sentinels", s.Code)
		}
		codes[s.Code] = true
	}
}

func isIdent(e ast.Expr, name string) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == name
}

// buildsError reports whether e holds an Error composite literal.
func buildsError(e ast.Expr) bool {
	found := false
	ast.Inspect(e, func(n ast.Node) bool {
		if cl, ok := n.(*ast.CompositeLit); ok && isIdent(cl.Type, "Error") {
			found = true
		}
		return !found
	})
	return found
}

// TestMethodNotAllowedAnswers checks that the three kinds of handlers that
// refuse a method (a reader, a writer, Methods) answer alike: 405, an Allow
// header, and a detail that quotes the method cut to a readable length.
func TestMethodNotAllowedAnswers(t *testing.T) {
	res := Must(New(Collection[bson.Raw]{Client: offline, Coll: offlineCollection(t, "things"),
		Policy: Policy{Write: map[string]Type{"name": String}}}))
	method := strings.Repeat("X", 500)
	for _, tt := range []struct {
		name  string
		h     http.Handler
		allow string
	}{
		{"reader", res.Find(), "GET, HEAD"},
		{"health", &HealthHandler{Client: offline}, "GET, HEAD"},
		{"writer", res.Insert(), "POST"},
		{"methods", Methods{"GET": res.FindOne(), "DELETE": res.Delete()}, "DELETE, GET, HEAD"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			tt.h.ServeHTTP(rec, httptest.NewRequest(method, "/things", nil))
			var p problemBody
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
				t.Fatal(err)
			}
			want := "method " + clip(method) + " is not allowed; use " + tt.allow
			if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != tt.allow || p.Code != "method_not_allowed" || p.Detail != want {
				t.Errorf("%d, Allow %q, %+v; want 405, Allow %q, detail %q", rec.Code, rec.Header().Get("Allow"), p, tt.allow, want)
			}
		})
	}
}

// isCall reports whether e calls pkg.fun.
func isCall(e ast.Expr, pkg, fun string) bool {
	call, ok := e.(*ast.CallExpr)
	if !ok {
		return false
	}
	sel, ok := call.Fun.(*ast.SelectorExpr)
	return ok && isIdent(sel.X, pkg) && sel.Sel.Name == fun
}
