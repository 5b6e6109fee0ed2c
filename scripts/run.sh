#!/usr/bin/env bash
# Runs the demo: the devbroker on 127.0.0.1:9092 and the collector on
# testdata/demo.yaml. Called by `make run` and `make demo` after the binaries
# are built. KAFKA=real runs a real Apache Kafka (one KRaft node, the test
# bench's _build/kafka) on the same address instead of the devbroker.
#   scripts/run.sh run    shows delivery progress until Ctrl-C, then stops both
#   scripts/run.sh demo   waits until every line of testdata/sample.log reached
#                         Kafka (or DEMO_TIMEOUT), prints what arrived, stops both;
#                         exit 0 when all arrived, 1 when records are missing
set -euo pipefail

mode="${1:-run}"
case "$mode" in
run | demo) ;;
*) echo "usage: $0 run|demo" >&2; exit 2 ;;
esac
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

collector="${COLLECTOR:-_build/otelcol-kafkabatcher}"
devbroker="${DEVBROKER:-_build/devbroker}"
config=testdata/demo.yaml
sample=testdata/sample.log
addr=127.0.0.1:9092
topic=otlp_logs
rundir=_build/run
timeout="${DEMO_TIMEOUT:-60s}"
kafka="${KAFKA:-}"
kafka_cmd="${KAFKA_CMD:-_build/kafka}"
case "$kafka" in
"" | devbroker) broker_name=devbroker ;;
real) broker_name=kafka ;;
*) echo "KAFKA=$kafka: want real or devbroker" >&2; exit 2 ;;
esac

bins=("$collector" "$devbroker")
[[ "$broker_name" == kafka ]] && bins+=("$kafka_cmd")
for bin in "${bins[@]}"; do
	[[ -x "$bin" ]] || { echo "missing $bin: run 'make build devbroker' first" >&2; exit 1; }
done

# port_open HOST PORT: true when something accepts connections there.
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

for hp in 127.0.0.1:9092 127.0.0.1:4317 127.0.0.1:4318 127.0.0.1:8888; do
	if port_open "${hp%:*}" "${hp#*:}"; then
		echo "port ${hp#*:} is already in use (another Kafka, collector or 'make run'?); stop it and retry" >&2
		exit 1
	fi
done

mkdir -p "$rundir/input"
: >"$rundir/input/app.log"
if [[ "$mode" == demo ]]; then
	rm -rf "$rundir/storage" # a clean queue, so the count below is exact
fi

broker_pid="" collector_pid="" watch_pid=""

# stop PID NAME SECONDS: SIGTERM, then SIGKILL if it outlives SECONDS.
stop() {
	local pid="$1" name="$2" secs="$3"
	[[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < secs * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
		sleep 0.1
	done
	echo "$name did not stop in ${secs}s; killing it" >&2
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$?
	trap '' INT TERM # a second Ctrl-C (make sends one too) must not cut the cleanup short
	stop "$watch_pid" "progress watch" 5
	if [[ -n "$collector_pid" ]]; then
		echo "stopping the collector (it sends what it still holds)..."
		stop "$collector_pid" collector 30
	fi
	if [[ "$mode" == run && -n "$broker_pid" ]] && kill -0 "$broker_pid" 2>/dev/null; then
		echo
		echo "what reached Kafka:"
		"$devbroker" dump -addr "$addr" -topic "$topic" || true
	fi
	stop "$broker_pid" "$broker_name" 40
	echo "logs: $rundir/$broker_name.log, $rundir/collector.log"
	exit "$rc"
}
trap cleanup EXIT
if [[ "$mode" == run ]]; then trap 'exit 0' INT; else trap 'exit 130' INT; fi # Ctrl-C is how run ends
trap 'exit 143' TERM

# Both run in their own session so that Ctrl-C reaches only this script,
# which stops the collector first (it flushes to Kafka), then the broker.
brokerlog="$rundir/$broker_name.log"
if [[ "$broker_name" == kafka ]]; then
	echo "starting Apache Kafka (the first start fetches it from Maven Central)..."
	setsid "$kafka_cmd" -dir "$root/$rundir/kafka" -port "${addr#*:}" -topic "$topic:6" >"$brokerlog" 2>&1 &
	ready="Kafka .* on" limit=1200
else
	setsid "$devbroker" -addr "$addr" -topic "$topic:6" >"$brokerlog" 2>&1 &
	ready="ready on" limit=100
fi
broker_pid=$!
for ((i = 0; ; i++)); do
	grep -q "$ready" "$brokerlog" 2>/dev/null && break
	if ! kill -0 "$broker_pid" 2>/dev/null || ((i > limit)); then
		echo "$broker_name did not start:" >&2
		cat "$brokerlog" >&2
		exit 1
	fi
	sleep 0.1
done
echo "$broker_name: Kafka on $addr, topic $topic with 6 partitions"

setsid "$collector" --config "$config" >"$rundir/collector.log" 2>&1 &
collector_pid=$!
for ((i = 0; ; i++)); do
	port_open 127.0.0.1 4317 && port_open 127.0.0.1 4318 && break
	if ! kill -0 "$collector_pid" 2>/dev/null || ((i > 300)); then
		echo "collector did not start; the end of $rundir/collector.log:" >&2
		tail -n 30 "$rundir/collector.log" >&2
		exit 1
	fi
	sleep 0.1
done
echo "collector: $collector on $config"

if [[ "$mode" == demo ]]; then
	expected=$(grep -c . "$sample")
	echo "waiting up to $timeout for the $expected lines of $sample to reach Kafka..."
	set +e
	"$devbroker" dump -addr "$addr" -topic "$topic" -wait "$expected" -timeout "$timeout"
	rc=$?
	set -e
	if ((rc != 0)); then
		echo "the end of $rundir/collector.log:" >&2
		tail -n 20 "$rundir/collector.log" >&2
	fi
	exit "$rc"
fi

cat <<EOF

Send logs to the collector; they go to Kafka topic $topic on $addr:
  OTLP gRPC   localhost:4317
  OTLP HTTP   http://localhost:4318/v1/logs, e.g.
    curl -s -H 'Content-Type: application/json' http://localhost:4318/v1/logs -d '{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"curl"}}]},"scopeLogs":[{"logRecords":[{"severityText":"ERROR","body":{"stringValue":"hello kafka"}}]}]}]}'
  a file      append lines to $rundir/input/app.log, e.g.
    echo "\$(date -u +%Y-%m-%dT%H:%M:%S.000Z) ERROR shop msg=\"it broke\"" >> $rundir/input/app.log
  (testdata/sample.log, $(grep -c . "$sample") lines, is read at start)
See what reached Kafka:  $devbroker dump        Metrics: http://127.0.0.1:8888/metrics
Delivery progress below; Ctrl-C stops both.

EOF
setsid "$devbroker" dump -addr "$addr" -topic "$topic" -watch &
watch_pid=$!
while kill -0 "$collector_pid" 2>/dev/null && kill -0 "$broker_pid" 2>/dev/null; do
	sleep 1
done
echo "a process exited on its own; the end of $rundir/collector.log and $brokerlog:" >&2
tail -n 20 "$rundir/collector.log" "$brokerlog" >&2
exit 1
