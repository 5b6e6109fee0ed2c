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
package e2e
