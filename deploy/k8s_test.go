package deploy

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

// manifests is every object in k8s/, decoded strictly into its k8s.io/api type.
type manifests struct {
	namespaces   []*corev1.Namespace
	accounts     []*corev1.ServiceAccount
	configMaps   []*corev1.ConfigMap
	services     []*corev1.Service
	deployments  []*appsv1.Deployment
	statefulSets []*appsv1.StatefulSet
	budgets      []*policyv1.PodDisruptionBudget
	autoscalers  []*autoscalingv2.HorizontalPodAutoscaler
}

// workload is a Deployment or StatefulSet, seen the same way.
type workload struct {
	kind, name string
	replicas   int32
	selector   *metav1.LabelSelector
	template   corev1.PodTemplateSpec
}

var docSeparator = regexp.MustCompile(`(?m)^---\s*$`)

// loadManifests splits every k8s/*.yaml into documents and decodes each
// with sigs.k8s.io/yaml's UnmarshalStrict into the type its apiVersion and
// kind name: an unknown field, a duplicate field or a wrong type fails.
func loadManifests(t *testing.T) manifests {
	t.Helper()
	files, _ := filepath.Glob("k8s/*.yaml")
	if len(files) == 0 {
		t.Fatal("no manifests in k8s/")
	}
	var m manifests
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range docSeparator.Split(string(b), -1) {
			if strings.TrimSpace(regexp.MustCompile(`(?m)^\s*#.*$`).ReplaceAllString(doc, "")) == "" {
				continue
			}
			var head metav1.TypeMeta
			if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
				t.Fatalf("%s document %d: %v", f, i+1, err)
			}
			into := func(v any) any {
				if err := yaml.UnmarshalStrict([]byte(doc), v); err != nil {
					t.Errorf("%s document %d (%s): %v", f, i+1, head.Kind, err)
				}
				return v
			}
			switch head.APIVersion + " " + head.Kind {
			case "v1 Namespace":
				m.namespaces = append(m.namespaces, into(&corev1.Namespace{}).(*corev1.Namespace))
			case "v1 ServiceAccount":
				m.accounts = append(m.accounts, into(&corev1.ServiceAccount{}).(*corev1.ServiceAccount))
			case "v1 ConfigMap":
				m.configMaps = append(m.configMaps, into(&corev1.ConfigMap{}).(*corev1.ConfigMap))
			case "v1 Service":
				m.services = append(m.services, into(&corev1.Service{}).(*corev1.Service))
			case "apps/v1 Deployment":
				m.deployments = append(m.deployments, into(&appsv1.Deployment{}).(*appsv1.Deployment))
			case "apps/v1 StatefulSet":
				m.statefulSets = append(m.statefulSets, into(&appsv1.StatefulSet{}).(*appsv1.StatefulSet))
			case "policy/v1 PodDisruptionBudget":
				m.budgets = append(m.budgets, into(&policyv1.PodDisruptionBudget{}).(*policyv1.PodDisruptionBudget))
			case "autoscaling/v2 HorizontalPodAutoscaler":
				m.autoscalers = append(m.autoscalers, into(&autoscalingv2.HorizontalPodAutoscaler{}).(*autoscalingv2.HorizontalPodAutoscaler))
			default:
				t.Errorf("%s document %d: %s %s is not a kind this test knows; add it", f, i+1, head.APIVersion, head.Kind)
			}
		}
	}
	return m
}

func (m manifests) workloads() []workload {
	var out []workload
	for _, d := range m.deployments {
		out = append(out, workload{"Deployment", d.Name, ptr(d.Spec.Replicas), d.Spec.Selector, d.Spec.Template})
	}
	for _, s := range m.statefulSets {
		out = append(out, workload{"StatefulSet", s.Name, ptr(s.Spec.Replicas), s.Spec.Selector, s.Spec.Template})
	}
	return out
}

func ptr(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}

