package delivery

import (
	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// acknowledged is b less the records Kafka refused for good.
func acknowledged(b *message.Batch, rejected []message.Rejected) *message.Batch {
	if len(rejected) == 0 {
		return b
	}
	a := *b
	a.Messages = withoutRejected(b.Messages, rejected)
	a.Bytes = message.BatchSize(a.Messages)
	return &a
}

// withoutRejected returns msgs less the rejected ones.
func withoutRejected(msgs []message.Message, rejected []message.Rejected) []message.Message {
	if len(rejected) == 0 {
		return msgs
	}
	return without(msgs, rejected, nil)
}

// without returns msgs less the rejected ones and less those in rest, a
// subsequence of msgs in the same order (the producer keeps record order).
// Records are matched by identity (the producer hands back the same
// Key/Value slices), not by content.
func without(msgs []message.Message, rejected []message.Rejected, rest []message.Message) []message.Message {
	out := make([]message.Message, 0, len(msgs))
next:
	for _, m := range msgs {
		if len(rest) > 0 && sameMessage(m, rest[0]) {
			rest = rest[1:]
			continue
		}
		for _, r := range rejected {
			if sameMessage(m, r.Message) {
				continue next
			}
		}
		out = append(out, m)
	}
	return out
}

func sameMessage(a, b message.Message) bool {
	return len(a.Value) == len(b.Value) && (len(a.Value) == 0 || &a.Value[0] == &b.Value[0]) &&
		string(a.Key) == string(b.Key) && a.Timestamp.Equal(b.Timestamp)
}
