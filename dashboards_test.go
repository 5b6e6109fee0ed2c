package kafkabatcherexporter

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// exportedNames returns the metric names the collector's Prometheus
// endpoint serves for metadata.yaml's metrics. The collector (pull reader,
// default settings) writes the instrument name as it is, already prefixed
// otelcol_ by mdatagen: no unit suffix, no _total for counters (checked
// against a scrape of the ocb-built collector); a histogram is its
// _bucket, _sum and _count series.
func exportedNames(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile("metadata.yaml")
	require.NoError(t, err)
	var md struct {
		Telemetry struct {
			Metrics map[string]struct {
				Histogram any `yaml:"histogram"`
			} `yaml:"metrics"`
		} `yaml:"telemetry"`
	}
	require.NoError(t, yaml.Unmarshal(b, &md))
	names := map[string]bool{}
	for name, m := range md.Telemetry.Metrics {
		full := "otelcol_" + name
		if m.Histogram != nil {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				names[full+s] = true
			}
			continue
		}
		names[full] = true
	}
	require.NotEmpty(t, names)
	return names
}

// metricRef finds the otelcol_ names an expression uses.
var metricRef = regexp.MustCompile(`\botelcol_[A-Za-z0-9_:]+`)

// dashboardExprs returns the PromQL of every target and templating query
// of the Grafana dashboard, by panel title.
func dashboardExprs(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				RefID string `json:"refId"`
				Expr  string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	require.NoError(t, json.Unmarshal(b, &dash), path)
	exprs := map[string]string{}
	for _, p := range dash.Panels {
		if p.Type == "row" {
			continue
		}
		require.NotEmpty(t, p.Targets, "panel %q has no query", p.Title)
		for _, tg := range p.Targets {
			require.NotEmpty(t, tg.Expr, "panel %q target %s", p.Title, tg.RefID)
			exprs[p.Title+" "+tg.RefID] = tg.Expr
		}
	}
	for _, v := range dash.Templating.List {
		if v.Definition != "" {
			exprs["variable "+v.Name] = v.Definition
		}
	}
	return exprs
}

func ruleExprs(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	require.NoError(t, yaml.Unmarshal(b, &rules), path)
	exprs := map[string]string{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			exprs["alert "+r.Alert] = r.Expr
		}
	}
	return exprs
}

// TestDashboardsUseExportedMetrics: every metric the Grafana dashboard and
// the alert rules query is one the exporter exports, named as the
// collector's Prometheus endpoint writes it, and every query uses one.
func TestDashboardsUseExportedMetrics(t *testing.T) {
	names := exportedNames(t)
	dash := dashboardExprs(t, filepath.Join("docs", "dashboards", "kafkabatcher.json"))
	rules := ruleExprs(t, filepath.Join("docs", "dashboards", "alerts.yaml"))
	require.NotEmpty(t, dash)
	require.Len(t, rules, 8)
	used := map[string]bool{}
	for _, set := range []map[string]string{dash, rules} {
		for where, expr := range set {
			refs := metricRef.FindAllString(expr, -1)
			require.NotEmpty(t, refs, "%s: no otelcol_ metric in %q", where, expr)
			for _, r := range refs {
				require.True(t, names[r], "%s uses %s, which the exporter does not export (%q)", where, r, expr)
				used[r] = true
			}
		}
	}
	// What the issue asks the dashboard and the alerts to show.
	for _, want := range []string{
		"otelcol_kafkabatcher_records_sent", "otelcol_kafkabatcher_batch_records_bucket", "otelcol_kafkabatcher_batch_bytes_bucket",
		"otelcol_kafkabatcher_delivery_latency_bucket", "otelcol_kafkabatcher_records_spilled", "otelcol_kafkabatcher_records_replayed",
		"otelcol_kafkabatcher_temp_storage_bytes", "otelcol_kafkabatcher_temp_storage_oldest_batch_age",
		"otelcol_kafkabatcher_records_rejected", "otelcol_kafkabatcher_flushes", "otelcol_kafkabatcher_storage_corrupt_entries",
		"otelcol_kafkabatcher_dead_letter_bytes",
	} {
		require.True(t, used[want], "neither the dashboard nor the alerts use %s", want)
	}
}

// TestDashboardQueriesParse runs promtool check rules on the alert rules
// and on the dashboard's queries (as recording rules, Grafana's variables
// replaced), when promtool is installed (Debian: apt-get install prometheus).
func TestDashboardQueriesParse(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (apt-get install prometheus); the metric names are checked by TestDashboardsUseExportedMetrics")
	}
	check := func(path string) {
		out, err := exec.Command(promtool, "check", "rules", path).CombinedOutput()
		require.NoError(t, err, "promtool check rules %s:\n%s", path, out)
	}
	check(filepath.Join("docs", "dashboards", "alerts.yaml"))

	dash := dashboardExprs(t, filepath.Join("docs", "dashboards", "kafkabatcher.json"))
	keys := make([]string, 0, len(dash))
	for k := range dash {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	vars := strings.NewReplacer("$__rate_interval", "5m", "$job", ".*", "$instance", ".*")
	var b strings.Builder
	b.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for i, k := range keys {
		expr := vars.Replace(dash[k])
		if strings.HasPrefix(k, "variable ") {
			// label_values(metric, label) is Grafana's: check its selector.
			expr = strings.TrimSuffix(strings.TrimPrefix(expr, "label_values("), ")")
			expr = expr[:strings.LastIndex(expr, ",")]
		}
		q, err := json.Marshal(expr)
		require.NoError(t, err)
		fmt.Fprintf(&b, "      - record: dashboard:query%d\n        expr: %s\n", i, q)
	}
	path := filepath.Join(t.TempDir(), "dashboard-rules.yaml")
	require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o600))
	check(path)
}
