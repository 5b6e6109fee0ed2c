package producer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/kafkabatcher/kafkabatcherexporter/internal/kfaketest"
	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

func TestCompileValidation(t *testing.T) {
	ok := Config{Brokers: []string{"localhost:9092"}}
	cases := []struct {
		name string
		mod  func(*Config)
		want string // substring of the error; "" means valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"no brokers", func(c *Config) { c.Brokers = nil }, "Brokers"},
		{"bad version", func(c *Config) { c.Version = "banana" }, "Version"},
		{"old version", func(c *Config) { c.Version = "0.10.2.0" }, "Version: must be >= 0.11.0"},
		{"acks 2", func(c *Config) { c.RequiredAcks = 2 }, "RequiredAcks"},
		{"compression", func(c *Config) { c.Compression = "brotli" }, `Compression: unknown compression "brotli" (want none, gzip, snappy, lz4, zstd)`},
		{"zstd old", func(c *Config) { c.Compression = "zstd"; c.Version = "2.0.0" }, "zstd needs Version >= 2.1.0"},
		{"sasl old", func(c *Config) {
			c.SASL = SASLConfig{Mechanism: SASLPlain, Username: "u", Password: "p"}
			c.Version = "0.11.0.0"
		}, "SASL needs Version >= 1.0.0"},
		{"zstd ok", func(c *Config) { c.Compression = "zstd" }, ""},
		{"max bytes", func(c *Config) { c.MaxMessageBytes = -1 }, "MaxMessageBytes"},
		{"timeout", func(c *Config) { c.Timeout = time.Microsecond }, "Timeout"},
		{"broker without port", func(c *Config) { c.Brokers = []string{"localhost"} }, "Brokers[0]: want host:port"},
		{"attempts", func(c *Config) { c.MaxAttempts = -1 }, "MaxAttempts"},
		{"refresh", func(c *Config) { c.RefreshInterval = -time.Second }, "RefreshInterval"},
		{"sasl no user", func(c *Config) { c.SASL = SASLConfig{Mechanism: SASLPlain, Password: "p"} }, "SASL.Username"},
		{"sasl no pass", func(c *Config) { c.SASL = SASLConfig{Mechanism: SASLSCRAMSHA256, Username: "u"} }, "SASL.Password"},
		{"sasl mech", func(c *Config) { c.SASL = SASLConfig{Mechanism: "GSSAPI-X", Username: "u", Password: "p"} }, "SASL.Mechanism"},
		{"sasl user without mech", func(c *Config) { c.SASL = SASLConfig{Username: "u"} }, "SASL.Mechanism"},
		{"scram512", func(c *Config) { c.SASL = SASLConfig{Mechanism: SASLSCRAMSHA512, Username: "u", Password: "p"} }, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ok
			tc.mod(&cfg)
			_, err := compile(cfg)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestValidateNamesEveryProblem: Validate checks the config as given, so a
// host's validation reports zero fields, and joins every problem.
func TestValidateNamesEveryProblem(t *testing.T) {
	err := Config{Compression: CompressionNone}.Validate()
	want := "Brokers: must list at least one host:port, got none\n" +
		`Version: not a Kafka version (want e.g. 2.8.0), got ""` + "\n" +
		`ClientID: must not be empty, got ""` + "\n" +
		"RefreshInterval: must be > 0, got 0s\n" +
		"MaxMessageBytes: must be > 0, got 0\n" +
		"Timeout: must be > 0, got 0s\n" +
		"MaxAttempts: must be >= 1, got 0"
	if err == nil || err.Error() != want {
		t.Fatalf("Validate() = %v\nwant %s", err, want)
	}
}

// TestConfigErrorNamesSettings: each problem is a *ConfigError naming its
// setting, and every setting it involves, by Field, so that a host can
// describe it with its own names.
func TestConfigErrorNamesSettings(t *testing.T) {
	err := Config{
		Brokers: []string{"localhost:9092", "localhost"}, ClientID: "c", Version: "2.0.0",
		Compression: CompressionZstd, MaxMessageBytes: 1, Timeout: time.Second, MaxAttempts: 1,
		RefreshInterval: time.Second, RequiredAcks: AcksLeader, Idempotent: boolp(true),
	}.Validate()
	var got []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var ce *ConfigError
		if !errors.As(e, &ce) {
			t.Fatalf("%v is not a *ConfigError", e)
		}
		got = append(got, fmt.Sprintf("%s %d | %s", ce.Field, ce.Index, ce.Describe(func(f Field) string { return "<" + string(f) + ">" })))
	}
	want := []string{
		`Brokers 1 | <Brokers>[1]: want host:port (IPv6 as [::1]:9092), got "localhost"`,
		`Compression -1 | <Compression>: zstd needs <Version> >= 2.1.0, got <Version> "2.0.0"`,
		`Idempotent -1 | <Idempotent>: true needs <RequiredAcks> all, got <RequiredAcks> 1`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestSaramaValues: the config's acks, compression and version names map to
// sarama's values.
func TestSaramaValues(t *testing.T) {
	for acks, want := range map[RequiredAcks]sarama.RequiredAcks{
		AcksAll: sarama.WaitForAll, AcksLeader: sarama.WaitForLocal, AcksNone: sarama.NoResponse,
	} {
		st, err := compile(Config{Brokers: []string{"b:1"}, RequiredAcks: acks})
		if err != nil {
			t.Fatal(err)
		}
		if st.sarama.Producer.RequiredAcks != want {
			t.Errorf("acks %d: sarama %d, want %d", acks, st.sarama.Producer.RequiredAcks, want)
		}
	}
	for name, want := range map[string]sarama.CompressionCodec{
		CompressionNone:   sarama.CompressionNone,
		CompressionGzip:   sarama.CompressionGZIP,
		CompressionSnappy: sarama.CompressionSnappy,
		CompressionLZ4:    sarama.CompressionLZ4,
		CompressionZstd:   sarama.CompressionZSTD,
	} {
		st, err := compile(Config{Brokers: []string{"b:1"}, Compression: name})
		if err != nil {
			t.Fatal(err)
		}
		if st.codec != want || st.sarama.Producer.Compression != want {
			t.Errorf("compression %s: codec %v, want %v", name, st.codec, want)
		}
	}
	for version, want := range map[string]sarama.KafkaVersion{"": sarama.V2_8_0_0, "3.6.0": sarama.V3_6_0_0} {
		st, err := compile(Config{Brokers: []string{"b:1"}, Version: version})
		if err != nil {
			t.Fatal(err)
		}
		if st.sarama.Version != want {
			t.Errorf("protocol_version %q: sarama %v, want %v", version, st.sarama.Version, want)
		}
	}
}

func TestCompileSaramaConfig(t *testing.T) {
	st, err := compile(Config{
		Brokers: []string{"b:1"}, ClientID: "me", Version: "2.4.0", RequiredAcks: 1, Compression: "lz4",
		Timeout: 3 * time.Second, SASL: SASLConfig{Mechanism: SASLSCRAMSHA256, Username: "u", Password: "p"},
	})
	if err != nil {
		t.Fatal(err)
	}
	sc := st.sarama
	if sc.ClientID != "me" || sc.Version != sarama.V2_4_0_0 || sc.Producer.RequiredAcks != sarama.WaitForLocal ||
		sc.Producer.Compression != sarama.CompressionLZ4 || sc.Net.DialTimeout != 3*time.Second {
		t.Fatalf("sarama config not derived: %+v", sc)
	}
	if sc.Metadata.Full || sc.Metadata.RefreshFrequency != 0 {
		t.Fatal("sarama must not fetch full metadata or refresh in the background")
	}
	if !sc.Net.SASL.Enable || sc.Net.SASL.Mechanism != sarama.SASLTypeSCRAMSHA256 || sc.Net.SASL.SCRAMClientGeneratorFunc == nil {
		t.Fatal("SCRAM not configured")
	}
	if st.produceVersion != 8 || st.cfg.MaxAttempts != DefaultMaxAttempts || st.cfg.RetryBackoff != DefaultRetryBackoff {
		t.Fatalf("derived settings: %+v", st)
	}
}

func TestProduceRequestVersion(t *testing.T) {
	cases := map[string]int16{"0.11.0.0": 3, "1.0.0": 5, "2.0.0": 6, "2.1.0": 7, "2.4.0": 8, "2.8.0": 9, "3.7.0": 10, "4.0.0": 10}
	for v, want := range cases {
		kv, err := sarama.ParseKafkaVersion(v)
		if err != nil {
			t.Fatal(err)
		}
		if got := produceRequestVersion(kv); got != want {
			t.Errorf("%s: version %d, want %d", v, got, want)
		}
	}
}

func TestClassify(t *testing.T) {
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	cases := []struct {
		err  error
		want action
	}{
		{sarama.ErrNotLeaderForPartition, actRetry},
		{sarama.ErrLeaderNotAvailable, actRetry},
		{sarama.ErrNotEnoughReplicas, actRetry},
		{sarama.ErrNotEnoughReplicasAfterAppend, actRetry},
		{sarama.ErrRequestTimedOut, actRetry},
		{sarama.ErrUnknownTopicOrPartition, actRetry},
		{sarama.ErrIncompleteResponse, actRetry},
		{sarama.ErrNetworkException, actReconnect},
		{dial, actReconnect},
		{io.EOF, actReconnect},
		{sarama.ErrNotConnected, actReconnect},
		{sarama.ErrOutOfBrokers, actReconnect},
		{sarama.ErrMessageSizeTooLarge, actSplit},
		{sarama.ErrMessageSetSizeTooLarge, actSplit},
		{sarama.ErrInvalidRecord, actRecordErrors},
		{sarama.ErrInvalidMessage, actRecordErrors},
		{sarama.PacketEncodingError{Info: "x"}, actRecordErrors},
		{sarama.ErrSASLAuthenticationFailed, actFail},
		{sarama.ErrTopicAuthorizationFailed, actFail},
		{sarama.ErrClosedClient, actFail},
		{context.Canceled, actFail},
		{ErrClosed, actFail},
		{fmt.Errorf("wrapped: %w", sarama.ErrNotLeaderForPartition), actRetry},
		{sarama.Wrap(sarama.ErrOutOfBrokers, sarama.ErrSASLAuthenticationFailed), actFail},
	}
	for _, tc := range cases {
		if got := classify(tc.err); got != tc.want {
			t.Errorf("classify(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
	if !isDialError(dial) || isDialError(io.EOF) {
		t.Error("isDialError")
	}
	if !isConnBroken(io.EOF) || !isConnBroken(syscall.ECONNRESET) || isConnBroken(sarama.ErrNotLeaderForPartition) {
		t.Error("isConnBroken")
	}
}

func TestRecordBatch(t *testing.T) {
	msgs := []message.Message{
		{Key: []byte("a"), Value: []byte("1"), Timestamp: testBase.Add(1500 * time.Microsecond),
			Headers: []message.Header{{Key: "h1", Value: []byte("x")}, {Key: "h2"}}},
		{Value: []byte("2"), Timestamp: testBase.Add(-2 * time.Second)},
		{Value: []byte("3"), Timestamp: testBase.Add(time.Minute), Headers: []message.Header{{Key: "h3", Value: []byte("y")}}},
	}
	rb := recordBatch(msgs, sarama.CompressionSnappy)
	if rb.Version != 2 || rb.Codec != sarama.CompressionSnappy || rb.LastOffsetDelta != 2 ||
		rb.ProducerID != -1 || rb.ProducerEpoch != -1 || rb.FirstSequence != -1 ||
		rb.CompressionLevel != sarama.CompressionLevelDefault {
		t.Fatalf("batch header fields: %+v", rb)
	}
	if !rb.FirstTimestamp.Equal(time.UnixMilli(testBase.UnixMilli() + 1)) {
		t.Fatalf("first timestamp %v", rb.FirstTimestamp)
	}
	if !rb.MaxTimestamp.Equal(testBase.Add(time.Minute)) {
		t.Fatalf("max timestamp %v", rb.MaxTimestamp)
	}
	wantDelta := []time.Duration{0, -2001 * time.Millisecond, 59999 * time.Millisecond}
	for i, r := range rb.Records {
		if r.OffsetDelta != int64(i) || r.TimestampDelta != wantDelta[i] || string(r.Value) != string(msgs[i].Value) {
			t.Errorf("record %d: offset %d delta %v value %q", i, r.OffsetDelta, r.TimestampDelta, r.Value)
		}
		if len(r.Headers) != len(msgs[i].Headers) {
			t.Fatalf("record %d: %d headers", i, len(r.Headers))
		}
		for h, rh := range r.Headers {
			if string(rh.Key) != msgs[i].Headers[h].Key || string(rh.Value) != string(msgs[i].Headers[h].Value) {
				t.Errorf("record %d header %d = %q:%q", i, h, rh.Key, rh.Value)
			}
		}
	}
	if rb.Records[1].Key != nil || rb.Records[0].Headers[1].Value != nil {
		t.Error("nil key or header value must stay nil (encoded as -1)")
	}

	old := recordBatch([]message.Message{{Value: []byte("x")}}, sarama.CompressionNone)
	if !old.FirstTimestamp.IsZero() {
		t.Errorf("a timestamp before 1970 must be sent as unknown, got %v", old.FirstTimestamp)
	}
}

func TestFit(t *testing.T) {
	msgs := batchOf("t", 0, "x", 10, 100).Messages
	one := message.BatchSize(msgs[:1])
	parts := fit(msgs, 3*one)
	var n int
	for _, p := range parts {
		if len(p) > 1 && message.BatchSize(p) > 3*one {
			t.Fatalf("part of %d bytes exceeds %d", message.BatchSize(p), 3*one)
		}
		for _, m := range p {
			if string(m.Value) != string(msgs[n].Value) {
				t.Fatalf("order broken at %d", n)
			}
			n++
		}
	}
	if n != 10 || len(parts) < 4 {
		t.Fatalf("fit gave %d parts with %d records", len(parts), n)
	}
	if len(fit(msgs, 1<<20)) != 1 {
		t.Fatal("a batch that fits must stay whole")
	}
}

func TestBackoff(t *testing.T) {
	p := &Producer{st: &settings{cfg: Config{RetryBackoff: 100 * time.Millisecond}}}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, w := range want {
		if got := p.backoff(i + 1); got != w*time.Millisecond {
			t.Errorf("backoff(%d) = %v, want %v", i+1, got, w*time.Millisecond)
		}
	}
	p.st.cfg.RetryBackoff = 3 * time.Second
	if got := p.backoff(3); got != 3*time.Second {
		t.Errorf("a backoff above the cap stays as configured, got %v", got)
	}
}

func TestNewDoesNotDial(t *testing.T) {
	// Nothing listens on port 1; New and Start must not care.
	p, err := New(Config{Brokers: []string{"127.0.0.1:1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.Start()
	if _, ok := p.Partitions("t"); ok {
		t.Fatal("unknown topic reported known")
	}
	if err := p.Close(); err != nil && !errors.Is(err, sarama.ErrClosedClient) {
		t.Fatal(err)
	}
}

func TestPartitionsDoesNotAllocate(t *testing.T) {
	p, err := New(Config{Brokers: []string{"127.0.0.1:1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	p.updateCounts(map[string]int32{"logs": 12})
	allocs := testing.AllocsPerRun(1000, func() {
		if n, ok := p.Partitions("logs"); !ok || n != 12 {
			t.Fatal("wrong count")
		}
	})
	if allocs != 0 {
		t.Fatalf("Partitions allocates %v times", allocs)
	}
}

// TestRefreshErrorPrefixedOnce: a refresh that reaches no broker says
// "refresh metadata" once, however the error travelled.
func TestRefreshErrorPrefixedOnce(t *testing.T) {
	p, err := New(Config{Brokers: []string{fmt.Sprintf("127.0.0.1:%d", kfaketest.FreePort(t))}, Timeout: time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Close() }()
	err = p.Refresh(context.Background(), "t")
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Refresh = %v, want ErrUnavailable", err)
	}
	if n := strings.Count(err.Error(), "refresh metadata"); n != 1 {
		t.Fatalf("Refresh = %q: %d times \"refresh metadata\"", err, n)
	}
}
