package batcher

import (
	"testing"

	"go.uber.org/goleak"
)

// sarama (used only by the encoding test) starts one go-metrics arbiter
// goroutine per process that never ends; everything else must.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/rcrowley/go-metrics.(*meterArbiter).tick"))
}
