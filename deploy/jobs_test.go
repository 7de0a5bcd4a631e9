package deploy

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// With several replicas of `run`, the scheduled resync and the subscription renewal must run
// once, not once per replica: both targets deploy them as scheduled jobs (a Kubernetes
// CronJob, a Container Apps job) and turn them off inside `run`.

// singletonJobs are the scheduled duties: the command each job runs, and the settings that
// command reads which must reach it (the rest of its settings are the worker's).
var singletonJobs = []struct {
	k8sName, bicepResource string
	args                   []string
	needs                  []string
}{
	{"tpe-provisioner-resync", "resync", []string{"backfill", "--enqueue"},
		[]string{"ACS_ENDPOINT", "GRAPH_ENDPOINT", "TPE_TENANT_ID", "TPE_CLIENT_IDS", "TPE_SCOPE_GROUPS",
			"TPE_MAX_REVOKES", "TPE_MAX_REVOKE_PERCENT", "TPE_DRY_RUN", "SERVICEBUS_NAMESPACE", "SERVICEBUS_QUEUE"}},
	{"tpe-provisioner-subscribe", "renewal", []string{"subscribe"},
		[]string{"GRAPH_ENDPOINT", "TPE_TENANT_ID", "TPE_CLIENT_STATE", "TPE_SCOPE_GROUPS", "TPE_EVENT_GRID"}},
}

var cronField = regexp.MustCompile(`^[0-9*,/-]+$`)

// validCron accepts the five-field schedules both CronJob and Container Apps jobs take.
func validCron(s string) bool {
	f := strings.Fields(s)
	return len(f) == 5 && !slices.ContainsFunc(f, func(x string) bool { return !cronField.MatchString(x) })
}

func TestCronJobsRunTheSingletonDutiesOnce(t *testing.T) {
	t.Parallel()
	c := loadCluster(t)
	worker := dig(c.get(t, "Deployment/tpe-provisioner"), "spec", "template", "spec")
	config := c.config(t)
	secret, _ := dig(c.get(t, "Secret/tpe-provisioner"), "stringData").(object)
	for _, job := range singletonJobs {
		cj := c.get(t, "CronJob/"+job.k8sName)
		pod := dig(cj, "spec", "jobTemplate", "spec", "template")
		ctr := dig(pod, "spec", "containers", 0)
		checks := []struct {
			what      string
			got, want any
		}{
			{"args", fmt.Sprint(dig(ctr, "args")), fmt.Sprint(job.args)},
			{"image (the kustomization's name)", dig(ctr, "image"), "tpe-provisioner"},
			{"one run at a time", dig(cj, "spec", "concurrencyPolicy"), "Forbid"},
			{"schedule in UTC", dig(cj, "spec", "timeZone"), "Etc/UTC"},
			{"valid schedule", validCron(fmt.Sprint(dig(cj, "spec", "schedule"))), true},
			{"the worker's env", fmt.Sprint(dig(ctr, "envFrom")), fmt.Sprint(dig(worker, "containers", 0, "envFrom"))},
			{"the worker's service account", dig(pod, "spec", "serviceAccountName"), dig(worker, "serviceAccountName")},
			{"workload identity", dig(pod, "metadata", "labels", "azure.workload.identity/use"), "true"},
			{"not a worker pod (PDB, Service)", dig(pod, "metadata", "labels", "app.kubernetes.io/component") != "worker", true},
			{"restart by the Job, not in place", dig(pod, "spec", "restartPolicy"), "Never"},
			{"bounded retries", dig(cj, "spec", "jobTemplate", "spec", "backoffLimit") != nil, true},
			{"bounded run", dig(cj, "spec", "jobTemplate", "spec", "activeDeadlineSeconds") != nil, true},
			{"runAsNonRoot", dig(pod, "spec", "securityContext", "runAsNonRoot"), true},
			{"readOnlyRootFilesystem", dig(ctr, "securityContext", "readOnlyRootFilesystem"), true},
			{"capabilities dropped", fmt.Sprint(dig(ctr, "securityContext", "capabilities", "drop")), "[ALL]"},
		}
		for _, ck := range checks {
			if ck.got != ck.want {
				t.Errorf("CronJob/%s: %s = %#v; want %#v", job.k8sName, ck.what, ck.got, ck.want)
			}
		}
		for _, name := range job.needs {
			_, inConfig := config[name]
			_, inSecret := secret[name]
			if !inConfig && !inSecret {
				t.Errorf("CronJob/%s: %s reaches it neither from the ConfigMap nor from the Secret", job.k8sName, name)
			}
		}
	}
}

