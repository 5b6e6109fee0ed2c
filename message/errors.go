package message

import "errors"

// The errors of the builders that turn pipeline data into messages (logmsg,
// spanmsg, metricmsg), defined once so errors.Is holds whichever built them.
var (
	// ErrNoTopic is returned, wrapped, by a builder whose default topic is
	// empty.
	ErrNoTopic = errors.New("topic must not be empty")
	// ErrUnknownEncoding is returned, wrapped, by a builder for an encoding
	// it does not know.
	ErrUnknownEncoding = errors.New("unknown encoding")
)
