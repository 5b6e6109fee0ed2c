package kfaketest

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseOAuthBearerResponse(t *testing.T) {
	for in, want := range map[string]string{
		"n,,\x01auth=Bearer abc\x01\x01":                      "abc",
		"n,a=user,\x01auth=bearer a.b-c_d~e+f/g==\x01\x01":    "a.b-c_d~e+f/g==",
		"y,,\x01host=h\x01auth=Bearer t\x01port=9092\x01\x01": "t",
	} {
		assert.True(t, isOAuthBearerResponse([]byte(in)), "%q", in)
		got, err := ParseOAuthBearerResponse([]byte(in))
		require.NoError(t, err, "%q", in)
		assert.Equal(t, want, got, "%q", in)
	}
	for in, why := range map[string]string{
		"n,,\x01auth=Bearer abc\x01":                    "not framed",
		"n,,\x01host=h\x01\x01":                         "no auth key",
		"n,,\x01auth=Basic abc\x01\x01":                 "is not Bearer",
		"n,,\x01auth=Bearer \x01\x01":                   "not a b64token",
		"n,,\x01auth=Bearer a b\x01\x01":                "not a b64token",
		"n,,\x01auth=Bearer a=b\x01\x01":                "not a b64token",
		"n,,\x01=x\x01auth=Bearer a\x01\x01":            "has no key",
		"n,,\x01auth=Bearer a\x01auth=Bearer b\x01\x01": "twice",
		"q,,\x01auth=Bearer a\x01\x01":                  "no GS2 header",
	} {
		_, err := ParseOAuthBearerResponse([]byte(in))
		assert.ErrorContains(t, err, why, "%q", in)
	}
	for _, other := range []string{"n,,n=alice,r=nonce", "\x00alice\x00secret", "alice\x00alice\x00secret", ""} {
		assert.False(t, isOAuthBearerResponse([]byte(other)), "%q is SCRAM or PLAIN", other)
	}
}
