package deploy

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
)

// The deploy tests read the settings from the binary's own declaration: the settings table in
// cmd/tpe-provisioner/config.go (group, env name, ..., secret) and the groups `run` binds
// (runGroups in cmd_run.go). They parse the source rather than run the binary, so checking
// YAML and Bicep stays a parse away instead of a link of the whole service.

// declaration is what the deploy tests need of cmd/tpe-provisioner's settings.
type declaration struct {
	known  map[string]bool // every env name of the table
	secret []string        // the secret ones, in table order
	run    []string        // those in runGroups less runSettingsLeftOut, in table order
}

var (
	declOnce sync.Once
	decl     declaration
	declErr  string
)

// loadDeclaration parses the declaration once for all tests and fails t when its shape is not
// the one this reader understands.
func loadDeclaration(t *testing.T) declaration {
	t.Helper()
	declOnce.Do(func() { decl, declErr = parseDeclaration(repoPath(t, "cmd", "tpe-provisioner")) })
	if declErr != "" {
		t.Fatal(declErr)
	}
	return decl
}

func parseDeclaration(dir string) (declaration, string) {
	fset := token.NewFileSet()
	table, ok := topVar(fset, filepath.Join(dir, "config.go"), "settings")
	if !ok {
		return declaration{}, "config.go: no `var settings = []setting{...}` to read the settings from"
	}
	groups, ok := topVar(fset, filepath.Join(dir, "cmd_run.go"), "runGroups")
	if !ok {
		return declaration{}, "cmd_run.go: no `var runGroups = []settingGroup{...}` to read run's groups from"
	}
	var runGroups []string
	for _, e := range groups.Elts {
		id, ok := e.(*ast.Ident)
		if !ok {
			return declaration{}, "cmd_run.go: runGroups holds something other than group names"
		}
		runGroups = append(runGroups, id.Name)
	}
	d := declaration{known: map[string]bool{}}
	for i, e := range table.Elts {
		row, ok := e.(*ast.CompositeLit)
		if !ok || len(row.Elts) < 6 {
			return declaration{}, "config.go: settings row " + strconv.Itoa(i) + " is not {group, env, flag, default, usage, secret, bind}"
		}
		group, ok1 := row.Elts[0].(*ast.Ident)
		lit, ok2 := row.Elts[1].(*ast.BasicLit)
		secret, ok3 := row.Elts[5].(*ast.Ident)
		if !ok1 || !ok2 || !ok3 || lit.Kind != token.STRING || (secret.Name != "true" && secret.Name != "false") {
			return declaration{}, "config.go: settings row " + strconv.Itoa(i) + " is not {group, \"ENV\", flag, default, usage, secret, bind}"
		}
		env, err := strconv.Unquote(lit.Value)
		if err != nil {
			return declaration{}, "config.go: settings row " + strconv.Itoa(i) + ": " + err.Error()
		}
		d.known[env] = true
		if secret.Name == "true" {
			d.secret = append(d.secret, env)
		}
		if slices.Contains(runGroups, group.Name) && !slices.Contains(runSettingsLeftOut, env) {
			d.run = append(d.run, env)
		}
	}
	return d, ""
}

// topVar returns the composite literal a file's top-level `var name = T{...}` is set to.
func topVar(fset *token.FileSet, path, name string) (*ast.CompositeLit, bool) {
	file, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
	if err != nil {
		return nil, false
	}
	for _, decl := range file.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.VAR {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, id := range vs.Names {
				if id.Name == name && i < len(vs.Values) {
					lit, ok := vs.Values[i].(*ast.CompositeLit)
					return lit, ok
				}
			}
		}
	}
	return nil, false
}
