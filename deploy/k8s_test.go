package deploy

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

type object = map[string]any

func manifestPaths(t *testing.T) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("k8s", "*.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no manifests in deploy/k8s: %v", err)
	}
	sort.Strings(paths)
	return paths
}

func readManifest(t *testing.T, path string) []any {
	t.Helper()
	docs, err := parseYAML(readFile(t, path))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return docs
}

// dig walks maps by key and slices by index; it returns nil when the path is absent.
func dig(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(object)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			s, ok := v.([]any)
			if !ok || k >= len(s) {
				return nil
			}
			v = s[k]
		}
	}
	return v
}

// cluster is the kustomize base as objects keyed by "Kind/name", plus the example Secret.
type cluster map[string]object

func loadCluster(t *testing.T) cluster {
	t.Helper()
	c := cluster{}
	for _, path := range manifestPaths(t) {
		for i, doc := range readManifest(t, path) {
			obj, ok := doc.(object)
			if !ok {
				t.Fatalf("%s document %d is not a mapping", path, i)
			}
			kind, _ := obj["kind"].(string)
			name, _ := dig(obj, "metadata", "name").(string)
			if kind == "Kustomization" {
				name = "base"
			}
			c[kind+"/"+name] = obj
		}
	}
	return c
}

func (c cluster) get(t *testing.T, key string) object {
	t.Helper()
	obj, ok := c[key]
	if !ok {
		t.Fatalf("deploy/k8s has no %s", key)
	}
	return obj
}

func (c cluster) container(t *testing.T) object {
	t.Helper()
	ctr, ok := dig(c.get(t, "Deployment/tpe-provisioner"), "spec", "template", "spec", "containers", 0).(object)
	if !ok {
		t.Fatal("Deployment/tpe-provisioner has no container")
	}
	return ctr
}

func (c cluster) config(t *testing.T) object {
	t.Helper()
	data, _ := dig(c.get(t, "ConfigMap/tpe-provisioner"), "data").(object)
	return data
}

func TestManifestsAreKubernetesObjects(t *testing.T) {
	t.Parallel()
	for _, path := range manifestPaths(t) {
		for i, doc := range readManifest(t, path) {
			for _, field := range [][]any{{"apiVersion"}, {"kind"}, {"metadata", "name"}} {
				if filepath.Base(path) == "kustomization.yaml" && field[0] == "metadata" {
					continue
				}
				if s, _ := dig(doc, field...).(string); s == "" {
					t.Errorf("%s document %d: %v missing", path, i, field)
				}
			}
		}
	}
}

// TestKustomizationListsEveryManifest: a manifest left out of the base is silently never
// applied, and the example Secret must never be applied with its placeholder.
func TestKustomizationListsEveryManifest(t *testing.T) {
	t.Parallel()
	listed := map[string]bool{}
	for _, r := range dig(loadCluster(t).get(t, "Kustomization/base"), "resources").([]any) {
		listed[r.(string)] = true
	}
	for _, path := range manifestPaths(t) {
		name := filepath.Base(path)
		switch {
		case name == "kustomization.yaml":
		case name == "secret.example.yaml" && listed[name]:
			t.Errorf("kustomization applies %s, a placeholder secret", name)
		case name != "secret.example.yaml" && !listed[name]:
			t.Errorf("kustomization does not list %s", name)
		}
		delete(listed, name)
	}
	for name := range listed {
		t.Errorf("kustomization lists %s, which does not exist", name)
	}
}

// TestKustomizeRenders builds the base with kubectl's embedded kustomize (offline) and checks
// what a cluster would receive. Skipped where kubectl is not installed.
func TestKustomizeRenders(t *testing.T) {
	t.Parallel()
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, kubectl, "kustomize", "k8s").CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl kustomize k8s: %v\n%s", err, out)
	}
	docs, err := parseYAML(string(out))
	if err != nil {
		t.Fatalf("rendered base: %v", err)
	}
	var got []string
	var image any
	for _, d := range docs {
		kind, _ := dig(d, "kind").(string)
		got = append(got, kind+"/"+fmt.Sprint(dig(d, "metadata", "name")))
		if dig(d, "metadata", "labels", "app.kubernetes.io/part-of") != "tpe-provisioner" {
			t.Errorf("%s/%v lacks the common labels", kind, dig(d, "metadata", "name"))
		}
		switch kind {
		case "Deployment":
			image = dig(d, "spec", "template", "spec", "containers", 0, "image")
		case "CronJob":
			if img := dig(d, "spec", "jobTemplate", "spec", "template", "spec", "containers", 0, "image"); img != "myregistry.azurecr.io/tpe-provisioner:latest" {
				t.Errorf("CronJob/%v image = %v; want the kustomization's images entry applied", dig(d, "metadata", "name"), img)
			}
		}
	}
	sort.Strings(got)
	want := []string{
		"ConfigMap/tpe-provisioner", "CronJob/tpe-provisioner-resync", "CronJob/tpe-provisioner-subscribe",
		"Deployment/tpe-provisioner", "PodDisruptionBudget/tpe-provisioner",
		"ScaledObject/tpe-provisioner", "Service/tpe-provisioner-metrics", "ServiceAccount/tpe-provisioner",
		"TriggerAuthentication/tpe-provisioner-servicebus",
	}
	if !slices.Equal(got, want) {
		t.Errorf("rendered objects\n got  %v\n want %v", got, want)
	}
	if image != "myregistry.azurecr.io/tpe-provisioner:latest" {
		t.Errorf("rendered image = %v; want the kustomization's images entry applied", image)
	}
}

