// Package ottlcond parses flush_when conditions (OTTL, contrib pkg/ottl)
// for any signal's OTTL context and evaluates them.
package ottlcond

import (
	"context"
	"errors"
	"fmt"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/ottl"
	"go.opentelemetry.io/collector/component"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/zap"
)

// NopTelemetry is telemetry that discards everything, for validation.
func NopTelemetry() component.TelemetrySettings {
	return component.TelemetrySettings{
		Logger:         zap.NewNop(),
		TracerProvider: tracenoop.NewTracerProvider(),
		MeterProvider:  metricnoop.NewMeterProvider(),
	}
}

// NewParser makes a parser of one OTTL context with telemetry set.
type NewParser[K any] func(set component.TelemetrySettings) (ottl.Parser[K], error)

// Validate parses one condition and returns the parser's error as it is,
// for callers that name the condition themselves.
func Validate[K any](newParser NewParser[K], condition string) error {
	parser, err := newParser(NopTelemetry())
	if err != nil {
		return fmt.Errorf("create OTTL parser: %w", err)
	}
	_, err = parser.ParseCondition(condition)
	return err
}

// Parse parses each condition on its own so that an error names its index,
// as flush_when[i].
func Parse[K any](newParser NewParser[K], conditions []string, set component.TelemetrySettings) ([]*ottl.Condition[K], error) {
	if len(conditions) == 0 {
		return nil, nil
	}
	parser, err := newParser(set)
	if err != nil {
		return nil, fmt.Errorf("flush_when: create OTTL parser: %w", err)
	}
	parsed := make([]*ottl.Condition[K], 0, len(conditions))
	var errs []error
	for i, c := range conditions {
		cond, err := parser.ParseCondition(c)
		if err != nil {
			errs = append(errs, fmt.Errorf("flush_when[%d]: %w", i, err))
			continue
		}
		parsed = append(parsed, cond)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return parsed, nil
}

// Matcher evaluates conditions; a value matches when any is true. A nil
// Matcher matches nothing.
type Matcher[K any] struct {
	seq ottl.ConditionSequence[K]
}

// NewMatcher parses conditions; none gives a nil Matcher. A condition that
// fails at run time (e.g. a type mismatch) is logged and counts as false:
// one odd record must not fail the export.
func NewMatcher[K any](newParser NewParser[K], conditions []string, set component.TelemetrySettings) (*Matcher[K], error) {
	parsed, err := Parse(newParser, conditions, set)
	if err != nil || len(parsed) == 0 {
		return nil, err
	}
	seq := ottl.NewConditionSequence(parsed, set, ottl.WithConditionSequenceErrorMode[K](ottl.IgnoreError))
	return &Matcher[K]{seq: seq}, nil
}

// Match reports whether tCtx matches any condition.
func (m *Matcher[K]) Match(ctx context.Context, tCtx K) bool {
	if m == nil {
		return false
	}
	ok, _ := m.seq.Eval(ctx, tCtx)
	return ok
}
