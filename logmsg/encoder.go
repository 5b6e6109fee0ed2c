package logmsg

import (
	"encoding/hex"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/kafkabatcher/kafkabatcherexporter/internal/jsonvalue"
	"go.opentelemetry.io/collector/pdata/plog"
)

// encoder writes message values. An encoder is used by one goroutine at a
// time and may keep state between calls.
type encoder interface {
	// begin is called first, with the whole request.
	begin(ld plog.Logs)
	// startScope is called before the records of ScopeLogs j of
	// ResourceLogs i.
	startScope(i, j int, rl plog.ResourceLogs, sl plog.ScopeLogs)
	// appendRecord appends the value of lr, a record of the current scope.
	appendRecord(dst []byte, lr plog.LogRecord) ([]byte, error)
	// end is called last; the encoder lets go of the request.
	end()
}

// otlpEncoder writes each record as a LogsData of its own: a template
// holding a copy of the current resource and scope and one record slot.
type otlpEncoder struct {
	tmpl    plog.Logs
	rl      plog.ResourceLogs
	sl      plog.ScopeLogs
	lr      plog.LogRecord
	marshal func(plog.Logs) ([]byte, error)
}

func newOTLPEncoder(marshal func(plog.Logs) ([]byte, error)) *otlpEncoder {
	e := &otlpEncoder{tmpl: plog.NewLogs(), marshal: marshal}
	e.rl = e.tmpl.ResourceLogs().AppendEmpty()
	e.sl = e.rl.ScopeLogs().AppendEmpty()
	e.lr = e.sl.LogRecords().AppendEmpty()
	return e
}

// newOTLPJSONEncoder copies each record into the template and marshals it.
// Splicing like protoEncoder was tried: it saved allocations but no CPU time,
// as scanning the JSON costs what the per-record marshal costs.
func newOTLPJSONEncoder() encoder {
	m := &plog.JSONMarshaler{}
	return newOTLPEncoder(m.MarshalLogs)
}

func (e *otlpEncoder) begin(plog.Logs) {}

// end clears the template so it does not keep the request's data.
func (e *otlpEncoder) end() {
	e.rl.Resource().Attributes().Clear()
	e.sl.Scope().Attributes().Clear()
	plog.NewLogRecord().CopyTo(e.lr)
}

func (e *otlpEncoder) startScope(_, _ int, rl plog.ResourceLogs, sl plog.ScopeLogs) {
	rl.Resource().CopyTo(e.rl.Resource())
	e.rl.SetSchemaUrl(rl.SchemaUrl())
	sl.Scope().CopyTo(e.sl.Scope())
	e.sl.SetSchemaUrl(sl.SchemaUrl())
}

func (e *otlpEncoder) appendRecord(dst []byte, lr plog.LogRecord) ([]byte, error) {
	lr.CopyTo(e.lr)
	b, err := e.marshal(e.tmpl)
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}

// jsonEncoder writes the flat json encoding. The resource and scope part
// is the same for all records of a scope, so it is written once per scope.
type jsonEncoder struct {
	scopePart []byte // `"resource":{...},"scope":{...}` or empty
}

func newJSONEncoder() encoder { return &jsonEncoder{} }

func (e *jsonEncoder) begin(plog.Logs) {}
func (e *jsonEncoder) end()            {}

func (e *jsonEncoder) startScope(_, _ int, rl plog.ResourceLogs, sl plog.ScopeLogs) {
	b := e.scopePart[:0]
	if attrs := rl.Resource().Attributes(); attrs.Len() > 0 {
		b = append(b, `"resource":`...)
		b = jsonvalue.AppendMap(b, attrs)
	}
	scope := sl.Scope()
	if scope.Name() != "" || scope.Version() != "" || scope.Attributes().Len() > 0 {
		if len(b) > 0 {
			b = append(b, ',')
		}
		b = append(b, `"scope":{`...)
		sep := false
		if scope.Name() != "" {
			b = append(b, `"name":`...)
			b = jsonvalue.AppendString(b, scope.Name())
			sep = true
		}
		if scope.Version() != "" {
			if sep {
				b = append(b, ',')
			}
			b = append(b, `"version":`...)
			b = jsonvalue.AppendString(b, scope.Version())
			sep = true
		}
		if scope.Attributes().Len() > 0 {
			if sep {
				b = append(b, ',')
			}
			b = append(b, `"attributes":`...)
			b = jsonvalue.AppendMap(b, scope.Attributes())
		}
		b = append(b, '}')
	}
	e.scopePart = b
}

func (e *jsonEncoder) appendRecord(dst []byte, lr plog.LogRecord) ([]byte, error) {
	start := len(dst)
	dst = append(dst, '{')
	// field starts a member: a comma unless it is the first.
	field := func(name string) {
		if len(dst) > start+1 {
			dst = append(dst, ',')
		}
		dst = append(dst, '"')
		dst = append(dst, name...)
		dst = append(dst, '"', ':')
	}
	if ts := lr.Timestamp(); ts != 0 {
		field("time")
		dst = appendJSONTime(dst, ts)
	}
	if ts := lr.ObservedTimestamp(); ts != 0 {
		field("observed_time")
		dst = appendJSONTime(dst, ts)
	}
	if sn := lr.SeverityNumber(); sn != plog.SeverityNumberUnspecified {
		field("severity_number")
		dst = jsonvalue.AppendInt(dst, int64(sn))
	}
	if st := lr.SeverityText(); st != "" {
		field("severity_text")
		dst = jsonvalue.AppendString(dst, st)
	}
	if en := lr.EventName(); en != "" {
		field("event_name")
		dst = jsonvalue.AppendString(dst, en)
	}
	if body := lr.Body(); body.Type() != pcommon.ValueTypeEmpty {
		field("body")
		dst = jsonvalue.AppendValue(dst, body)
	}
	if attrs := lr.Attributes(); attrs.Len() > 0 {
		field("attributes")
		dst = jsonvalue.AppendMap(dst, attrs)
	}
	if len(e.scopePart) > 0 {
		if len(dst) > start+1 {
			dst = append(dst, ',')
		}
		dst = append(dst, e.scopePart...)
	}
	if id := lr.TraceID(); !id.IsEmpty() {
		field("trace_id")
		dst = append(dst, '"')
		dst = hex.AppendEncode(dst, id[:])
		dst = append(dst, '"')
	}
	if id := lr.SpanID(); !id.IsEmpty() {
		field("span_id")
		dst = append(dst, '"')
		dst = hex.AppendEncode(dst, id[:])
		dst = append(dst, '"')
	}
	if f := lr.Flags(); f != 0 {
		field("flags")
		dst = jsonvalue.AppendInt(dst, int64(f))
	}
	return append(dst, '}'), nil
}

func appendJSONTime(dst []byte, ts pcommon.Timestamp) []byte {
	dst = append(dst, '"')
	dst = ts.AsTime().UTC().AppendFormat(dst, time.RFC3339Nano)
	return append(dst, '"')
}

// rawEncoder writes the body alone.
type rawEncoder struct{}

func newRawEncoder() encoder { return rawEncoder{} }

func (rawEncoder) begin(plog.Logs) {}
func (rawEncoder) end()            {}

func (rawEncoder) startScope(_, _ int, _ plog.ResourceLogs, _ plog.ScopeLogs) {}

func (rawEncoder) appendRecord(dst []byte, lr plog.LogRecord) ([]byte, error) {
	return jsonvalue.AppendText(dst, lr.Body()), nil
}
