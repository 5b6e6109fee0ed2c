package bearer

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// mskToken is what an MSK IAM token says: the presigned request it encodes.
type mskToken struct {
	url     *url.URL
	query   url.Values
	date    time.Time
	expires time.Duration
}

// decodeMSKToken reads a token as the signer builds it: a presigned
// https GET, base64 raw-URL-encoded.
func decodeMSKToken(t *testing.T, token string) mskToken {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(token)
	require.NoError(t, err, "a token is base64 raw-URL-encoded")
	u, err := url.Parse(string(raw))
	require.NoError(t, err)
	q := u.Query()
	date, err := time.Parse("20060102T150405Z", q.Get("X-Amz-Date"))
	require.NoError(t, err, "X-Amz-Date")
	secs, err := strconv.Atoi(q.Get("X-Amz-Expires"))
	require.NoError(t, err, "X-Amz-Expires")
	return mskToken{url: u, query: q, date: date, expires: time.Duration(secs) * time.Second}
}

// requireConnectRequest checks that tok is a kafka-cluster:Connect request
// for region signed with accessKey.
func requireConnectRequest(t *testing.T, tok mskToken, region, accessKey string) {
	t.Helper()
	assert.Equal(t, "https", tok.url.Scheme)
	assert.Equal(t, "kafka."+region+".amazonaws.com", tok.url.Host)
	assert.Equal(t, "kafka-cluster:Connect", tok.query.Get("Action"))
	assert.Equal(t, "AWS4-HMAC-SHA256", tok.query.Get("X-Amz-Algorithm"))
	cred := tok.query.Get("X-Amz-Credential")
	assert.True(t, strings.HasPrefix(cred, accessKey+"/"), "X-Amz-Credential %q starts with the access key id", cred)
	assert.Contains(t, cred, "/"+region+"/kafka-cluster/aws4_request")
	assert.Contains(t, cred, tok.date.Format("20060102"), "the credential scope is of the signing day")
	assert.Equal(t, 15*time.Minute, tok.expires)
	assert.WithinDuration(t, time.Now(), tok.date, time.Minute, "signed now")
	assert.True(t, strings.HasPrefix(tok.query.Get("User-Agent"), "aws-msk-iam-sasl-signer-go/"), tok.query.Get("User-Agent"))
	assert.Len(t, tok.query.Get("X-Amz-Signature"), 64, "a hex SHA-256 signature")
	assert.Equal(t, "host", tok.query.Get("X-Amz-SignedHeaders"))
}

// countingProvider counts how often credentials are asked for.
type countingProvider struct {
	aws.CredentialsProvider
	mu    sync.Mutex
	calls int
}

func (p *countingProvider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	p.mu.Lock()
	p.calls++
	p.mu.Unlock()
	return p.CredentialsProvider.Retrieve(ctx)
}

func (p *countingProvider) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}

// fakeClock is a clock the test moves.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func staticCreds(key, secret, session string) aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(key, secret, session)
}

func TestMSKTokenIsAPresignedConnectRequestForTheRegion(t *testing.T) {
	src := newMSK("eu-west-1", staticCreds("AKIAEXAMPLEKEY", "secret", ""), time.Now)
	token, err := src.Token(t.Context())
	require.NoError(t, err)
	tok := decodeMSKToken(t, token)
	requireConnectRequest(t, tok, "eu-west-1", "AKIAEXAMPLEKEY")
	assert.Empty(t, tok.query.Get("X-Amz-Security-Token"), "long-term keys have no session token")
}

func TestMSKTokenCarriesTheSessionTokenOfTemporaryCredentials(t *testing.T) {
	src := newMSK("us-east-2", staticCreds("ASIATEMPKEY", "secret", "the-session"), time.Now)
	token, err := src.Token(t.Context())
	require.NoError(t, err)
	tok := decodeMSKToken(t, token)
	requireConnectRequest(t, tok, "us-east-2", "ASIATEMPKEY")
	assert.Equal(t, "the-session", tok.query.Get("X-Amz-Security-Token"))
}

