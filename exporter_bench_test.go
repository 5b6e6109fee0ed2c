package kafkabatcherexporter

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/kafkabatcher/kafkabatcherexporter/internal/testbroker"
	"github.com/kafkabatcher/kafkabatcherexporter/logmsg"
)

// TestBenchBrokerProcess is not a test: the benchmarks run it in a child
// process so that the broker's CPU and allocations are not the exporter's.
func TestBenchBrokerProcess(t *testing.T) { testbroker.ServeIfChild(t) }

// benchLogs is one ConsumeLogs call: n records with a 200-byte body and 5
// attributes.
func benchLogs(n int) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("host.name", "bench-host")
	lrs := rl.ScopeLogs().AppendEmpty().LogRecords()
	body := strings.Repeat("b", 200)
	now := time.Now()
	for i := 0; i < n; i++ {
		lr := lrs.AppendEmpty()
		lr.SetTimestamp(pcommon.NewTimestampFromTime(now))
		lr.Body().SetStr(body)
		lr.Attributes().PutStr("service", "checkout")
		lr.Attributes().PutInt("seq", int64(i))
		lr.Attributes().PutStr("level", "info")
		lr.Attributes().PutBool("sampled", true)
		lr.Attributes().PutDouble("latency", 1.5)
	}
	return ld
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkConsumeLogs measures ConsumeLogs to broker acknowledgement: one
// op is one call of 100 records from one of several parallel callers; the
// clock stops when shutdown has every record acknowledged (async) or as
// the last call returns (sync, each call waits for its acknowledgement).
// The broker runs in a child process.
func BenchmarkConsumeLogs(b *testing.B) {
	const perCall = 100
	addr := testbroker.Start(b, "TestBenchBrokerProcess", "otlp_logs:6")
	for _, enc := range []string{logmsg.EncodingRaw, logmsg.EncodingOTLPProto} {
		for _, delivery := range []Delivery{DeliveryAsync, DeliverySync} {
			b.Run(fmt.Sprintf("%s/%s", enc, delivery), func(b *testing.B) {
				cfg := createDefaultConfig().(*Config)
				cfg.Brokers = []string{addr}
				cfg.Encoding = enc
				cfg.Delivery = delivery
				cfg.TempStorage.Directory = b.TempDir()
				cfg.Batch.MaxWait = 5 * time.Millisecond
				exp := startExporter(b, cfg)
				ld := benchLogs(perCall)
				if err := exp.consumeLogs(context.Background(), ld); err != nil {
					b.Fatal(err) // warms metadata and buffers
				}
				b.SetParallelism(2) // 4 callers on 2 cores
				var ms0, ms1 runtime.MemStats
				runtime.ReadMemStats(&ms0)
				cpu0 := cpuTime()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := exp.consumeLogs(context.Background(), ld); err != nil {
							b.Error(err)
							return
						}
					}
				})
				if err := exp.shutdown(context.Background()); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				cpu := cpuTime() - cpu0
				runtime.ReadMemStats(&ms1)
				records := float64(b.N * perCall)
				b.ReportMetric(records/b.Elapsed().Seconds(), "records/s")
				b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/records, "allocs/record")
				b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/records, "B/record")
				b.ReportMetric(float64(cpu.Nanoseconds())/1000/records, "cpu-µs/record")
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}
