//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
)

// TestValidate runs `otelcol-kafkabatcher validate` on a good config and on
// bad ones: a bad one exits non-zero and names the key and the bad value.
func TestValidate(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name string
		set  map[string]any
		want []string // in the output
		// notWant are not in the output: secrets are never echoed.
		notWant []string
	}{
		{"batch_size_zero", map[string]any{"batch.size": 0}, []string{"batch.size", "got 0"}, nil},
		{"strategy_unknown", map[string]any{"partitioning.strategy": "roundrobin"}, []string{"partitioning.strategy", `"roundrobin"`}, nil},
		{"min_delay_over_max_wait", map[string]any{"batch.max_wait": "1s", "batch.min_delay": "2s"}, []string{"batch.min_delay", "2s"}, nil},
		{"key_from_bad_path", map[string]any{"key_from": []string{"attributes."}}, []string{"key_from[0]", "attributes."}, nil},
		{"encoding_unknown", map[string]any{"encoding": "avro"}, []string{"encoding", `"avro"`}, nil},
		{"oauth_two_sources", map[string]any{"auth.sasl": map[string]any{"mechanism": "OAUTHBEARER", "oauthbearer": map[string]any{
			"token_url": "https://idp.example.com/token", "client_id": "agent", "client_secret": "s3cret-never-shown",
			"token_file": "/run/token"}}}, []string{"auth.sasl.oauthbearer", "got 2"}, []string{"s3cret-never-shown"}},
		{"kerberos_keytab_and_password", map[string]any{"auth.kerberos": map[string]any{"realm": "EXAMPLE.COM", "username": "agent",
			"use_keytab": true, "keytab_file": "/etc/agent.keytab", "password": "s3cret-never-shown"}},
			[]string{"auth.kerberos.password"}, []string{"s3cret-never-shown"}},
		{"msk_without_region", map[string]any{"auth.sasl.mechanism": "AWS_MSK_IAM_OAUTHBEARER"}, []string{"auth.sasl.aws_msk.region"}, nil},
	}

	good := e.newConfig("127.0.0.1:9")
	code, out := validate(t, e.writeConfig("good.yaml", good))
	if code != 0 {
		t.Fatalf("good config: validate exited %d:\n%s", code, out)
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := e.newConfig("127.0.0.1:9")
			for k, v := range tc.set {
				c.set(k, v)
			}
			path := e.writeConfig(tc.name+".yaml", c)
			code, out := validate(t, path)
			if code == 0 {
				t.Fatalf("validate accepted %v (exit 0):\n%s", tc.set, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("validate output lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(out, w) {
					t.Errorf("validate output shows %q:\n%s", w, out)
				}
			}
			t.Logf("exit %d: %s", code, lastLine(out))
		})
	}
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return fmt.Sprintf("%.300s", s)
}