// TestReplicasLeaveTheScheduledDutiesToTheJobs: the Deployment's replicas get
// TPE_RESYNC_INTERVAL 0 and TPE_RENEW_SUBSCRIPTIONS false, from the ConfigMap or their own
// env (which wins).
func TestReplicasLeaveTheScheduledDutiesToTheJobs(t *testing.T) {
	t.Parallel()
	c := loadCluster(t)
	env := map[string]string{}
	for k, v := range c.config(t) {
		env[k] = fmt.Sprint(v)
	}
	if list, ok := dig(c.container(t), "env").([]any); ok {
		for _, e := range list {
			env[fmt.Sprint(dig(e, "name"))] = fmt.Sprint(dig(e, "value"))
		}
	}
	if d, err := time.ParseDuration(env["TPE_RESYNC_INTERVAL"]); err != nil || d != 0 {
		t.Errorf("the worker's TPE_RESYNC_INTERVAL = %q; want 0: CronJob/tpe-provisioner-resync resyncs once for all replicas", env["TPE_RESYNC_INTERVAL"])
	}
	if env["TPE_RENEW_SUBSCRIPTIONS"] != "false" {
		t.Errorf("the worker's TPE_RENEW_SUBSCRIPTIONS = %q; want false: CronJob/tpe-provisioner-subscribe renews once for all replicas", env["TPE_RENEW_SUBSCRIPTIONS"])
	}
}

// bicepResource returns the body of `resource <name> '<type>@...' ...` in a file's code, up
// to its closing brace, and the declaration line.
func bicepResource(t *testing.T, path, name string) (decl, body string) {
	t.Helper()
	lines := bicepCode(t, path)
	start := regexp.MustCompile(`^resource ` + name + ` '`)
	for i, l := range lines {
		if !start.MatchString(l) {
			continue
		}
		depth := 0
		for j := i; j < len(lines); j++ {
			depth += strings.Count(lines[j], "{") - strings.Count(lines[j], "}")
			if depth == 0 && j > i {
				return l, strings.Join(lines[i:j+1], "\n")
			}
		}
	}
	t.Fatalf("%s declares no resource %s", path, name)
	return "", ""
}

func TestBicepJobsRunTheSingletonDutiesOnce(t *testing.T) {
	t.Parallel()
	path := filepath.Join("bicep", "modules", "containerapp.bicep")
	flags := map[string]string{"resync": "deployResyncJob", "renewal": "deployRenewalJob"}
	schedules := map[string]string{"resync": "resyncSchedule", "renewal": "renewalSchedule"}
	mainParams := map[string]bicepParam{}
	for _, p := range bicepParams(t, filepath.Join("bicep", "main.bicep")) {
		mainParams[p.name] = p
	}
	mainCode := readFile(t, filepath.Join("bicep", "main.bicep"))
	for _, job := range singletonJobs {
		decl, body := bicepResource(t, path, job.bicepResource)
		var args []string
		if m := regexp.MustCompile(`(?s)args: \[(.*?)\]`).FindStringSubmatch(body); m != nil {
			for _, a := range strings.Fields(m[1]) {
				args = append(args, strings.Trim(a, "'"))
			}
		}
		for what, ok := range map[string]bool{
			"a Container Apps job":                      strings.Contains(decl, "'Microsoft.App/jobs@"),
			"deployed when " + flags[job.bicepResource]: strings.HasSuffix(decl, "= if ("+flags[job.bicepResource]+") {"),
			"on a schedule":                             strings.Contains(body, "triggerType: 'Schedule'"),
			"cron " + schedules[job.bicepResource]:      strings.Contains(body, "cronExpression: "+schedules[job.bicepResource]),
			"one replica per run":                       strings.Contains(body, "parallelism: 1") && strings.Contains(body, "replicaCompletionCount: 1"),
			"the worker's env":                          strings.Contains(body, "env: env"),
			"the worker identity":                       strings.Contains(body, "'${workerIdentityId}': {}"),
			"the clientState secret":                    strings.Contains(body, "secrets: secrets"),
			fmt.Sprintf("args %v", job.args):            slices.Equal(args, job.args),
		} {
			if !ok {
				t.Errorf("containerapp.bicep %s is not %s", job.bicepResource, what)
			}
		}
		flag := mainParams[flags[job.bicepResource]]
		if !flag.hasDefault || !strings.Contains(mainCode, "param "+flag.name+" bool = true") {
			t.Errorf("main.bicep %s must default to true: the replicas' own duties are the exception", flags[job.bicepResource])
		}
		def := regexp.MustCompile(`param ` + schedules[job.bicepResource] + ` string = '([^']+)'`).FindStringSubmatch(mainCode)
		if def == nil || !validCron(def[1]) {
			t.Errorf("main.bicep %s = %v; want a five-field cron default", schedules[job.bicepResource], def)
		}
	}
	// The replicas turn the duties off exactly when the jobs are deployed.
	_, expr := bicepEnv(t)
	for name, want := range map[string]string{
		"TPE_RESYNC_INTERVAL":     "deployResyncJob ? '0' : resyncInterval",
		"TPE_RENEW_SUBSCRIPTIONS": "deployRenewalJob ? 'false' : 'true'",
	} {
		if expr[name] != want {
			t.Errorf("main.bicep gives the worker %s = %s; want %s", name, expr[name], want)
		}
	}
}
