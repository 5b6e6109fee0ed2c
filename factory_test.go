package kafkabatcherexporter

import (
	"context"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/kafkabatcher/kafkabatcherexporter/internal/metadata"
)

func TestFactoryType(t *testing.T) {
	f := NewFactory()
	assert.Equal(t, "kafkabatcher", f.Type().String())
	assert.Equal(t, metadata.Type, f.Type())
	assert.Equal(t, metadata.LogsStability, f.LogsStability())
}

func TestDefaultConfigValidates(t *testing.T) {
	cfg := NewFactory().CreateDefaultConfig()
	require.NoError(t, componenttest.CheckConfigStruct(cfg))
	require.NoError(t, cfg.(*Config).Validate())
}

func TestCreateLogs(t *testing.T) {
	f := NewFactory()
	exp, err := f.CreateLogs(context.Background(), exportertest.NewNopSettings(metadata.Type), f.CreateDefaultConfig())
	require.NoError(t, err)
	require.NotNil(t, exp)
	assert.False(t, exp.Capabilities().MutatesData)

	require.NoError(t, exp.Start(context.Background(), componenttest.NewNopHost()))
	require.NoError(t, exp.Shutdown(context.Background()))
}

func TestConsumeLogsWithoutAnyMetadataFailsRetryably(t *testing.T) {
	f := NewFactory()
	cfg := f.CreateDefaultConfig().(*Config)
	cfg.Brokers = []string{"127.0.0.1:1"} // nothing listens there
	cfg.TempStorage.Directory = t.TempDir()
	exp, err := f.CreateLogs(context.Background(), exportertest.NewNopSettings(metadata.Type), cfg)
	require.NoError(t, err)
	// Start does not wait for Kafka.
	require.NoError(t, exp.Start(context.Background(), componenttest.NewNopHost()))
	ld := plog.NewLogs()
	ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Body().SetStr("hello")
	// With no partition count from Kafka or an earlier run the record
	// cannot be placed: the caller gets a retryable error, never success.
	err = exp.ConsumeLogs(context.Background(), ld)
	require.ErrorContains(t, err, `partition count of topic "otlp_logs" unknown`)
	require.False(t, consumererror.IsPermanent(err))
	require.NoError(t, exp.Shutdown(context.Background()))
}

func TestCreateLogsRejectsForeignConfig(t *testing.T) {
	_, err := createLogs(context.Background(), exportertest.NewNopSettings(metadata.Type), struct{}{})
	require.EqualError(t, err, "kafkabatcher: unexpected config type struct {}")
}