func TestMSKTokenIsCachedAndSignedAgainWhenAThirdOfItsLifetimeIsLeft(t *testing.T) {
	creds := &countingProvider{CredentialsProvider: staticCreds("AKIAEXAMPLEKEY", "secret", "")}
	clock := &fakeClock{t: time.Now()}
	src := newMSK("eu-west-1", creds, clock.now)

	first, err := src.Token(t.Context())
	require.NoError(t, err)
	require.Equal(t, 1, creds.count())
	tok := decodeMSKToken(t, first)
	expiry := tok.date.Add(tok.expires)

	// Until a third of the 15 minutes is left, the same token.
	clock.t = expiry.Add(-5*time.Minute - time.Second)
	again, err := src.Token(t.Context())
	require.NoError(t, err)
	assert.Equal(t, first, again, "the cached token")
	assert.Equal(t, 1, creds.count(), "not signed again")

	// Then a new one, still with five minutes to spare.
	clock.advance(2 * time.Second)
	_, err = src.Token(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 2, creds.count(), "signed again before the token expires")

	// And that one is cached in its turn.
	_, err = src.Token(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 2, creds.count())
}

func TestMSKTokenIsSignedAgainBeforeItsCredentialsExpire(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	expiring := &countingProvider{CredentialsProvider: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{
			AccessKeyID: "ASIATEMPKEY", SecretAccessKey: "secret", SessionToken: "s",
			CanExpire: true, Expires: clock.now().Add(3 * time.Minute),
		}, nil
	})}
	src := newMSK("eu-west-1", expiring, clock.now)
	_, err := src.Token(t.Context())
	require.NoError(t, err)

	// Credentials that expire in 3 minutes end the token's use a minute
	// before, not 5 minutes before the presigned request's own expiry.
	clock.advance(2*time.Minute - time.Second)
	_, err = src.Token(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 1, expiring.count(), "still fresh")
	clock.advance(2 * time.Second)
	_, err = src.Token(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 2, expiring.count(), "signed again a minute before the credentials expire")
}

func TestMSKTokenIsSafeForConcurrentLogins(t *testing.T) {
	creds := &countingProvider{CredentialsProvider: staticCreds("AKIAEXAMPLEKEY", "secret", "")}
	src := newMSK("eu-west-1", creds, time.Now)
	var wg sync.WaitGroup
	tokens := make([]string, 8)
	for i := range tokens {
		wg.Go(func() {
			tok, err := src.Token(t.Context())
			assert.NoError(t, err)
			tokens[i] = tok
		})
	}
	wg.Wait()
	assert.Equal(t, 1, creds.count(), "one signing for all")
	for _, tok := range tokens {
		assert.Equal(t, tokens[0], tok)
	}
}

func TestNewMSKNeedsARegion(t *testing.T) {
	_, err := NewMSK(t.Context(), MSKConfig{})
	assert.EqualError(t, err, "aws msk iam: region is required")
}

func TestMSKTokenWithoutCredentialsSaysSo(t *testing.T) {
	failing := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{}, errors.New("no provider in the chain had any")
	})
	_, err := newMSK("eu-west-1", failing, time.Now).Token(t.Context())
	assert.EqualError(t, err, "aws msk iam (region eu-west-1): no AWS credentials: no provider in the chain had any")

	_, err = newMSK("eu-west-1", staticCreds("", "", ""), time.Now).Token(t.Context())
	assert.ErrorContains(t, err, "aws msk iam (region eu-west-1): no AWS credentials: ")
}

// isolateAWS makes the default credential chain read only what the test
// sets: no environment keys, empty shared files, no instance metadata.
// It returns the shared config and credentials file paths.
func isolateAWS(t *testing.T) (configFile, credentialsFile string) {
	dir := t.TempDir()
	configFile = filepath.Join(dir, "config")
	credentialsFile = filepath.Join(dir, "credentials")
	require.NoError(t, os.WriteFile(configFile, nil, 0o600))
	require.NoError(t, os.WriteFile(credentialsFile, nil, 0o600))
	for _, k := range []string{
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
		"AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_STS", "AWS_REGION", "AWS_DEFAULT_REGION",
	} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", configFile)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", credentialsFile)
	return configFile, credentialsFile
}

func TestNewMSKWithoutAnyCredentialsFailsAtTheFirstToken(t *testing.T) {
	isolateAWS(t)
	src, err := NewMSK(t.Context(), MSKConfig{Region: "eu-west-1"})
	require.NoError(t, err, "resolving the chain needs no credentials yet")
	_, err = src.Token(t.Context())
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "aws msk iam (region eu-west-1): no AWS credentials: "), err.Error())
}

