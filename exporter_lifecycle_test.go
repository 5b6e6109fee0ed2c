package kafkabatcherexporter

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"

	"github.com/kafkabatcher/kafkabatcherexporter/logmsg"
	"github.com/kafkabatcher/kafkabatcherexporter/producer"
	"github.com/kafkabatcher/kafkabatcherexporter/tempstorage"
)

func TestShutdownSendsPendingRecords(t *testing.T) {
	c, obs, cfg := observedRawSetup(t, 3)
	cfg.KeyFrom = []string{"attributes.k"}
	cfg.Batch.MaxWait = time.Hour
	exp, tt := runObserved(t, cfg)
	waitPartitions(t, exp, "otlp_logs", 3)
	require.NoError(t, exp.consumeLogs(context.Background(), seqLogs(0, 123, 7)))
	require.Empty(t, seen(obs), "held until shutdown")

	require.NoError(t, exp.stop())
	// Shutdown returned after Kafka acknowledged them; nothing on disk.
	require.EqualValues(t, 123, totalRecords(c, "otlp_logs"))
	recs := readSeq(t, c, "otlp_logs", 123)
	requireExactlyInOrder(t, recs, 123)
	require.Empty(t, segments(t, cfg.TempStorage.Directory))
	parts := map[int32]bool{}
	for _, r := range recs {
		parts[r.partition] = true
	}
	require.EqualValues(t, len(parts), flushes(t, tt, "shutdown"), "one shutdown flush per partition holding records")
	require.Zero(t, counter(t, tt, "otelcol_kafkabatcher_records_spilled"))
}

func TestStartCreatesTheStorageDirectoryPrivate(t *testing.T) {
	c := newCluster(t, 1, "otlp_logs")
	cfg := testConfig(t, c.ListenAddrs())
	dir := filepath.Join(t.TempDir(), "a", "b")
	cfg.TempStorage.Directory = dir
	exp := run(t, cfg, nopSettings())
	fi, err := os.Stat(dir)
	require.NoError(t, err)
	require.True(t, fi.IsDir())
	require.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
	require.NoError(t, exp.stop())
}

func TestSecondExporterOnTheSameDirectoryFailsToStart(t *testing.T) {
	c := newCluster(t, 1, "otlp_logs")
	cfg := testConfig(t, c.ListenAddrs())
	exp := run(t, cfg, nopSettings())

	second, err := newExporter(cfg, nopSettings())
	require.NoError(t, err)
	err = second.start(context.Background(), componenttest.NewNopHost())
	require.ErrorIs(t, err, tempstorage.ErrLocked)
	require.Contains(t, err.Error(), cfg.TempStorage.Directory)
	require.NoError(t, exp.stop())
}

func TestUnreadablePartitionCacheIsIgnored(t *testing.T) {
	c := newCluster(t, 2, "otlp_logs")
	cfg := testConfig(t, c.ListenAddrs())
	cfg.Encoding = logmsg.EncodingRaw
	path := producer.PartitionCachePath(cfg.TempStorage.Directory)
	require.NoError(t, os.WriteFile(path, []byte("{not json"), 0o600))
	exp := run(t, cfg, nopSettings())
	require.NoError(t, exp.consumeLogs(context.Background(), seqLogs(0, 10, 0)))
	waitRecords(t, c, "otlp_logs", 10, 10*time.Second)
	require.NoError(t, exp.stop())
	// Rewritten from Kafka's metadata.
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.JSONEq(t, `{"otlp_logs": 2}`, string(data))
}

func TestSASLCredentialsReachTheBroker(t *testing.T) {
	for _, mech := range []string{producer.SASLPlain, producer.SASLSCRAMSHA256, producer.SASLSCRAMSHA512} {
		t.Run(mech, func(t *testing.T) {
			c := newCluster(t, 2, "otlp_logs", kfake.EnableSASL(), kfake.Superuser(mech, "alice", "s3cret"))
			cfg := testConfig(t, c.ListenAddrs())
			cfg.Auth.SASL = SASLConfig{Mechanism: mech, Username: "alice", Password: configopaque.String("s3cret")}
			exp := run(t, cfg, nopSettings())
			require.NoError(t, exp.consumeLogs(context.Background(), seqLogs(0, 40, 4)))
			waitRecords(t, c, "otlp_logs", 40, 10*time.Second)
			require.NoError(t, exp.stop())
			require.EqualValues(t, 40, totalRecords(c, "otlp_logs"))
		})
	}
}