func TestWorkerGetsEveryRunSetting(t *testing.T) {
	t.Parallel()
	c := loadCluster(t)
	config := c.config(t)
	secret, _ := dig(c.get(t, "Secret/tpe-provisioner"), "stringData").(object)
	d := loadDeclaration(t)
	for _, name := range d.run {
		_, inConfig := config[name]
		_, inSecret := secret[name]
		if !inConfig && !inSecret {
			t.Errorf("%s reaches the worker neither from the ConfigMap nor from the Secret", name)
		}
	}
	for _, name := range d.secret {
		if _, ok := config[name]; ok {
			t.Errorf("%s is a secret but sits in the ConfigMap", name)
		}
	}
	for name, v := range config {
		if _, ok := v.(string); !ok {
			t.Errorf("ConfigMap %s = %#v; Kubernetes accepts only strings: quote it", name, v)
		}
	}
	env := map[string]string{}
	for _, src := range dig(c.container(t), "envFrom").([]any) {
		for kind, ref := range src.(object) {
			env[kind] = fmt.Sprint(dig(ref, "name"))
		}
	}
	if env["configMapRef"] != "tpe-provisioner" || env["secretRef"] != "tpe-provisioner" {
		t.Errorf("envFrom = %v; want the tpe-provisioner ConfigMap and Secret", env)
	}
}

// TestDeployedNamesAreSettings catches a misspelt variable, which the binary would ignore.
func TestDeployedNamesAreSettings(t *testing.T) {
	t.Parallel()
	known := loadDeclaration(t).known
	c := loadCluster(t)
	secret, _ := dig(c.get(t, "Secret/tpe-provisioner"), "stringData").(object)
	names := map[string]string{}
	for k := range c.config(t) {
		names[k] = "ConfigMap"
	}
	for k := range secret {
		names[k] = "Secret"
	}
	if env, ok := dig(c.container(t), "env").([]any); ok {
		for _, e := range env {
			names[fmt.Sprint(dig(e, "name"))] = "Deployment env"
		}
	}
	for name, where := range names {
		if !known[name] && !slices.Contains(azidentitySettings, name) {
			t.Errorf("%s sets %s, which tpe-provisioner does not read", where, name)
		}
	}
}

func TestDeploymentRunsTheWorkerSafely(t *testing.T) {
	t.Parallel()
	c := loadCluster(t)
	dep := c.get(t, "Deployment/tpe-provisioner")
	pod := dig(dep, "spec", "template", "spec")
	ctr := c.container(t)
	sa := dig(pod, "serviceAccountName")
	checks := []struct {
		what string
		got  any
		want any
	}{
		{"workload identity pod label", dig(dep, "spec", "template", "metadata", "labels", "azure.workload.identity/use"), "true"},
		{"service account", sa, "tpe-provisioner"},
		{"service account client-id annotation present", dig(c.get(t, fmt.Sprintf("ServiceAccount/%v", sa)), "metadata", "annotations", "azure.workload.identity/client-id") != nil, true},
		{"replicas left to KEDA", dig(dep, "spec", "replicas"), nil},
		{"args", fmt.Sprint(dig(ctr, "args")), "[run]"},
		{"runAsNonRoot", dig(pod, "securityContext", "runAsNonRoot"), true},
		{"runAsUser is distroless nonroot", dig(pod, "securityContext", "runAsUser"), 65532},
		{"readOnlyRootFilesystem", dig(ctr, "securityContext", "readOnlyRootFilesystem"), true},
		{"allowPrivilegeEscalation", dig(ctr, "securityContext", "allowPrivilegeEscalation"), false},
		{"capabilities dropped", fmt.Sprint(dig(ctr, "securityContext", "capabilities", "drop")), "[ALL]"},
		{"cpu request set", dig(ctr, "resources", "requests", "cpu") != nil, true},
		{"memory request set", dig(ctr, "resources", "requests", "memory") != nil, true},
		{"memory limit set", dig(ctr, "resources", "limits", "memory") != nil, true},
		{"liveness path", dig(ctr, "livenessProbe", "httpGet", "path"), "/healthz"},
		{"readiness path", dig(ctr, "readinessProbe", "httpGet", "path"), "/readyz"},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s = %#v; want %#v", ck.what, ck.got, ck.want)
		}
	}
}

