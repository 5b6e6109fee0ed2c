package producer

import (
	"fmt"
	"strconv"
)

// Field names a setting of Config by its Go field path.
type Field string

// The settings Config.Validate checks.
const (
	FieldBrokers            Field = "Brokers"
	FieldClientID           Field = "ClientID"
	FieldVersion            Field = "Version"
	FieldRequiredAcks       Field = "RequiredAcks"
	FieldCompression        Field = "Compression"
	FieldCompressionLevel   Field = "CompressionLevel"
	FieldMaxMessageBytes    Field = "MaxMessageBytes"
	FieldTimeout            Field = "Timeout"
	FieldMaxAttempts        Field = "MaxAttempts"
	FieldIdempotent         Field = "Idempotent"
	FieldMaxInFlight        Field = "MaxInFlight"
	FieldRetryBackoff       Field = "RetryBackoff"
	FieldRefreshInterval    Field = "RefreshInterval"
	FieldSASLMechanism      Field = "SASL.Mechanism"
	FieldSASLUsername       Field = "SASL.Username"
	FieldSASLPassword       Field = "SASL.Password"
	FieldKerberosUsername   Field = "SASL.Kerberos.Username"
	FieldKerberosRealm      Field = "SASL.Kerberos.Realm"
	FieldKerberosPassword   Field = "SASL.Kerberos.Password"
	FieldKerberosKeytabFile Field = "SASL.Kerberos.KeytabFile"
)

// ConfigError is one problem Config.Validate found. It names the setting
// at fault, and any other setting the problem involves, as a Field, so
// that a host can show them under its own names (Describe); Error shows
// the Go names: "Timeout: must be > 0, got 0s".
type ConfigError struct {
	// Field is the setting at fault.
	Field Field
	// Index is the element of a list setting at fault (Brokers), or -1.
	Index int

	format string
	args   []any // a Field among them names another setting
}

func configError(f Field, index int, format string, args ...any) *ConfigError {
	return &ConfigError{Field: f, Index: index, format: format, args: args}
}

// Error describes the problem with each setting named by its Field.
func (e *ConfigError) Error() string {
	return e.Describe(func(f Field) string { return string(f) })
}

// Describe describes the problem with each setting named by name(field):
// the setting at fault (then its index in brackets, for an element of a
// list), a colon, and the problem.
func (e *ConfigError) Describe(name func(Field) string) string {
	args := make([]any, len(e.args))
	for i, a := range e.args {
		if f, ok := a.(Field); ok {
			a = name(f)
		}
		args[i] = a
	}
	key := name(e.Field)
	if e.Index >= 0 {
		key += "[" + strconv.Itoa(e.Index) + "]"
	}
	return key + ": " + fmt.Sprintf(e.format, args...)
}