// TestKubernetesManifests decodes every manifest strictly and checks what
// the API server cannot: every recon container has startup, readiness
// and liveness probes on /healthz of a declared port, limits, a locked
// down security context and a pinned image; each workload has a
// disruption budget selecting exactly its pods; autoscalers target
// existing workloads and stop at the partition count (a consumer group
// cannot use more members); consumer-group members are StatefulSets whose
// pod name is their --instance; services select pods that exist; every
// ConfigMap key is a variable recon reads and holds no secret.
func TestKubernetesManifests(t *testing.T) {
	m := loadManifests(t)
	if len(m.configMaps) != 1 {
		t.Fatalf("want one ConfigMap (recon-config), have %d", len(m.configMaps))
	}
	cfg := m.configMaps[0]
	known := reconEnv(t)
	for k, v := range cfg.Data {
		if !known[k] {
			t.Errorf("ConfigMap %s: recon reads no %s", cfg.Name, k)
		}
		if regexp.MustCompile(`TOKEN|SECRET|PASSWORD`).MatchString(k) && !strings.HasSuffix(k, "_FILE") {
			t.Errorf("ConfigMap %s: %s=%q: secrets belong in a Secret", cfg.Name, k, v)
		}
	}
	partitions, err := strconv.Atoi(cfg.Data["RECON_PARTITIONS"])
	if err != nil {
		t.Fatalf("RECON_PARTITIONS: %v", err)
	}

	wls := m.workloads()
	components := map[string]bool{}
	for _, w := range wls {
		where := w.kind + " " + w.name
		sel, err := metav1.LabelSelectorAsSelector(w.selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(w.template.Labels)) {
			t.Errorf("%s: selector %v does not select its own pods %v (%v)", where, w.selector, w.template.Labels, err)
		}
		checkPod(t, where, w.template.Spec, cfg.Name)
		comp := w.template.Labels["app.kubernetes.io/component"]
		components[comp] = true
		args := w.template.Spec.Containers[0].Args
		if len(args) == 0 || !reconCommands[args[0]] || args[0] != comp {
			t.Errorf("%s: args %v should run the recon component %q", where, args, comp)
		}
		if comp == "match" || comp == "sink" || comp == "alerts" {
			if w.kind != "StatefulSet" {
				t.Errorf("%s: a consumer-group member needs a stable, unique --instance: use a StatefulSet", where)
			}
			if !instanceFromPodName(w.template.Spec.Containers[0]) {
				t.Errorf("%s: RECON_INSTANCE must come from metadata.name", where)
			}
		}
		if comp == "alerts" && w.replicas != 1 {
			t.Errorf("%s: %d replicas; the alerts engine must run once", where, w.replicas)
		}
		// exactly one disruption budget selects this workload's pods
		var budgets []string
		for _, b := range m.budgets {
			bs, err := metav1.LabelSelectorAsSelector(b.Spec.Selector)
			if err != nil {
				t.Errorf("PodDisruptionBudget %s: %v", b.Name, err)
				continue
			}
			if bs.Matches(labels.Set(w.template.Labels)) {
				budgets = append(budgets, b.Name)
				if (b.Spec.MinAvailable == nil) == (b.Spec.MaxUnavailable == nil) {
					t.Errorf("PodDisruptionBudget %s: set exactly one of minAvailable and maxUnavailable", b.Name)
				}
				if b.Spec.MinAvailable != nil && b.Spec.MinAvailable.IntValue() >= int(w.replicas) {
					t.Errorf("PodDisruptionBudget %s: minAvailable %s with %d replicas blocks every drain", b.Name, b.Spec.MinAvailable, w.replicas)
				}
			}
		}
		if len(budgets) != 1 {
			t.Errorf("%s: %d disruption budgets select it (%v), want 1", where, len(budgets), budgets)
		}
	}
	for _, c := range []string{"ingest", "match", "sink", "alerts"} {
		if !components[c] {
			t.Errorf("no workload runs recon %s", c)
		}
	}

	for _, h := range m.autoscalers {
		ref := h.Spec.ScaleTargetRef
		i := slices.IndexFunc(wls, func(w workload) bool { return w.kind == ref.Kind && w.name == ref.Name })
		if i < 0 {
			t.Errorf("HorizontalPodAutoscaler %s targets %s %s, which does not exist", h.Name, ref.Kind, ref.Name)
			continue
		}
		if min := ptr(h.Spec.MinReplicas); min < 1 || min > h.Spec.MaxReplicas {
			t.Errorf("HorizontalPodAutoscaler %s: replicas %d..%d", h.Name, min, h.Spec.MaxReplicas)
		}
		if comp := wls[i].template.Labels["app.kubernetes.io/component"]; comp != "ingest" && int(h.Spec.MaxReplicas) > partitions {
			t.Errorf("HorizontalPodAutoscaler %s: maxReplicas %d > %d partitions: the extra consumers would idle", h.Name, h.Spec.MaxReplicas, partitions)
		}
		if wls[i].template.Labels["app.kubernetes.io/component"] == "alerts" {
			t.Errorf("HorizontalPodAutoscaler %s scales the alerts engine, which must run once", h.Name)
		}
		if h.Spec.Behavior == nil || h.Spec.Behavior.ScaleDown == nil {
			t.Errorf("HorizontalPodAutoscaler %s: no scale-down behaviour: every change rebalances the group", h.Name)
		}
	}
	autoscaled := func(name string) bool {
		return slices.ContainsFunc(m.autoscalers, func(h *autoscalingv2.HorizontalPodAutoscaler) bool { return h.Spec.ScaleTargetRef.Name == name })
	}
	for _, w := range wls {
		if c := w.template.Labels["app.kubernetes.io/component"]; (c == "match" || c == "sink") && !autoscaled(w.name) {
			t.Errorf("%s %s: a consumer group without an autoscaler", w.kind, w.name)
		}
	}

	for _, s := range m.services {
		if len(s.Spec.Selector) == 0 {
			t.Errorf("Service %s selects nothing", s.Name)
			continue
		}
		if !slices.ContainsFunc(wls, func(w workload) bool {
			return labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(w.template.Labels))
		}) {
			t.Errorf("Service %s: selector %v matches no pods", s.Name, s.Spec.Selector)
		}
	}
	for _, st := range m.statefulSets {
		i := slices.IndexFunc(m.services, func(s *corev1.Service) bool { return s.Name == st.Spec.ServiceName })
		if i < 0 || m.services[i].Spec.ClusterIP != corev1.ClusterIPNone {
			t.Errorf("StatefulSet %s: serviceName %q is not a headless Service", st.Name, st.Spec.ServiceName)
		}
	}
	if len(m.namespaces) != 1 {
		t.Fatalf("want one Namespace, have %d", len(m.namespaces))
	}
	ns := m.namespaces[0].Name
	for _, name := range namespacedNames(m) {
		if !strings.HasSuffix(name, "@"+ns) {
			t.Errorf("%s is not in namespace %s", name, ns)
		}
	}
}

