package msggroup

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/kafkabatcher/kafkabatcherexporter/internal/fieldpath"
)

// attrs reads attributes.NAME from a map of the item at hand.
func attrs(m map[string]string) fieldpath.ItemField {
	return func(p *fieldpath.Path, dst []byte) ([]byte, bool) {
		v, ok := m[p.Name()]
		return append(dst, v...), ok && v != ""
	}
}

func TestGrouperPerScopeAndItemTopic(t *testing.T) {
	kinds := []fieldpath.Kind{fieldpath.Attribute, fieldpath.Resource}
	f, err := fieldpath.NewFields(fieldpath.Options{
		Topic: "logs", TopicFrom: "attributes.topic", KeyFrom: []string{"attributes.k"},
	}, kinds, kinds)
	require.NoError(t, err)
	sh := &fieldpath.Shared{Resource: pcommon.NewResource(), Scope: pcommon.NewInstrumentationScope()}

	for _, perScope := range []bool{false, true} {
		g := Grouper{PerScope: perScope}
		g.Reset()
		add := func(scope, index int, item map[string]string) {
			g.Add(&f, sh, Item{Scope: scope, Index: index}, attrs(item), false)
		}
		add(0, 0, map[string]string{"k": "a"})
		add(1, 0, map[string]string{"k": "a"})
		add(0, 1, map[string]string{"k": "a", "topic": "other"})
		add(0, 2, map[string]string{"k": "a", "topic": "logs"}) // the default topic, named
		add(1, 1, map[string]string{"k": "a", "topic": "other"})

		var got []string
		for _, grp := range g.Groups() {
			got = append(got, grp.Topic)
			for _, it := range grp.Items {
				got = append(got, string(rune('0'+it.Scope))+string(rune('0'+it.Index)))
			}
		}
		if perScope {
			assert.Equal(t, []string{"logs", "00", "02", "logs", "10", "other", "01", "other", "11"}, got)
		} else {
			assert.Equal(t, []string{"logs", "00", "10", "02", "other", "01", "11"}, got)
		}
	}
}