func TestNewMSKTakesTheDefaultChainsCredentials(t *testing.T) {
	isolateAWS(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAFROMENV")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "envsecret")
	src, err := NewMSK(t.Context(), MSKConfig{Region: "ap-southeast-2"})
	require.NoError(t, err)
	token, err := src.Token(t.Context())
	require.NoError(t, err)
	requireConnectRequest(t, decodeMSKToken(t, token), "ap-southeast-2", "AKIAFROMENV")
}

func TestNewMSKTakesTheProfilesCredentials(t *testing.T) {
	_, credsFile := isolateAWS(t)
	require.NoError(t, os.WriteFile(credsFile, []byte(""+
		"[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = d\n"+
		"[kafka]\naws_access_key_id = AKIAPROFILE\naws_secret_access_key = p\n"), 0o600))

	src, err := NewMSK(t.Context(), MSKConfig{Region: "eu-west-1", Profile: "kafka"})
	require.NoError(t, err)
	token, err := src.Token(t.Context())
	require.NoError(t, err)
	requireConnectRequest(t, decodeMSKToken(t, token), "eu-west-1", "AKIAPROFILE")

	_, err = NewMSK(t.Context(), MSKConfig{Region: "eu-west-1", Profile: "absent"})
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "aws msk iam (region eu-west-1): loading the AWS configuration: "), err.Error())
	assert.Contains(t, err.Error(), "absent")
}

// fakeSTS answers AssumeRole with the credentials accessKey, as STS does,
// and records each call's form.
type fakeSTS struct {
	accessKey string
	mu        sync.Mutex
	calls     []url.Values
}

func (f *fakeSTS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.calls = append(f.calls, r.PostForm)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "text/xml")
	fmt.Fprintf(w, `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::123456789012:assumed-role/kafka/%[1]s</Arn>
      <AssumedRoleId>AROAEXAMPLE:%[1]s</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <AccessKeyId>%[2]s</AccessKeyId>
      <SecretAccessKey>rolesecret</SecretAccessKey>
      <SessionToken>role-session-token</SessionToken>
      <Expiration>%[3]s</Expiration>
    </Credentials>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>1</RequestId></ResponseMetadata>
</AssumeRoleResponse>`, r.PostForm.Get("RoleSessionName"), f.accessKey, time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
}

func (f *fakeSTS) forms() []url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]url.Values(nil), f.calls...)
}

func TestNewMSKAssumesTheRoleWithTheChainsCredentials(t *testing.T) {
	isolateAWS(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIABASE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "basesecret")
	sts := &fakeSTS{accessKey: "ASIAASSUMED"}
	srv := httptest.NewServer(sts)
	t.Cleanup(srv.Close)
	t.Setenv("AWS_ENDPOINT_URL_STS", srv.URL)

	for _, tc := range []struct{ sessionName, want string }{
		{"", DefaultRoleSessionName},
		{"mine", "mine"},
	} {
		before := len(sts.forms())
		src, err := NewMSK(t.Context(), MSKConfig{
			Region: "eu-west-1", RoleARN: "arn:aws:iam::123456789012:role/kafka", RoleSessionName: tc.sessionName,
		})
		require.NoError(t, err)
		token, err := src.Token(t.Context())
		require.NoError(t, err)
		tok := decodeMSKToken(t, token)
		requireConnectRequest(t, tok, "eu-west-1", "ASIAASSUMED")
		assert.Equal(t, "role-session-token", tok.query.Get("X-Amz-Security-Token"))

		forms := sts.forms()[before:]
		require.Len(t, forms, 1, "one AssumeRole")
		assert.Equal(t, "AssumeRole", forms[0].Get("Action"))
		assert.Equal(t, "arn:aws:iam::123456789012:role/kafka", forms[0].Get("RoleArn"))
		assert.Equal(t, tc.want, forms[0].Get("RoleSessionName"))
	}
}

func TestNewMSKSaysWhenTheRoleCannotBeAssumed(t *testing.T) {
	isolateAWS(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIABASE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "basesecret")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>`+
			`<Message>not allowed to assume kafka</Message></Error><RequestId>1</RequestId></ErrorResponse>`)
	}))
	t.Cleanup(srv.Close)
	t.Setenv("AWS_ENDPOINT_URL_STS", srv.URL)

	src, err := NewMSK(t.Context(), MSKConfig{Region: "eu-west-1", RoleARN: "arn:aws:iam::123456789012:role/kafka"})
	require.NoError(t, err)
	_, err = src.Token(t.Context())
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "aws msk iam (region eu-west-1): no AWS credentials: "), err.Error())
	assert.Contains(t, err.Error(), "AccessDenied")
}