// checkPod checks one pod template's containers.
func checkPod(t *testing.T, where string, spec corev1.PodSpec, configMap string) {
	if len(spec.Containers) != 1 {
		t.Errorf("%s: %d containers, want 1", where, len(spec.Containers))
		return
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Errorf("%s: recon needs no Kubernetes API token: automountServiceAccountToken: false", where)
	}
	volumes := map[string]bool{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = true
	}
	c := spec.Containers[0]
	if i := strings.LastIndex(c.Image, ":"); i < 0 || c.Image[i+1:] == "latest" {
		t.Errorf("%s: image %q is not pinned", where, c.Image)
	}
	ports := map[string]bool{}
	for _, p := range c.Ports {
		ports[p.Name], ports[strconv.Itoa(int(p.ContainerPort))] = true, true
	}
	for name, p := range map[string]*corev1.Probe{"startupProbe": c.StartupProbe, "readinessProbe": c.ReadinessProbe, "livenessProbe": c.LivenessProbe} {
		switch {
		case p == nil || p.HTTPGet == nil:
			t.Errorf("%s: no HTTP %s", where, name)
		case p.HTTPGet.Path != "/healthz":
			t.Errorf("%s: %s on %s, want /healthz", where, name, p.HTTPGet.Path)
		case !ports[p.HTTPGet.Port.String()]:
			t.Errorf("%s: %s port %s is not a container port", where, name, p.HTTPGet.Port.String())
		}
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("%s: set cpu and memory requests and a memory limit", where)
	}
	sc := c.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		t.Errorf("%s: securityContext must run as non-root, read-only, without privilege escalation and capabilities", where)
	}
	if !slices.ContainsFunc(c.EnvFrom, func(e corev1.EnvFromSource) bool { return e.ConfigMapRef != nil && e.ConfigMapRef.Name == configMap }) {
		t.Errorf("%s: does not read ConfigMap %s", where, configMap)
	}
	dataDir := false
	for _, vm := range c.VolumeMounts {
		dataDir = dataDir || vm.MountPath == "/var/lib/recon"
		if !volumes[vm.Name] && !strings.Contains(where, "StatefulSet") {
			t.Errorf("%s: mounts volume %s, which the pod does not have", where, vm.Name)
		}
	}
	if !dataDir {
		t.Errorf("%s: RECON_DATA_DIR /var/lib/recon is not writable (read-only root filesystem)", where)
	}
	for i, a := range c.Args {
		if a == "--alerts-config" && (i+1 >= len(c.Args) || !slices.ContainsFunc(c.VolumeMounts, func(vm corev1.VolumeMount) bool { return strings.HasPrefix(c.Args[i+1], vm.MountPath+"/") })) {
			t.Errorf("%s: --alerts-config is not on a mounted volume", where)
		}
	}
	for _, e := range c.Env {
		if e.Value != "" && regexp.MustCompile(`TOKEN|SECRET|PASSWORD`).MatchString(e.Name) {
			t.Errorf("%s: %s has a literal value; use a secretKeyRef", where, e.Name)
		}
	}
}

