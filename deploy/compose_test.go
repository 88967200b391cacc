package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/reconhq/recon/alerts"
)

// composeFile is the part of the Compose specification recon's file
// uses; decoding is strict, so a misspelt or unsupported key fails.
// Top-level x- keys are extensions (anchors for shared blocks).
type composeFile struct {
	Name       string                    `yaml:"name"`
	Services   map[string]composeService `yaml:"services"`
	Volumes    map[string]struct{}       `yaml:"volumes"`
	Extensions map[string]any            `yaml:",inline"`
}

type composeService struct {
	Image string `yaml:"image"`
	Build *struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	} `yaml:"build"`
	Hostname    string            `yaml:"hostname"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Ports       []string          `yaml:"ports"`
	Volumes     []string          `yaml:"volumes"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Healthcheck *struct {
		Test        []string `yaml:"test"`
		Interval    string   `yaml:"interval"`
		Timeout     string   `yaml:"timeout"`
		Retries     int      `yaml:"retries"`
		StartPeriod string   `yaml:"start_period"`
	} `yaml:"healthcheck"`
	Restart string `yaml:"restart"`
	Ulimits map[string]struct {
		Soft int `yaml:"soft"`
		Hard int `yaml:"hard"`
	} `yaml:"ulimits"`
}

var interpolation = regexp.MustCompile(`\$\{([A-Z0-9_]+)(:?[-?])?([^}]*)\}`)

// expandDefaults replaces ${VAR:-default} by its default and ${VAR} or
// ${VAR:?msg} by a placeholder, as compose would with VAR unset.
func expandDefaults(s string) string {
	return interpolation.ReplaceAllStringFunc(s, func(m string) string {
		p := interpolation.FindStringSubmatch(m)
		if strings.HasSuffix(p[2], "-") {
			return p[3]
		}
		return "<" + p[1] + ">"
	})
}

