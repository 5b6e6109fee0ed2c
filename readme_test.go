package kafkabatcherexporter

import (
	"os"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
	"go.yaml.in/yaml/v3"
)

// readmeExample is an example of the README: an HTML comment naming it,
// then a YAML block.
var readmeExample = regexp.MustCompile("(?s)<!-- example: ([a-z0-9-]+) -->\n```yaml\n(.*?)```")

// TestREADMEExamples: every named example of the README loads and
// validates as the exporter's configuration.
func TestREADMEExamples(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	examples := readmeExample.FindAllSubmatch(readme, -1)
	require.GreaterOrEqual(t, len(examples), 6, "examples in README.md")
	for _, m := range examples {
		t.Run(string(m[1]), func(t *testing.T) {
			var doc struct {
				Exporters map[string]map[string]any `yaml:"exporters"`
			}
			require.NoError(t, yaml.Unmarshal(m[2], &doc))
			raw, ok := doc.Exporters["kafkabatcher"]
			require.True(t, ok, "no exporters.kafkabatcher")
			cfg := createDefaultConfig().(*Config)
			require.NoError(t, confmap.NewFromStringMap(raw).Unmarshal(cfg))
			require.NoError(t, confmap.Validate(cfg))
		})
	}
}
