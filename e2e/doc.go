// Package e2e holds black-box tests of the ocb-built collector
// (_build/otelcol-kafkabatcher) against the devbroker (cmd/devbroker), both
// run as real processes on loopback with YAML configs.
//
// The tests carry the build tag e2e, so `go test ./...` leaves them out:
//
//	make e2e                                   builds both binaries, then runs the suite
//	go test -tags e2e -count=1 -v ./e2e/...    builds what is missing itself
//
// OTELCOL_BIN and DEVBROKER_BIN name prebuilt binaries (the Makefile sets
// them); without them TestMain runs `make build` (ocb) and `go build` of the
// devbroker. Every process a test starts is stopped by its pid when the test
// ends, pass or fail; a failing test prints the logs and configs.
//
// KAFKABATCHER_E2E_PRODUCER_TIMEOUT sets the collector's producer.timeout
// in every test: unset or empty keeps the suite's 3s, "default" leaves the
// key out (the exporter's default, 10s), anything else is a duration. The
// fault tests (kafka_fault_test.go) log it and end with one line per run,
//
//	ledger: sent=N in_kafka=N duplicates=N out_of_order=N lost=N ...
//
// With idempotence on they fail on any duplicate (but of a record whose
// fate a crash left unknown) and any record out of order. Whether a fault
// leaves duplicates can depend on timing, so `make e2e-stress` runs
// TestRealKafkaLeaderKilled/idempotent and TestRealKafkaFollowerKilled
// STRESS_COUNT times (default 10) under each producer.timeout of
// STRESS_TIMEOUTS (default "default 3s"), each run its own `go test`, logs
// in _build/stress/<test>-<timeout>-<i>.log, and prints a table of
// duplicates, out of order, lost and pass/fail per run:
//
//	make e2e-stress                                    40 runs, about an hour
//	make e2e-stress STRESS_COUNT=1 STRESS_TIMEOUTS=3s  one run of each
package e2e