// opsPort is the port of TPE_HTTP_LISTEN, where /healthz, /readyz and /metrics are served.
func opsPort(t *testing.T, listen any) int {
	t.Helper()
	_, p, err := net.SplitHostPort(fmt.Sprint(listen))
	port, err2 := strconv.Atoi(p)
	if err != nil || err2 != nil {
		t.Fatalf("TPE_HTTP_LISTEN = %v is not host:port", listen)
	}
	return port
}

func TestProbesAndMetricsUseTheOpsPort(t *testing.T) {
	t.Parallel()
	c := loadCluster(t)
	port := opsPort(t, c.config(t)["TPE_HTTP_LISTEN"])
	ctr := c.container(t)
	named := map[string]int{}
	for _, p := range dig(ctr, "ports").([]any) {
		named[fmt.Sprint(dig(p, "name"))], _ = dig(p, "containerPort").(int)
	}
	resolve := func(v any) int {
		if n, ok := v.(int); ok {
			return n
		}
		return named[fmt.Sprint(v)]
	}
	svc := c.get(t, "Service/tpe-provisioner-metrics")
	for what, v := range map[string]any{
		"liveness probe port":        dig(ctr, "livenessProbe", "httpGet", "port"),
		"readiness probe port":       dig(ctr, "readinessProbe", "httpGet", "port"),
		"metrics Service targetPort": dig(svc, "spec", "ports", 0, "targetPort"),
	} {
		if got := resolve(v); got != port {
			t.Errorf("%s resolves to %d; TPE_HTTP_LISTEN serves on %d", what, got, port)
		}
	}
}

func TestSelectorsMatchTheWorkerPods(t *testing.T) {
	t.Parallel()
	c := loadCluster(t)
	labels := dig(c.get(t, "Deployment/tpe-provisioner"), "spec", "template", "metadata", "labels").(object)
	for what, sel := range map[string]any{
		"Deployment selector": dig(c.get(t, "Deployment/tpe-provisioner"), "spec", "selector", "matchLabels"),
		"Service selector":    dig(c.get(t, "Service/tpe-provisioner-metrics"), "spec", "selector"),
		"PDB selector":        dig(c.get(t, "PodDisruptionBudget/tpe-provisioner"), "spec", "selector", "matchLabels"),
	} {
		m, ok := sel.(object)
		if !ok || len(m) == 0 {
			t.Errorf("%s is empty", what)
			continue
		}
		for k, v := range m {
			if labels[k] != v {
				t.Errorf("%s wants %s=%v; the pods carry %v", what, k, v, labels[k])
			}
		}
	}
}

func TestShutdownDrainsWithinTheGracePeriod(t *testing.T) {
	t.Parallel()
	c := loadCluster(t)
	drain, err := time.ParseDuration(fmt.Sprint(c.config(t)["TPE_SHUTDOWN_TIMEOUT"]))
	if err != nil {
		t.Fatalf("TPE_SHUTDOWN_TIMEOUT: %v", err)
	}
	grace, _ := dig(c.get(t, "Deployment/tpe-provisioner"), "spec", "template", "spec", "terminationGracePeriodSeconds").(int)
	if time.Duration(grace)*time.Second <= drain {
		t.Errorf("terminationGracePeriodSeconds = %d; must exceed TPE_SHUTDOWN_TIMEOUT %s or in-flight messages are killed", grace, drain)
	}
}

func TestScaledObjectWatchesTheWorkersQueue(t *testing.T) {
	t.Parallel()
	c := loadCluster(t)
	so := c.get(t, "ScaledObject/tpe-provisioner")
	config := c.config(t)
	trig := dig(so, "spec", "triggers", 0)
	nsHost := fmt.Sprint(config["SERVICEBUS_NAMESPACE"])
	auth := fmt.Sprint(dig(trig, "authenticationRef", "name"))
	checks := []struct {
		what      string
		got, want any
	}{
		{"scale target", dig(so, "spec", "scaleTargetRef", "name"), "tpe-provisioner"},
		{"scale target kind", dig(so, "spec", "scaleTargetRef", "kind"), "Deployment"},
		{"trigger type", dig(trig, "type"), "azure-servicebus"},
		{"queue", dig(trig, "metadata", "queueName"), config["SERVICEBUS_QUEUE"]},
		{"namespace (name, not host)", dig(trig, "metadata", "namespace"), strings.Split(nsHost, ".")[0]},
		{"messages per replica", dig(trig, "metadata", "messageCount"), "5"},
		{"auth provider", dig(c.get(t, "TriggerAuthentication/"+auth), "spec", "podIdentity", "provider"), "azure-workload"},
		{"min replicas: one warm worker", dig(so, "spec", "minReplicaCount"), 1},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s = %#v; want %#v", ck.what, ck.got, ck.want)
		}
	}
	if max, _ := dig(so, "spec", "maxReplicaCount").(int); max < 1 {
		t.Errorf("maxReplicaCount = %d; want at least 1", max)
	}
}