// TestCompose decodes compose/compose.yaml strictly, then checks what
// makes it run: three KRaft brokers that know each other, every recon
// component with unique instance names, dependencies that exist, files
// that exist, pinned images, loopback-only ports, no secret in the file,
// and Prometheus scraping exactly recon's services with the rules mounted.
func TestCompose(t *testing.T) {
	var c composeFile
	strictYAML(t, "compose/compose.yaml", &c)
	for k := range c.Extensions {
		if !strings.HasPrefix(k, "x-") {
			t.Errorf("unknown top-level key %q", k)
		}
	}
	known := reconEnv(t)
	secretish := regexp.MustCompile(`TOKEN|SECRET|PASSWORD`)
	hostPorts := map[string]string{}
	var brokers []string
	nodeIDs := map[string]string{}
	instances := map[string]string{}
	components := map[string]int{}
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range c.Services {
			if !yield(n) {
				return
			}
		}
	})
	for _, name := range names {
		s := c.Services[name]
		if s.Image == "" {
			t.Errorf("%s: no image", name)
		} else if i := strings.LastIndex(s.Image, ":"); i < 0 || s.Image[i+1:] == "latest" {
			t.Errorf("%s: image %s is not pinned to a version", name, s.Image)
		}
		if s.Build != nil {
			if _, err := os.Stat(filepath.Join("compose", s.Build.Context, s.Build.Dockerfile)); err != nil {
				t.Errorf("%s: build: %v", name, err)
			}
		}
		for dep, d := range s.DependsOn {
			target, ok := c.Services[dep]
			switch {
			case !ok:
				t.Errorf("%s depends on %s, which is not a service", name, dep)
			case d.Condition == "service_healthy" && target.Healthcheck == nil:
				t.Errorf("%s waits for %s to be healthy, but it has no healthcheck", name, dep)
			case d.Condition != "service_started" && d.Condition != "service_healthy" && d.Condition != "service_completed_successfully":
				t.Errorf("%s: depends_on %s: unknown condition %q", name, dep, d.Condition)
			}
		}
		for _, p := range s.Ports {
			if !strings.HasPrefix(p, "127.0.0.1:") {
				t.Errorf("%s: port %s is published on every interface; bind it to 127.0.0.1", name, p)
			}
			host := strings.Split(p, ":")[1]
			if other, dup := hostPorts[host]; dup {
				t.Errorf("%s and %s both publish host port %s", name, other, host)
			}
			hostPorts[host] = name
		}
		for _, v := range s.Volumes {
			src := strings.Split(expandDefaults(v), ":")[0]
			if strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") {
				if _, err := os.Stat(filepath.Join("compose", src)); err != nil {
					t.Errorf("%s: mounts %s: %v", name, src, err)
				}
			} else if _, ok := c.Volumes[src]; !ok {
				t.Errorf("%s: named volume %s is not declared", name, src)
			}
		}
		for k, v := range s.Environment {
			if secretish.MatchString(k) && !strings.HasSuffix(k, "_FILE") && v != "" && !interpolation.MatchString(v) {
				t.Errorf("%s: %s holds a literal value; secrets come from the operator's environment", name, k)
			}
			if strings.HasPrefix(k, "RECON_") && !known[k] {
				t.Errorf("%s: recon reads no %s", name, k)
			}
			if strings.HasPrefix(k, "ZOOKEEPER") || k == "KAFKA_ZOOKEEPER_CONNECT" {
				t.Errorf("%s: %s: the cluster runs in KRaft mode", name, k)
			}
		}
		if strings.HasPrefix(s.Image, "apache/kafka:") {
			env := s.Environment
			if !strings.Contains(env["KAFKA_PROCESS_ROLES"], "controller") {
				t.Errorf("%s: KAFKA_PROCESS_ROLES %q: not a KRaft controller", name, env["KAFKA_PROCESS_ROLES"])
			}
			nodeIDs[env["KAFKA_NODE_ID"]+"@"+name+":9093"] = name
			brokers = append(brokers, name+":9092")
			if env["KAFKA_ADVERTISED_LISTENERS"] != "PLAINTEXT://"+name+":9092" {
				t.Errorf("%s advertises %s", name, env["KAFKA_ADVERTISED_LISTENERS"])
			}
		}
		if s.Image == "recon:local" {
			if len(s.Command) == 0 || !reconCommands[s.Command[0]] {
				t.Fatalf("%s: command %v is not a recon component", name, s.Command)
			}
			components[s.Command[0]]++
			i := slices.Index(s.Command, "--instance")
			if i < 0 || i+1 >= len(s.Command) {
				t.Errorf("%s: no --instance", name)
			} else if other, dup := instances[s.Command[i+1]]; dup {
				t.Errorf("%s and %s share --instance %s", name, other, s.Command[i+1])
			} else {
				instances[s.Command[i+1]] = name
			}
			if j := slices.Index(s.Command, "--alerts-config"); j >= 0 && !mountedAt(s.Volumes, s.Command[j+1]) {
				t.Errorf("%s: --alerts-config %s is not mounted", name, s.Command[j+1])
			}
		}
	}
	if len(brokers) != 3 {
		t.Fatalf("want three Kafka brokers, have %v", brokers)
	}
	for _, b := range []string{"kafka-1", "kafka-2", "kafka-3"} {
		voters := strings.Split(c.Services[b].Environment["KAFKA_CONTROLLER_QUORUM_VOTERS"], ",")
		slices.Sort(voters)
		want := slices.Sorted(func(yield func(string) bool) {
			for v := range nodeIDs {
				if !yield(v) {
					return
				}
			}
		})
		if !slices.Equal(voters, want) {
			t.Errorf("%s: quorum voters %v, want %v", b, voters, want)
		}
		env := c.Services[b].Environment
		minISR, _ := strconv.Atoi(env["KAFKA_MIN_INSYNC_REPLICAS"])
		if rf, _ := strconv.Atoi(env["KAFKA_DEFAULT_REPLICATION_FACTOR"]); minISR < 2 || minISR >= rf || rf > 3 {
			t.Errorf("%s: min.insync.replicas %d with replication factor %d: want 2 of 3", b, minISR, rf)
		}
	}
	if components["match"] < 2 || components["ingest"] < 1 || components["sink"] < 1 || components["alerts"] != 1 {
		t.Errorf("components %v: want ingest, two or more match, sink, exactly one alerts", components)
	}
	for _, name := range names {
		env := c.Services[name].Environment
		if c.Services[name].Image != "recon:local" {
			continue
		}
		got := strings.Split(env["RECON_KAFKA_BROKERS"], ",")
		if !slices.Equal(got, brokers) {
			t.Errorf("%s: RECON_KAFKA_BROKERS %v, want %v", name, got, brokers)
		}
		if rf, _ := strconv.Atoi(env["RECON_REPLICATION_FACTOR"]); rf != len(brokers) {
			t.Errorf("%s: RECON_REPLICATION_FACTOR %d on %d brokers", name, rf, len(brokers))
		}
	}
	for _, must := range []string{"clickhouse", "prometheus", "grafana"} {
		if _, ok := c.Services[must]; !ok {
			t.Errorf("no %s service", must)
		}
	}
	checkPrometheusTargets(t, c)

	// the alert rules the compose file mounts load with recon's own loader
	if _, err := alerts.LoadConfig("compose/alerts.example.yaml"); err != nil {
		t.Errorf("compose/alerts.example.yaml: %v", err)
	}
}

func mountedAt(volumes []string, path string) bool {
	for _, v := range volumes {
		parts := strings.Split(expandDefaults(v), ":")
		if len(parts) >= 2 && (parts[1] == path || strings.HasPrefix(path, parts[1]+"/")) {
			return true
		}
	}
	return false
}

// checkPrometheusTargets: Prometheus scrapes every recon service, only
// services that exist, and loads rules from where compose mounts them.
func checkPrometheusTargets(t *testing.T, c composeFile) {
	var pc prometheusConfig
	strictYAML(t, "prometheus/prometheus.yml", &pc)
	scraped := map[string]bool{}
	for _, sc := range pc.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			for _, target := range st.Targets {
				host := strings.Split(target, ":")[0]
				s, ok := c.Services[host]
				if !ok {
					t.Errorf("prometheus scrapes %s, which is not a compose service", target)
				}
				if len(s.Command) > 0 && st.Labels["component"] != s.Command[0] {
					t.Errorf("prometheus labels %s component=%s, but it runs %s", target, st.Labels["component"], s.Command[0])
				}
				scraped[host] = true
			}
		}
	}
	for name, s := range c.Services {
		if s.Image == "recon:local" && !scraped[name] {
			t.Errorf("prometheus does not scrape %s", name)
		}
	}
	prom := c.Services["prometheus"]
	for _, rf := range pc.RuleFiles {
		if !mountedAt(prom.Volumes, filepath.Dir(rf)) {
			t.Errorf("rule_files %s: not mounted into the prometheus service", rf)
		}
	}
}
