package recon_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"testing"
)

// listed is what `go list -json` says of one package of the module.
type listed struct {
	ImportPath string
	Name       string
	Doc        string
	Imports    []string
	Deps       []string
	Error      *struct{ Err string }
	DepsErrors []*struct{ Err string }
}

const module = "github.com/reconhq/recon"

// goList runs `go list -e -deps=false -json` over the module's packages. It
// skips the test when the go command is not available.
func goList(t *testing.T, patterns ...string) []listed {
	t.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not available:", err)
	}
	args := append([]string{"list", "-e", "-json=ImportPath,Name,Doc,Imports,Deps,Error,DepsErrors"}, patterns...)
	cmd := exec.Command(goCmd, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	var pkgs []listed
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p listed
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("go list output: %v", err)
		}
		if p.Error != nil {
			t.Errorf("package %s: %s (its dependency list may be incomplete)", p.ImportPath, p.Error.Err)
		}
		for _, e := range p.DepsErrors {
			t.Errorf("package %s: dependency error: %s", p.ImportPath, e.Err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) == 0 {
		t.Fatalf("go %s listed no packages", strings.Join(args, " "))
	}
	return pkgs
}

// goListDeps runs `go list -deps` on one package: every package it needs to
// build, itself included.
func goListDeps(t *testing.T, pkg string) []string {
	t.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not available:", err)
	}
	out, err := exec.Command(goCmd, "list", "-deps", pkg).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, ee.Stderr)
		}
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

// importsAny says which of the forbidden path prefixes appear in deps.
func importsAny(deps []string, forbidden []string) []string {
	var bad []string
	for _, d := range deps {
		for _, f := range forbidden {
			if d == f || strings.HasPrefix(d, f+"/") {
				bad = append(bad, d)
			}
		}
	}
	sort.Strings(bad)
	return bad
}

func rel(importPath string) string {
	if importPath == module {
		return "."
	}
	return "./" + strings.TrimPrefix(importPath, module+"/")
}

func under(importPath, dir string) bool {
	p := rel(importPath)
	return p == dir || strings.HasPrefix(p, dir+"/")
}

// The pure core — the vocabulary, the ledger, the journal's projection,
// the matcher's decisions and the schemas — must build without any Kafka or ClickHouse client and
// without an HTTP stack: it is a function of its input, testable with a
// table, and replays give the same result.
func TestDepsCoreIsPure(t *testing.T) {
	forbidden := []string{
		"github.com/twmb/franz-go",
		"github.com/segmentio/kafka-go",
		"github.com/ClickHouse/clickhouse-go",
		"github.com/ClickHouse/ch-go",
		"github.com/moov-io/iso20022",
		"github.com/cockroachdb/pebble",
		"net/http",
	}
	for _, pkg := range []string{".", "./ledger", "./projection", "./matcher", "./schemas"} {
		t.Run(pkg, func(t *testing.T) {
			if bad := importsAny(goListDeps(t, pkg), forbidden); len(bad) > 0 {
				t.Errorf("%s must stay pure but depends on %s", pkg, strings.Join(bad, ", "))
			}
		})
	}
}

// Each heavy dependency is fenced into the package that needs it.
func TestDepsFences(t *testing.T) {
	fences := []struct {
		dep     string
		allowed []string // directories (with their subpackages) that may depend on dep
		direct  bool     // only direct imports count (a command may reach dep through an allowed package)
	}{
		// ClickHouse is the analytics sink's business; the command wires it
		// and the benchmark measures when postings become visible there.
		{dep: "github.com/ClickHouse/clickhouse-go", allowed: []string{"./analytics", "./cmd/recon", "./bench"}},
		// The fast JSON codec of record values sits behind bus.Marshal and
		// bus.Unmarshal (fuzzed equal to encoding/json); nothing else
		// imports it.
		{dep: "github.com/segmentio/encoding", allowed: []string{"./bus"}, direct: true},
		// kafka-go is a third-party producer in the bus interop test only.
		{dep: "github.com/segmentio/kafka-go", allowed: nil},
		// The embedded key-value store is package store's; stages reach it
		// through store.Part (a matcher.KV), commands through the stages.
		{dep: "github.com/cockroachdb/pebble", allowed: []string{"./store"}, direct: true},
		// ISO 20022 parsing belongs to ingest; commands reach it through ingest.
		// (collect's tests use it to show why recon writes its own pain.008).
		{dep: "github.com/moov-io/iso20022", allowed: []string{"./ingest", "./collect"}, direct: true},
		// The deployment validators (Kubernetes API types, Prometheus's rule
		// parser) live in deploy's own module (deploy/go.mod): no package of
		// recon's module builds with them.
		{dep: "k8s.io", allowed: nil},
		{dep: "sigs.k8s.io", allowed: nil},
		{dep: "github.com/prometheus/prometheus", allowed: nil},
	}
	pkgs := goList(t, "./...")
	for _, f := range fences {
		var offenders []string
		for _, p := range pkgs {
			ok := false
			for _, dir := range f.allowed {
				ok = ok || under(p.ImportPath, dir)
			}
			if ok {
				continue
			}
			deps := p.Deps
			if f.direct {
				deps = p.Imports
			}
			if bad := importsAny(deps, []string{f.dep}); len(bad) > 0 {
				offenders = append(offenders, fmt.Sprintf("%s (via %s)", rel(p.ImportPath), bad[0]))
			}
		}
		if len(offenders) > 0 {
			t.Errorf("%s may be used only in %v (and tests), but is a dependency of:\n\t%s",
				f.dep, f.allowed, strings.Join(offenders, "\n\t"))
		}
	}
}

