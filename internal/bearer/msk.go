package bearer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-msk-iam-sasl-signer-go/signer"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// DefaultRoleSessionName names the STS session of an assumed role when
// MSKConfig.RoleSessionName is empty.
const DefaultRoleSessionName = "otelcol-kafkabatcher"

// mskCredentialsExpiryWindow is how long before their expiry cached AWS
// credentials are fetched again (as contrib's kafka exporter does).
const mskCredentialsExpiryWindow = time.Minute

// mskMinRefreshMargin is the least time a token is handed out for: one
// with less left is signed again. A token is also signed again once a
// third of its lifetime remains, whichever comes first.
const mskMinRefreshMargin = time.Minute

// NewMSK returns a Source of AWS MSK IAM tokens: presigned
// kafka-cluster:Connect requests for cfg.Region, signed with the AWS
// credentials of the default chain (environment, shared files, container
// or instance role), of the shared-config profile cfg.Profile, or of the
// role cfg.RoleARN assumed through STS with those. The credentials
// provider is resolved here, once; credentials themselves are fetched at
// the first Token and cached until a minute before they expire. NewMSK
// reaches no AWS service: missing credentials show at Token.
func NewMSK(ctx context.Context, cfg MSKConfig) (Source, error) {
	if cfg.Region == "" {
		return nil, errors.New("aws msk iam: region is required")
	}
	creds, err := mskCredentialsProvider(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("aws msk iam (region %s): %w", cfg.Region, err)
	}
	return newMSK(cfg.Region, creds, time.Now), nil
}

// mskCredentialsProvider resolves the credentials provider for cfg,
// wrapped in a cache.
func mskCredentialsProvider(ctx context.Context, cfg MSKConfig) (aws.CredentialsProvider, error) {
	cacheOpts := func(o *aws.CredentialsCacheOptions) { o.ExpiryWindow = mskCredentialsExpiryWindow }
	opts := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithRegion(cfg.Region),
		awsconfig.WithCredentialsCacheOptions(cacheOpts),
	}
	if cfg.Profile != "" {
		opts = append(opts, awsconfig.WithSharedConfigProfile(cfg.Profile))
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("loading the AWS configuration: %w", err)
	}
	if cfg.RoleARN == "" {
		return awsCfg.Credentials, nil
	}
	name := cfg.RoleSessionName
	if name == "" {
		name = DefaultRoleSessionName
	}
	role := stscreds.NewAssumeRoleProvider(sts.NewFromConfig(awsCfg), cfg.RoleARN,
		func(o *stscreds.AssumeRoleOptions) { o.RoleSessionName = name })
	return aws.NewCredentialsCache(role, cacheOpts), nil
}

// newMSK is NewMSK with the credentials provider and the clock given.
func newMSK(region string, creds aws.CredentialsProvider, now func() time.Time) *mskSource {
	return &mskSource{region: region, creds: creds, now: now}
}

// mskSource signs MSK IAM tokens and hands out the last one while it is
// fresh. Token is safe for concurrent use; one caller signs at a time.
type mskSource struct {
	region string
	creds  aws.CredentialsProvider
	now    func() time.Time

	mu      sync.Mutex
	token   string
	refresh time.Time // when token is to be signed again
}

// Token returns the cached token, or signs a new one when the cached one
// has less than a third of its lifetime (and at least a minute) left. A
// token expires when its presigned request does (15 minutes after
// signing) or when the credentials that signed it do, if sooner.
func (s *mskSource) Token(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if s.token != "" && now.Before(s.refresh) {
		return s.token, nil
	}
	creds, err := s.creds.Retrieve(ctx)
	if err == nil && (creds.AccessKeyID == "" || creds.SecretAccessKey == "") {
		err = errors.New("the provider gave an empty access key")
	}
	if err != nil {
		return "", fmt.Errorf("aws msk iam (region %s): no AWS credentials: %w", s.region, err)
	}
	token, expiryMs, err := signer.GenerateAuthTokenFromCredentialsProvider(ctx, s.region,
		credentials.StaticCredentialsProvider{Value: creds})
	if err != nil {
		return "", fmt.Errorf("aws msk iam (region %s): signing the token: %w", s.region, err)
	}
	expires := time.UnixMilli(expiryMs)
	if creds.CanExpire && creds.Expires.Before(expires) {
		expires = creds.Expires
	}
	margin := max(expires.Sub(now)/3, mskMinRefreshMargin)
	s.token, s.refresh = token, expires.Add(-margin)
	return token, nil
}
