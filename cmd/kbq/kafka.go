package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"go.opentelemetry.io/collector/confmap"
	"go.yaml.in/yaml/v3"

	"github.com/kafkabatcher/kafkabatcherexporter"
	"github.com/kafkabatcher/kafkabatcherexporter/producer"
)

// kafkaOptions are the connection flags of resend; --config fills what
// the flags leave unset from the exporter's section of a collector config.
type kafkaOptions struct {
	brokers, clientID                string
	saslMechanism, saslUser, saslPwd string
	tls, tlsInsecure                 bool
	tlsCA, tlsCert, tlsKey, tlsName  string
	idempotent                       bool
	config, exporter                 string
}

func (k *kafkaOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&k.brokers, "brokers", "", "Kafka bootstrap brokers, `host:port[,host:port...]`")
	fs.StringVar(&k.clientID, "client-id", "kbq", "client id sent to Kafka")
	fs.StringVar(&k.saslMechanism, "sasl-mechanism", "", "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
	fs.StringVar(&k.saslUser, "sasl-username", "", "SASL username")
	fs.StringVar(&k.saslPwd, "sasl-password", "", "SASL password (or the environment variable KBQ_SASL_PASSWORD)")
	fs.BoolVar(&k.tls, "tls", false, "connect with TLS (implied by the other --tls-* flags)")
	fs.StringVar(&k.tlsCA, "tls-ca", "", "PEM `file` of the CAs that sign the brokers' certificates (default: system roots)")
	fs.StringVar(&k.tlsCert, "tls-cert", "", "PEM `file` of the client certificate")
	fs.StringVar(&k.tlsKey, "tls-key", "", "PEM `file` of the client key")
	fs.StringVar(&k.tlsName, "tls-server-name", "", "server name the brokers' certificates must have")
	fs.BoolVar(&k.tlsInsecure, "tls-insecure-skip-verify", false, "do not verify the brokers' certificates")
	fs.BoolVar(&k.idempotent, "idempotent", true, "idempotent producing (with acks all; brokers too old for it are used without); false when the principal lacks the IdempotentWrite ACL on an old Kafka")
	fs.StringVar(&k.config, "config", "", "collector config `file`: brokers, client_id, auth, tls, producer.required_acks and partitioning.strategy come from its kafkabatcher exporter; flags given override them")
	fs.StringVar(&k.exporter, "exporter", "", "the exporter `id` in --config (default: the only kafkabatcher exporter)")
}

// kafkaConfig is what resolve makes of the flags and the config file.
type kafkaConfig struct {
	opts     []kgo.Opt
	strategy string // partitioning.strategy of the config, "" without one
}

