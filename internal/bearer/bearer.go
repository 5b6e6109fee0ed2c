// Package bearer gives the tokens a Kafka client presents in a SASL
// OAUTHBEARER login: from an OAuth 2 token endpoint (client credentials),
// from a file a platform keeps current, from a collector extension, or
// signed for AWS MSK IAM. A Source is asked at every login, including
// re-authentications, and hands out a cached token while it is fresh.
package bearer

import "context"

// Source gives the token for one SASL OAUTHBEARER login.
type Source interface {
	// Token returns a token valid for at least the next few seconds.
	Token(ctx context.Context) (string, error)
}

// MSKConfig configures tokens for AWS MSK IAM access control.
type MSKConfig struct {
	// Region is the AWS region of the MSK cluster; required.
	Region string
	// RoleARN, when set, is assumed (STS) for the credentials; RoleSessionName
	// names the session (default "otelcol-kafkabatcher").
	RoleARN         string
	RoleSessionName string
	// Profile, when set, names the profile of the shared AWS config files
	// to take credentials from; otherwise the default credential chain.
	Profile string
}
