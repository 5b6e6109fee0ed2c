package kafkabatcherexporter

import (
	"go.opentelemetry.io/collector/config/configopaque"

	"github.com/kafkabatcher/kafkabatcherexporter/producer"
)

// AuthConfig holds broker authentication.
type AuthConfig struct {
	SASL SASLConfig `mapstructure:"sasl"`
}

// SASLConfig is SASL authentication; an empty Mechanism means none.
type SASLConfig struct {
	// Mechanism is one of producer.SASLMechanisms, or "" for none.
	Mechanism string              `mapstructure:"mechanism"`
	Username  string              `mapstructure:"username"`
	Password  configopaque.String `mapstructure:"password"`
}

// producerSASL is the producer's SASL part of the configuration.
func (a *AuthConfig) producerSASL() producer.SASLConfig {
	return producer.SASLConfig{
		Mechanism: a.SASL.Mechanism,
		Username:  a.SASL.Username,
		Password:  string(a.SASL.Password),
	}
}

// authKeys are the keys of the producer's authentication settings.
var authKeys = map[producer.Field]string{
	producer.FieldSASLMechanism: "auth.sasl.mechanism",
	producer.FieldSASLUsername:  "auth.sasl.username",
	producer.FieldSASLPassword:  "auth.sasl.password",
}
