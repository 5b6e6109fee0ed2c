package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// everydayMarkdown is the section of the paced scenarios: per broker, one
// row per rate, encoding and system, with the exporter's share of the CPU
// per record (its total less the floor's in the same scenario); "" when no
// paced scenario ran.
func (r report) everydayMarkdown() string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	var brokers []string
	for _, s := range r.scenarios() {
		if s.rate > 0 && !slices.Contains(brokers, s.broker) {
			brokers = append(brokers, s.broker)
		}
	}
	if len(brokers) == 0 {
		return ""
	}
	o := r.opts
	w("## The everyday load: fixed rates, defaults\n\n")
	w("What an agent pays: %s records/s of 200 B records (%d per call from %d goroutines, paced: call i is due at i × %d / rate seconds, a caller behind schedule calls at once), ",
		joinRates(o.rates), o.perCall, o.callers, o.perCall)
	w("%.0f s per run, %d partitions, each system at its defaults (kafkabatcher-defaults: brokers, topic, encoding and directory only; contrib: its defaults with `required_acks: all` and `block_on_overflow`, as everywhere in this report). ", o.pacedSeconds, partitions)
	w("Every call is received as a collector receives it: a fresh copy of the request's OTLP protobuf bytes decoded before ConsumeLogs, in every system, so the **floor** row (the same calls into the collector's nop exporter) is the receiving path and an exporter's **share** is its CPU per record less the floor's. ")
	w("achieved: records sent divided by the time from the first call to the last call's return (below the rate when the system held the callers back). ")
	w("p50/p99: per record, from the call (its time is stamped into the first %d bytes of each body) to the fetch of a consumer reading the topic during the run, in the driver process: an upper bound of call to acknowledgement, for every system alike. ", stampLen)
	w("kafkabatcher's own histogram (per batch, oldest record accept to ack) is beside it. Each figure is the median of %d runs.\n\n", o.repeat)
	for _, br := range brokers {
		w("### %s\n\n", br)
		w("| records/s | encoding | system | achieved | CPU µs/record | share µs/record | share / contrib | allocs/record | peak RSS MiB | RSS / contrib | p50 ms | p99 ms | histogram p50 / p99 ms | load |\n")
		w("|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
		for _, s := range r.scenarios() {
			if s.broker != br || s.rate == 0 {
				continue
			}
			floor, hasFloor := r.find(s, sysFloor)
			contrib, hasContrib := r.find(s, sysContrib)
			for _, sys := range pacedSystems {
				res, ok := r.find(s, sys)
				if !ok {
					for _, f := range r.results {
						if scenarioOf(f) == s && f.Spec.System == sys && f.Failed != "" {
							w("| %s | %s | %s | every run failed: %s | | | | | | | | | | |\n", thousands(s.rate), s.encoding, sys, strings.ReplaceAll(f.Failed, "|", "/"))
						}
					}
					continue
				}
				shareCell, shareRatio, rssRatio := "—", "—", "—"
				if hasFloor && sys != sysFloor {
					shareCell = fmt.Sprintf("%.2f", share(res, floor))
					if hasContrib && sys != sysContrib {
						shareRatio = fmt.Sprintf("%.2f×", share(res, floor)/share(contrib, floor))
					}
				}
				if hasContrib && sys != sysContrib && sys != sysFloor {
					rssRatio = fmt.Sprintf("%.2f×", res.peakRSSMiB()/contrib.peakRSSMiB())
				}
				p50, p99, hist := "—", "—", "—"
				if res.LatencyOf != "" {
					p50, p99 = fmt.Sprintf("%.2f", res.P50Ms), fmt.Sprintf("%.2f", res.P99Ms)
				}
				if res.HistOf != "" {
					hist = fmt.Sprintf("%.1f / %.1f", res.HistP50Ms, res.HistP99Ms)
				}
				name := sys
				if res.FailedRepeats > 0 {
					name = fmt.Sprintf("%s (%d of %d runs failed)", sys, res.FailedRepeats, res.Repeats+res.FailedRepeats)
				}
				w("| %s | %s | %s | %.0f | %.2f | %s | %s | %.1f | %.0f | %s | %s | %s | %s | %s |\n",
					thousands(s.rate), s.encoding, name, res.achievedRate(), res.cpuMicrosPerRecord(), shareCell, shareRatio,
					res.allocsPerRecord(), res.peakRSSMiB(), rssRatio, p50, p99, hist, res.LoadAvg)
			}
		}
		w("\n")
	}
	return b.String()
}

// floorMarkdown is the section "What a record costs at best": the floor
// estimate's parts and, beside it, what the systems spend per record; ""
// when it was not measured.
func (r report) floorMarkdown() string {
	f := r.floor
	if f == nil {
		return ""
	}
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("## What a record costs at best\n\n")
	w("The work no Kafka producer can skip for one 200 B record on this machine, each part a Go benchmark (`bench/floorcost.go`; ")
	w("`cd bench && go test -run '^$' -bench Floor .`), measured by this run before the brokers started. ")
	w("A record is %d bytes in a Kafka v2 batch (keyless, no headers); per-batch work is divided by the %d records of a 1 MiB batch.\n\n", f.RecordBytes, f.RecordsPerBatch)
	w("| part | ns/record |\n|---|---:|\n")
	w("| copy: the value into the batch (memmove, 200 B) | %.1f |\n", f.CopyNs)
	w("| encode: the v2 record framing (length, attributes, timestamp and offset deltas, key and value lengths, header count: varints) | %.1f |\n", f.EncodeNs)
	w("| CRC32C (Castagnoli) of the batch | %.1f |\n", f.CRCNs)
	w("| syscall: write(2) of the 1 MiB batch to a loopback TCP socket | %.1f |\n", f.SyscallNs)
	w("| **sum: a record at best** | **%.1f** |\n\n", f.totalNs())
	var rows []string
	for _, s := range r.scenarios() {
		if s.rate > 0 {
			floor, ok := r.find(s, sysFloor)
			if !ok {
				continue
			}
			for _, sys := range []string{sysOursDefaults, sysOursPerKey, sysContrib} {
				if res, ok := r.find(s, sys); ok {
					rows = append(rows, fmt.Sprintf("| %s | %s | %s, share at %s records/s | %.2f | %.0f× |",
						s.broker, s.encoding, sys, thousands(s.rate), share(res, floor), 1000*share(res, floor)/f.totalNs()))
				}
			}
			continue
		}
		if s.keys > 0 || s.saturation || s.shape != "200B" {
			continue
		}
		for _, sys := range []string{sysOurs, sysContrib, sysFranz} {
			if res, ok := r.find(s, sys); ok {
				rows = append(rows, fmt.Sprintf("| %s | %s | %s, whole process at saturation | %.2f | %.0f× |",
					s.broker, s.encoding, sys, res.cpuMicrosPerRecord(), 1000*res.cpuMicrosPerRecord()/f.totalNs()))
			}
		}
	}
	if len(rows) > 0 {
		w("What the systems spend per record in this run, against that:\n\n")
		w("| broker | encoding | figure | CPU µs/record | × the floor estimate |\n|---|---|---|---:|---:|\n")
		w("%s\n\n", strings.Join(rows, "\n"))
	}
	return b.String()
}

func joinRates(rates []int) string {
	out := make([]string, len(rates))
	for i, r := range rates {
		out[i] = thousands(r)
	}
	return strings.Join(out, " and ")
}

// thousands writes n with a comma every three digits.
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