// Every package opens with a doc comment that says its one job, so a
// newcomer finds where each responsibility lives from `go doc`.
func TestDocEveryPackage(t *testing.T) {
	var offenders []string
	for _, p := range goList(t, "./...") {
		doc := strings.TrimSpace(p.Doc)
		switch {
		case doc == "":
			offenders = append(offenders, rel(p.ImportPath)+": no package doc comment")
		case p.Name != "main" && !strings.HasPrefix(doc, "Package "+p.Name+" "):
			offenders = append(offenders, fmt.Sprintf("%s: doc comment should start %q, has %q", rel(p.ImportPath), "Package "+p.Name+" ", doc))
		}
	}
	if len(offenders) > 0 {
		t.Errorf("%d package(s) lack a proper doc comment:\n\t%s", len(offenders), strings.Join(offenders, "\n\t"))
	}
}

// Components talk through Kafka topics, never through each other's code:
// a component imports only the shared packages below (and its own
// subpackages). A component that needs another's logic is a sign the
// logic belongs in the vocabulary or a shared package.
func TestDepsComponentsImportNoComponent(t *testing.T) {
	components := []string{"./ingest", "./matcher", "./api", "./alerts", "./analytics", "./proofs", "./collect", "./export", "./console"}
	shared := map[string]string{
		".":            "the vocabulary",
		"./ledger":     "account names, entry invariants, the hash chain",
		"./projection": "the one fold of the journal every reader uses",
		"./schemas":    "topic names, record types, keys",
		"./bus":        "the Kafka client and record codec every component shares",
		"./auth":       "who may call recon's HTTP API (tokens, scopes, middleware), one policy for every HTTP surface",
		"./store":      "a stage's state on local disk, checkpointed with the changelog offset it reflects",
	}
	// Imports that break the rule today, each with why and what would end
	// it. Remove an entry when its import goes; the test fails on stale
	// entries too.
	exceptions := map[[2]string]string{
		// ingest refuses at the door a loan the matcher's loans table cannot
		// hold exactly (matcher.CheckLoan: its encoding's limits). Moving
		// those limits next to recon.Loan ends it.
		{"./ingest", "./matcher"}: "matcher.CheckLoan",
	}
	component := func(importPath string) string {
		for _, c := range components {
			if under(importPath, c) {
				return c
			}
		}
		return ""
	}
	used := map[[2]string]bool{}
	for _, p := range goList(t, "./...") {
		from := component(p.ImportPath)
		if from == "" {
			continue
		}
		for _, imp := range p.Imports {
			if imp != module && !strings.HasPrefix(imp, module+"/") {
				continue
			}
			dep := rel(imp)
			if _, ok := shared[dep]; ok || under(imp, from) {
				continue
			}
			to := component(imp)
			if to == "" {
				t.Errorf("%s imports %s, neither a component nor a shared package: add it to one list, with a reason", rel(p.ImportPath), dep)
				continue
			}
			if _, ok := exceptions[[2]string{from, to}]; ok {
				used[[2]string{from, to}] = true
				continue
			}
			t.Errorf("component %s imports component %s (%s): components talk through topics", from, to, rel(p.ImportPath))
		}
	}
	for e, why := range exceptions {
		if !used[e] {
			t.Errorf("exception %s -> %s (%s) is no longer needed: remove it", e[0], e[1], why)
		}
	}
}