func instanceFromPodName(c corev1.Container) bool {
	return slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool {
		return e.Name == "RECON_INSTANCE" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name"
	})
}

func namespacedNames(m manifests) []string {
	var out []string
	add := func(kind string, o metav1.ObjectMeta) {
		out = append(out, fmt.Sprintf("%s %s@%s", kind, o.Name, o.Namespace))
	}
	for _, o := range m.accounts {
		add("ServiceAccount", o.ObjectMeta)
	}
	for _, o := range m.configMaps {
		add("ConfigMap", o.ObjectMeta)
	}
	for _, o := range m.services {
		add("Service", o.ObjectMeta)
	}
	for _, o := range m.deployments {
		add("Deployment", o.ObjectMeta)
	}
	for _, o := range m.statefulSets {
		add("StatefulSet", o.ObjectMeta)
	}
	for _, o := range m.budgets {
		add("PodDisruptionBudget", o.ObjectMeta)
	}
	for _, o := range m.autoscalers {
		add("HorizontalPodAutoscaler", o.ObjectMeta)
	}
	return out
}

// TestStrictDecodingCatches proves the validator is not a rubber stamp:
// a misspelt field, a wrong type and a Service selector written like a
// Deployment's are all refused.
func TestStrictDecodingCatches(t *testing.T) {
	for _, tc := range []struct{ name, doc string }{
		{"unknown field", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replica: 2}\n"},
		{"wrong type", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicas: two}\n"},
		{"service selector", "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {selector: {matchLabels: {a: b}}}\n"},
		{"duplicate field", "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nmetadata: {name: y}\n"},
	} {
		var v any = &appsv1.Deployment{}
		if strings.Contains(tc.doc, "kind: Service") {
			v = &corev1.Service{}
		}
		if err := yaml.UnmarshalStrict([]byte(tc.doc), v); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}