// resolve builds the client options: the config file first, then the
// flags given.
func (k *kafkaOptions) resolve(ctx context.Context, fs *flag.FlagSet) (kafkaConfig, error) {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var out kafkaConfig
	var brokers []string
	var tlsCfg *tls.Config
	acks := producer.AcksAll
	idempotent := true
	var mech, user, pwd string
	clientID := k.clientID
	if k.config != "" {
		cfg, err := loadExporterConfig(k.config, k.exporter)
		if err != nil {
			return out, err
		}
		brokers = cfg.Brokers
		if !set["client-id"] && cfg.ClientID != "" {
			clientID = cfg.ClientID
		}
		mech, user, pwd = cfg.Auth.SASL.Mechanism, cfg.Auth.SASL.Username, string(cfg.Auth.SASL.Password)
		if cfg.TLS.HasValue() {
			if tlsCfg, err = cfg.TLS.Get().LoadTLSConfig(ctx); err != nil {
				return out, fmt.Errorf("%s: tls: %w", k.config, err)
			}
		}
		acks = cfg.Producer.RequiredAcks
		out.strategy = cfg.Partitioning.Strategy
	}
	if set["brokers"] {
		brokers = splitList(k.brokers)
	}
	if len(brokers) == 0 {
		return out, errors.New("no brokers: give --brokers or --config")
	}
	if set["sasl-mechanism"] {
		mech = k.saslMechanism
	}
	if set["sasl-username"] {
		user = k.saslUser
	}
	if set["sasl-password"] {
		pwd = k.saslPwd
	} else if p, ok := os.LookupEnv("KBQ_SASL_PASSWORD"); ok {
		pwd = p
	}
	if set["idempotent"] {
		idempotent = k.idempotent
	}
	if k.tls || k.tlsCA != "" || k.tlsCert != "" || k.tlsKey != "" || k.tlsName != "" || k.tlsInsecure {
		var err error
		if tlsCfg, err = k.tlsConfig(); err != nil {
			return out, err
		}
	}

	out.opts = []kgo.Opt{kgo.SeedBrokers(brokers...), kgo.ClientID(clientID), kgo.ProducerBatchCompression(kgo.NoCompression())}
	if tlsCfg != nil {
		out.opts = append(out.opts, kgo.DialTLSConfig(tlsCfg))
	}
	switch strings.ToUpper(mech) {
	case "":
	case "PLAIN":
		out.opts = append(out.opts, kgo.SASL(plain.Auth{User: user, Pass: pwd}.AsMechanism()))
	case "SCRAM-SHA-256":
		out.opts = append(out.opts, kgo.SASL(scram.Auth{User: user, Pass: pwd}.AsSha256Mechanism()))
	case "SCRAM-SHA-512":
		out.opts = append(out.opts, kgo.SASL(scram.Auth{User: user, Pass: pwd}.AsSha512Mechanism()))
	default:
		return out, fmt.Errorf("sasl mechanism %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", mech)
	}
	switch {
	case acks == producer.AcksLeader:
		out.opts = append(out.opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	case acks == producer.AcksNone:
		out.opts = append(out.opts, kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
	case !idempotent:
		out.opts = append(out.opts, kgo.DisableIdempotentWrite())
	}
	return out, nil
}

func (k *kafkaOptions) tlsConfig() (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: k.tlsName, InsecureSkipVerify: k.tlsInsecure} //nolint:gosec // the operator asked for it
	if k.tlsCA != "" {
		pem, err := os.ReadFile(k.tlsCA)
		if err != nil {
			return nil, fmt.Errorf("--tls-ca: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--tls-ca: no PEM certificate in %s", k.tlsCA)
		}
	}
	if (k.tlsCert == "") != (k.tlsKey == "") {
		return nil, errors.New("--tls-cert and --tls-key go together")
	}
	if k.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(k.tlsCert, k.tlsKey)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert, --tls-key: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// envRef is a collector config reference to an environment variable:
// ${env:NAME}, ${NAME}, with an optional :-default.
var envRef = regexp.MustCompile(`\$\{(?:env:)?([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}`)

// loadExporterConfig reads the kafkabatcher exporter id (or the only one)
// of a collector config file, environment references expanded, over the
// exporter's defaults.
func loadExporterConfig(path, id string) (*kafkabatcherexporter.Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	raw = envRef.ReplaceAllFunc(raw, func(m []byte) []byte {
		sub := envRef.FindSubmatch(m)
		if v, ok := os.LookupEnv(string(sub[1])); ok {
			return []byte(v)
		}
		return sub[2]
	})
	var doc struct {
		Exporters map[string]map[string]any `yaml:"exporters"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var ids []string
	for name := range doc.Exporters {
		if name == "kafkabatcher" || strings.HasPrefix(name, "kafkabatcher/") {
			ids = append(ids, name)
		}
	}
	slices.Sort(ids)
	switch {
	case id != "" && !slices.Contains(ids, id):
		return nil, fmt.Errorf("%s: no exporter %q (kafkabatcher exporters: %v)", path, id, ids)
	case id == "" && len(ids) != 1:
		return nil, fmt.Errorf("%s: %d kafkabatcher exporters %v: choose one with --exporter", path, len(ids), ids)
	case id == "":
		id = ids[0]
	}
	cfg := kafkabatcherexporter.NewFactory().CreateDefaultConfig().(*kafkabatcherexporter.Config)
	if err := confmap.NewFromStringMap(doc.Exporters[id]).Unmarshal(cfg, confmap.WithIgnoreUnused()); err != nil {
		return nil, fmt.Errorf("%s: exporters::%s: %w", path, id, err)
	}
	return cfg, nil
}
