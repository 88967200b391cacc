package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"
)

// reconCommands are the recon subcommands a deployment may run.
var reconCommands = map[string]bool{"ingest": true, "match": true, "sink": true, "alerts": true}

// ---- what the code says: metric names and environment variables ----

// sourceNames collects, from the module's non-test Go files, every string
// literal matching re (the first submatch).
func sourceNames(t *testing.T, dirs []string, re *regexp.Regexp) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && path != dir && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range re.FindAllSubmatch(b, -1) {
				names[string(m[1])] = true
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(names) == 0 {
		t.Fatalf("no names matching %s found in %v", re, dirs)
	}
	return names
}

// registeredMetrics are the metric names recon registers, with the series
// a histogram adds, plus the scrape's own "up".
func registeredMetrics(t *testing.T) map[string]bool {
	names := sourceNames(t, []string{".."}, regexp.MustCompile(`Name:\s*"(recon_[a-z0-9_]+)"`))
	for n := range names {
		if strings.HasSuffix(n, "_seconds") || strings.HasSuffix(n, "_bytes") {
			names[n+"_bucket"], names[n+"_sum"], names[n+"_count"] = true, true, true
		}
	}
	names["up"] = true
	return names
}

// reconEnv are the environment variables the recon binary reads.
func reconEnv(t *testing.T) map[string]bool {
	return sourceNames(t, []string{"../cmd/recon"}, regexp.MustCompile(`"(RECON_[A-Z0-9_]+)"`))
}

// promqlMetrics parses expr with Prometheus's PromQL parser and returns the
// metric names it selects.
func promqlMetrics(expr string) ([]string, error) {
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	var out []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			out = append(out, vs.Name)
		}
		return nil
	})
	return out, nil
}

// ---- Prometheus ----

// TestPrometheusRules parses every rule file with Prometheus's rule-file
// parser (unknown fields refused, PromQL and templates checked), then
// requires of each alert a severity, a summary and a description, and
// that every metric it reads is one recon registers.
func TestPrometheusRules(t *testing.T) {
	files, _ := filepath.Glob("prometheus/rules/*.yaml")
	if len(files) == 0 {
		t.Fatal("no rule files in prometheus/rules")
	}
	metrics := registeredMetrics(t)
	alertNames := map[string]bool{}
	for _, f := range files {
		groups, errs := rulefmt.ParseFile(f, false, model.LegacyValidation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
		for _, err := range errs {
			t.Errorf("%v", err)
		}
		if groups == nil {
			continue
		}
		for _, g := range groups.Groups {
			for _, r := range g.Rules {
				where := fmt.Sprintf("%s: group %s: alert %s", f, g.Name, r.Alert)
				if r.Alert == "" {
					t.Errorf("%s: recording rule %s: recon ships alert rules only", f, r.Record)
					continue
				}
				if alertNames[r.Alert] {
					t.Errorf("%s: alert name given twice", where)
				}
				alertNames[r.Alert] = true
				if s := r.Labels["severity"]; s != "page" && s != "ticket" {
					t.Errorf("%s: severity label %q, want page or ticket", where, s)
				}
				if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
					t.Errorf("%s: needs summary and description annotations", where)
				}
				names, err := promqlMetrics(r.Expr)
				if err != nil {
					t.Errorf("%s: %v", where, err)
				}
				for _, n := range names {
					if !metrics[n] {
						t.Errorf("%s: reads %s, which recon does not register", where, n)
					}
				}
			}
		}
	}
	if len(alertNames) < 5 {
		t.Errorf("only %d alerts defined", len(alertNames))
	}
}

// prometheusConfig is the part of prometheus.yml recon's setup uses,
// decoded strictly.
type prometheusConfig struct {
	Global struct {
		ScrapeInterval     string `yaml:"scrape_interval"`
		EvaluationInterval string `yaml:"evaluation_interval"`
	} `yaml:"global"`
	RuleFiles     []string `yaml:"rule_files"`
	ScrapeConfigs []struct {
		JobName       string `yaml:"job_name"`
		MetricsPath   string `yaml:"metrics_path"`
		StaticConfigs []struct {
			Targets []string          `yaml:"targets"`
			Labels  map[string]string `yaml:"labels"`
		} `yaml:"static_configs"`
	} `yaml:"scrape_configs"`
}

// ---- Grafana ----

// TestGrafanaDashboard parses the dashboard and its provisioning, every
// query as PromQL, and checks that each metric is one recon registers.
func TestGrafanaDashboard(t *testing.T) {
	var ds struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Name      string `yaml:"name"`
			UID       string `yaml:"uid"`
			Type      string `yaml:"type"`
			Access    string `yaml:"access"`
			URL       string `yaml:"url"`
			IsDefault bool   `yaml:"isDefault"`
			Editable  bool   `yaml:"editable"`
		} `yaml:"datasources"`
	}
	strictYAML(t, "grafana/provisioning/datasources/prometheus.yaml", &ds)
	uids := map[string]bool{}
	for _, d := range ds.Datasources {
		uids[d.UID] = d.Type == "prometheus"
	}
	var prov struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Name            string `yaml:"name"`
			Folder          string `yaml:"folder"`
			Type            string `yaml:"type"`
			DisableDeletion bool   `yaml:"disableDeletion"`
			AllowUIUpdates  bool   `yaml:"allowUiUpdates"`
			Options         struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	strictYAML(t, "grafana/provisioning/dashboards/recon.yaml", &prov)
	if len(prov.Providers) != 1 || prov.Providers[0].Options.Path != "/var/lib/grafana/dashboards" {
		t.Errorf("dashboard provider should read /var/lib/grafana/dashboards (where compose mounts grafana/dashboards): %+v", prov.Providers)
	}

	b, err := os.ReadFile("grafana/dashboards/recon.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID    string `json:"uid"`
		Title  string `json:"title"`
		Panels []struct {
			Title      string `json:"title"`
			Datasource struct {
				UID string `json:"uid"`
			} `json:"datasource"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("recon.json: %v", err)
	}
	if dash.UID == "" || len(dash.Panels) < 8 {
		t.Fatalf("recon.json: uid %q, %d panels", dash.UID, len(dash.Panels))
	}
	metrics := registeredMetrics(t)
	used := map[string]bool{}
	for _, p := range dash.Panels {
		if !uids[p.Datasource.UID] {
			t.Errorf("panel %q: datasource %q is not a provisioned Prometheus", p.Title, p.Datasource.UID)
		}
		for _, tg := range p.Targets {
			names, err := promqlMetrics(tg.Expr)
			if err != nil {
				t.Errorf("panel %q: %v", p.Title, err)
			}
			for _, n := range names {
				used[n] = true
				if !metrics[n] {
					t.Errorf("panel %q: reads %s, which recon does not register", p.Title, n)
				}
			}
		}
	}
	for _, must := range []string{"recon_matcher_decisions_total", "recon_sink_lag_records", "recon_alert_deliveries_total", "recon_ingest_dead_letters_total"} {
		if !used[must] {
			t.Errorf("the dashboard does not show %s", must)
		}
	}
}

// strictYAML decodes file into v, refusing keys v does not have.
func strictYAML(t *testing.T, file string, v any) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}
