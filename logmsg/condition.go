package logmsg

import (
	"context"
	"errors"
	"fmt"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/ottl"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/ottl/contexts/ottllog"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/ottl/ottlfuncs"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/plog"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/zap"
)

// nopTelemetry is telemetry that discards everything, for validation.
func nopTelemetry() component.TelemetrySettings {
	return component.TelemetrySettings{
		Logger:         zap.NewNop(),
		TracerProvider: tracenoop.NewTracerProvider(),
		MeterProvider:  metricnoop.NewMeterProvider(),
	}
}

// ValidateConditions parses OTTL log conditions (ottllog context, standard
// converters) and returns the parser's errors, each prefixed with the
// condition's index as flush_when[i].
func ValidateConditions(conditions []string) error {
	_, err := parseConditions(conditions, nopTelemetry())
	return err
}

// ValidateCondition parses one OTTL log condition and returns the parser's
// error as it is, for callers that name the condition themselves.
func ValidateCondition(condition string) error {
	parser, err := ottllog.NewParser(ottlfuncs.StandardConverters[*ottllog.TransformContext](), nopTelemetry())
	if err != nil {
		return fmt.Errorf("create OTTL parser: %w", err)
	}
	_, err = parser.ParseCondition(condition)
	return err
}

// parseConditions parses each condition on its own so an error names its index.
func parseConditions(conditions []string, set component.TelemetrySettings) ([]*ottl.Condition[*ottllog.TransformContext], error) {
	if len(conditions) == 0 {
		return nil, nil
	}
	parser, err := ottllog.NewParser(ottlfuncs.StandardConverters[*ottllog.TransformContext](), set)
	if err != nil {
		return nil, fmt.Errorf("flush_when: create OTTL parser: %w", err)
	}
	parsed := make([]*ottl.Condition[*ottllog.TransformContext], 0, len(conditions))
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

// matcher evaluates flush_when conditions; a record matches when any is true.
type matcher struct {
	seq *ottl.ConditionSequence[*ottllog.TransformContext]
}

func newMatcher(conditions []string, set component.TelemetrySettings) (*matcher, error) {
	parsed, err := parseConditions(conditions, set)
	if err != nil || len(parsed) == 0 {
		return nil, err
	}
	// A condition that fails at run time (e.g. a type mismatch) is logged
	// and counts as false: one odd record must not fail the export.
	seq := ottllog.NewConditionSequence(parsed, set, ottllog.WithConditionSequenceErrorMode(ottl.IgnoreError))
	return &matcher{seq: &seq}, nil
}

// match reports whether lr matches any condition. A nil matcher matches nothing.
func (m *matcher) match(ctx context.Context, rl plog.ResourceLogs, sl plog.ScopeLogs, lr plog.LogRecord) bool {
	if m == nil {
		return false
	}
	tCtx := ottllog.NewTransformContext(rl, sl, lr)
	ok, _ := m.seq.Eval(ctx, tCtx)
	tCtx.Close()
	return ok
}
