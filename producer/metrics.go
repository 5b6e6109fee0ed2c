package producer

import "github.com/rcrowley/go-metrics"

// discardRegistry is a go-metrics registry whose metrics do nothing. The
// exporter reports its own telemetry per batch; sarama's metrics would cost
// CPU on every request (exponentially decaying histogram samples) and start
// a process-wide meter goroutine.
type discardRegistry struct{}

var _ metrics.Registry = discardRegistry{}

func (discardRegistry) Each(func(string, any))                 {}
func (discardRegistry) Get(string) any                         { return nil }
func (discardRegistry) GetAll() map[string]map[string]any      { return nil }
func (discardRegistry) GetOrRegister(_ string, metric any) any { return discardMetric(metric) }
func (discardRegistry) Register(string, any) error             { return nil }
func (discardRegistry) RunHealthchecks()                       {}
func (discardRegistry) Unregister(string)                      {}
func (discardRegistry) UnregisterAll()                         {}

// discardMetric returns the no-op metric of the kind metric (a metric or
// its constructor) would register, without constructing it.
func discardMetric(metric any) any {
	switch metric.(type) {
	case func() metrics.Meter, metrics.Meter:
		return metrics.NilMeter{}
	case func() metrics.Histogram, metrics.Histogram:
		return metrics.NilHistogram{}
	case func() metrics.Counter, metrics.Counter:
		return metrics.NilCounter{}
	case func() metrics.Gauge, metrics.Gauge:
		return metrics.NilGauge{}
	case func() metrics.GaugeFloat64, metrics.GaugeFloat64:
		return metrics.NilGaugeFloat64{}
	case func() metrics.Timer, metrics.Timer:
		return metrics.NilTimer{}
	}
	return metric
}
