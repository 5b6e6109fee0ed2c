package kafkabatcherexporter

import (
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.uber.org/zap"
)

// healthState is what the component status says.
type healthState uint8

const (
	healthOK        healthState = iota
	healthKafkaDown             // recoverable error: Kafka does not take batches
	healthDiskFull              // recoverable error: the temp storage has no room
)

// health is the exporter's component status, made of two conditions:
// Kafka failing or taking batches, and the temp storage full or with room.
// It reports each change of status to the host, and logs it. Its methods
// may be called from any goroutine.
type health struct {
	logger *zap.Logger

	mu       sync.Mutex
	host     component.Host // nil until start: nothing is reported
	kafkaErr error          // Kafka's last failure; nil once it takes a batch
	diskErr  error          // the temp storage's refusal while the disk is full
	reported healthState    // last status reported
	stopping bool           // shutdown began: sends it cancels say nothing of Kafka's health
}

// start makes h report its changes to host.
func (h *health) start(host component.Host) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.host = host
}

// stop makes h report nothing more: shutdown cancels sends, and their
// failures say nothing of Kafka's health.
func (h *health) stop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stopping = true
}

// setKafka records Kafka failing (err) or taking a batch (nil).
func (h *health) setKafka(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.kafkaErr = err
	h.reportLocked()
}

// setDisk records the temp storage full (err) or with room (nil).
func (h *health) setDisk(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.diskErr = err
	h.reportLocked()
}

// diskFull returns the temp storage's refusal while the disk is full.
func (h *health) diskFull() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.diskErr
}

// reportLocked reports the status when it changes: a full disk first (it
// refuses records), then Kafka failing (a recoverable error each), else
// OK. h.mu held.
func (h *health) reportLocked() {
	state, err := healthOK, error(nil)
	switch {
	case h.diskErr != nil:
		state, err = healthDiskFull, h.diskErr
	case h.kafkaErr != nil:
		state, err = healthKafkaDown, h.kafkaErr
	}
	if state == h.reported || h.host == nil || h.stopping {
		return
	}
	h.reported = state
	// The collector does not log status changes; an operator without a
	// health check extension sees them here.
	if err == nil {
		h.logger.Info("exporter status: OK (Kafka takes batches, the temp storage has room)")
		componentstatus.ReportStatus(h.host, componentstatus.NewEvent(componentstatus.StatusOK))
		return
	}
	h.logger.Warn("exporter status: recoverable error", zap.Error(err))
	componentstatus.ReportStatus(h.host, componentstatus.NewRecoverableErrorEvent(err))
}
