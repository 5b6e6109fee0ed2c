package tempstorage

import (
	"fmt"
	"strconv"
	"strings"
)

// EscapeName makes any string a single, safe path element, distinct per
// string: [A-Za-z0-9_.-] stay, every other byte becomes %XX (upper-case
// hex), as do all bytes of "." and ".."; the empty string is "%". The store
// names topic directories with it; unescapeName reverses it.
func EscapeName(topic string) string {
	if topic == "" {
		return "%"
	}
	dots := topic == "." || topic == ".."
	var b strings.Builder
	for i := 0; i < len(topic); i++ {
		c := topic[i]
		if safeTopicByte(c) && !dots {
			b.WriteByte(c)
			continue
		}
		const hex = "0123456789ABCDEF"
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

func safeTopicByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.'
}

// unescapeName returns the topic EscapeName gave name; only names
// EscapeName produces are accepted, so two directories never name one topic.
func unescapeName(name string) (string, error) {
	if name == "%" {
		return "", nil
	}
	b := make([]byte, 0, len(name))
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c != '%' {
			b = append(b, c)
			continue
		}
		if i+2 >= len(name) {
			return "", fmt.Errorf("topic name %q: truncated escape", name)
		}
		v, err := strconv.ParseUint(name[i+1:i+3], 16, 8)
		if err != nil {
			return "", fmt.Errorf("topic name %q: bad escape %q", name, name[i:i+3])
		}
		b = append(b, byte(v))
		i += 2
	}
	if topic := string(b); EscapeName(topic) == name {
		return topic, nil
	}
	return "", fmt.Errorf("topic name %q is not escaped as the store escapes it", name)
}

// parsePartition reads a partition directory name: a decimal int32 as
// strconv formats it.
func parsePartition(name string) (int32, error) {
	v, err := strconv.ParseInt(name, 10, 32)
	if err != nil || strconv.FormatInt(v, 10) != name {
		return 0, fmt.Errorf("partition name %q is not a decimal int32", name)
	}
	return int32(v), nil
}
