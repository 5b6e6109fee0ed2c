package logmsg

import (
	"context"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/ottl"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/ottl/contexts/ottllog"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/ottl/ottlfuncs"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/kafkabatcher/kafkabatcherexporter/internal/ottlcond"
)

// nopTelemetry is telemetry that discards everything, for validation.
func nopTelemetry() component.TelemetrySettings { return ottlcond.NopTelemetry() }

// newParser makes an OTTL log-context parser with the standard converters.
func newParser(set component.TelemetrySettings) (ottl.Parser[*ottllog.TransformContext], error) {
	return ottllog.NewParser(ottlfuncs.StandardConverters[*ottllog.TransformContext](), set)
}

// ValidateConditions parses OTTL log conditions (ottllog context, standard
// converters) and returns the parser's errors, each prefixed with the
// condition's index as flush_when[i].
func ValidateConditions(conditions []string) error {
	_, err := ottlcond.Parse(newParser, conditions, nopTelemetry())
	return err
}

// ValidateCondition parses one OTTL log condition and returns the parser's
// error as it is, for callers that name the condition themselves.
func ValidateCondition(condition string) error { return ottlcond.Validate(newParser, condition) }

// matcher evaluates flush_when conditions; a record matches when any is
// true. A nil matcher matches nothing.
type matcher struct {
	m *ottlcond.Matcher[*ottllog.TransformContext]
}

func newMatcher(conditions []string, set component.TelemetrySettings) (*matcher, error) {
	m, err := ottlcond.NewMatcher(newParser, conditions, set)
	if err != nil || m == nil {
		return nil, err
	}
	return &matcher{m: m}, nil
}

// match reports whether lr matches any condition.
func (m *matcher) match(ctx context.Context, rl plog.ResourceLogs, sl plog.ScopeLogs, lr plog.LogRecord) bool {
	if m == nil {
		return false
	}
	tCtx := ottllog.NewTransformContext(rl, sl, lr)
	defer tCtx.Close()
	return m.m.Match(ctx, tCtx)
}
