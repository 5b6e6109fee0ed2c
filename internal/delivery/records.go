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
// Records are told apart by their Index (see number).
func without(msgs []message.Message, rejected []message.Rejected, rest []message.Message) []message.Message {
	out := make([]message.Message, 0, len(msgs))
next:
	for _, m := range msgs {
		if len(rest) > 0 && m.Index == rest[0].Index {
			rest = rest[1:]
			continue
		}
		for _, r := range rejected {
			if m.Index == r.Message.Index {
				continue next
			}
		}
		out = append(out, m)
	}
	return out
}

// number sets each record's Index to its position in msgs, so the records
// an Outcome hands back can be told apart.
func number(msgs []message.Message) {
	for i := range msgs {
		msgs[i].Index = int32(i)
	}
}
