package delivery

import (
	"testing"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// TestRecordsAreToldApartByIndexNotContent: records with the same key,
// value slice and timestamp are still different records.
func TestRecordsAreToldApartByIndexNotContent(t *testing.T) {
	v := []byte("same")
	msgs := []message.Message{{Value: v}, {Value: v}, {Value: v}, {Value: v}}
	number(msgs)
	rejected := []message.Rejected{{Message: msgs[1]}}
	rest := msgs[3:]
	got := without(msgs, rejected, rest)
	if len(got) != 2 || got[0].Index != 0 || got[1].Index != 2 {
		t.Fatalf("without = %+v, want records 0 and 2", got)
	}
}
