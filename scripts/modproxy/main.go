// Command modproxy publishes the modules of a checkout into a file-based
// module proxy, at the versions they are about to be tagged with, so that
// a throwaway module can go get them exactly as a user will once they are
// tagged (GOPROXY=file://DIR,…).
//
//	modproxy -dir DIR -version v0.1.0 [-work go.work] MODULE_DIR...
//
// For each module directory it writes DIR/<escaped path>/@v/list,
// VERSION.info, VERSION.mod and VERSION.zip, the zip made by
// golang.org/x/mod/zip as the go command makes it from a tagged commit
// (nested modules, vendor directories and VCS metadata left out). It
// refuses a go.mod that carries replace directives, or that requires one of
// the published modules at another version than the one published: a user's
// build ignores the first and cannot download the second. With -work, it
// also checks that the workspace replaces each published module at that
// version with its directory, so that the workspace builds the checkout
// where the go.mod files name the release. It prints each module@version
// it published, one a line.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
	"golang.org/x/mod/zip"
)

func main() {
	dir := flag.String("dir", "", "the proxy's directory, created if missing")
	version := flag.String("version", "", "the version every module is published at, e.g. v0.1.0")
	work := flag.String("work", "", "a go.work file that must replace each module at the version with its directory")
	flag.Parse()
	if err := run(*dir, *version, *work, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "modproxy:", err)
		os.Exit(1)
	}
}

// published is a module directory and what its go.mod declares.
type published struct {
	dir  string
	file *modfile.File
	data []byte
}

func run(dir, version, work string, moduleDirs []string) error {
	if dir == "" || len(moduleDirs) == 0 {
		return errors.New("usage: modproxy -dir DIR -version VERSION [-work FILE] MODULE_DIR…")
	}
	if !semver.IsValid(version) || semver.Canonical(version) != version || semver.Prerelease(version) != "" {
		return fmt.Errorf("version %q is not a release version like v0.1.0", version)
	}
	mods := make([]published, 0, len(moduleDirs))
	paths := map[string]bool{}
	for _, d := range moduleDirs {
		name := filepath.Join(d, "go.mod")
		data, err := os.ReadFile(name)
		if err != nil {
			return err
		}
		f, err := modfile.Parse(name, data, nil)
		if err != nil {
			return err
		}
		if f.Module == nil {
			return fmt.Errorf("%s declares no module", name)
		}
		mods = append(mods, published{dir: d, file: f, data: data})
		paths[f.Module.Mod.Path] = true
	}
	for _, m := range mods {
		if err := check(m, paths, version); err != nil {
			return err
		}
	}
	if work != "" {
		if err := checkWork(work, mods, version); err != nil {
			return err
		}
	}
	at := time.Now().UTC().Truncate(time.Second)
	for _, m := range mods {
		mv := module.Version{Path: m.file.Module.Mod.Path, Version: version}
		if err := publish(dir, m, mv, at); err != nil {
			return fmt.Errorf("%s: %w", mv, err)
		}
		fmt.Println(mv)
	}
	return nil
}

// check refuses what a user's build would not see as the checkout does.
func check(m published, paths map[string]bool, version string) error {
	path := m.file.Module.Mod.Path
	if len(m.file.Replace) > 0 {
		return fmt.Errorf("%s: go.mod has replace directives, which a user's build ignores; develop with the go.work at the root instead", path)
	}
	for _, r := range m.file.Require {
		if paths[r.Mod.Path] && r.Mod.Version != version {
			return fmt.Errorf("%s requires %s, which is published at %s", path, r.Mod, version)
		}
	}
	return nil
}

// checkWork checks that the go.work file replaces each published module at
// version, and only there, with its directory.
func checkWork(name string, mods []published, version string) error {
	data, err := os.ReadFile(name)
	if err != nil {
		return err
	}
	w, err := modfile.ParseWork(name, data, nil)
	if err != nil {
		return err
	}
	for _, m := range mods {
		path, want := m.file.Module.Mod.Path, filepath.Clean(m.dir)
		found := false
		for _, r := range w.Replace {
			if r.Old.Path != path {
				continue
			}
			dir := r.New.Path
			if !filepath.IsAbs(dir) {
				dir = filepath.Join(filepath.Dir(name), dir)
			}
			if r.Old.Version != version || r.New.Version != "" || filepath.Clean(dir) != want {
				return fmt.Errorf("%s: replace %s %s => %s; want %s %s => its directory %s", name, path, r.Old.Version, r.New.Path, path, version, m.dir)
			}
			found = true
		}
		if !found {
			return fmt.Errorf("%s: no replace %s %s => its directory %s", name, path, version, m.dir)
		}
	}
	return nil
}

// publish writes the list, .info, .mod and .zip files of one module.
func publish(dir string, m published, mv module.Version, at time.Time) error {
	escaped, err := module.EscapePath(mv.Path)
	if err != nil {
		return err
	}
	vdir := filepath.Join(dir, escaped, "@v")
	if err := os.MkdirAll(vdir, 0o755); err != nil {
		return err
	}
	info, err := json.Marshal(struct {
		Version string
		Time    time.Time
	}{mv.Version, at})
	if err != nil {
		return err
	}
	files := map[string][]byte{
		"list":               []byte(mv.Version + "\n"),
		mv.Version + ".info": info,
		mv.Version + ".mod":  m.data,
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(vdir, name), data, 0o644); err != nil {
			return err
		}
	}
	z, err := os.Create(filepath.Join(vdir, mv.Version+".zip"))
	if err != nil {
		return err
	}
	if err := zip.CreateFromDir(z, mv, m.dir); err != nil {
		z.Close()
		return err
	}
	return z.Close()
}
