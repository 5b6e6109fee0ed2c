# kafkabatcher: build, run and test. `make help` lists the targets.

export GOFLAGS := -buildvcs=false

OCB_VERSION    := v0.165.0
TELEMETRYGEN_VERSION := v0.161.0
GOLANGCI_LINT  := v2.15.0
KAFKA_VERSION  := 4.4.0
BIN            := $(CURDIR)/bin
OCB            := $(BIN)/builder
TELEMETRYGEN   := $(BIN)/telemetrygen
COLLECTOR      := _build/otelcol-kafkabatcher
DEVBROKER      := _build/devbroker
KBQ            := _build/kbq
KAFKA_CMD      := _build/kafka
GO_SOURCES     := $(shell find . -name '*.go' -not -path './_build/*' -not -path './bench/*' -not -path './e2e/*' -not -path './testbench/*' -not -path './internal/tools/*') go.mod go.sum
BENCH_SOURCES  := $(shell find testbench -name '*.go' -o -name '*.xml' -o -name '*.java') testbench/go.mod testbench/go.sum

.PHONY: help build kbq devbroker telemetrygen kafka kafka-cmd run demo deps deps-unit deps-e2e test unit e2e bench generate lint golangci-lint fmt clean

help:
	@echo "make run       build, start the devbroker and the collector on testdata/demo.yaml; Ctrl-C stops both"
	@echo "                (KAFKA=real make run: the same on a real Apache Kafka $(KAFKA_VERSION) instead of the devbroker)"
	@echo "make kafka     a real Apache Kafka $(KAFKA_VERSION) (one KRaft node, from Maven Central) on 127.0.0.1:9092; Ctrl-C stops it"
	@echo "make demo      the same on the bundled sample log; exits by itself and prints what reached Kafka"
	@echo "make test      all tests: unit tests with -race, then the end-to-end suite (make deps first)"
	@echo "make unit      unit tests only (go test -race -count=1)"
	@echo "make e2e       end-to-end tests of the ocb-built collector against the devbroker and real Kafka"
	@echo "make e2e-stress  the leader- and follower-kill tests STRESS_COUNT times (10) per producer.timeout"
	@echo "                in STRESS_TIMEOUTS (\"default 3s\"); logs in _build/stress/, then a table of the runs"
	@echo "make deps      install what the tests need besides Go: JDK (java, keytool), mvn, kcat, MIT KDC, promtool"
	@echo "                (apt-get, as root or with sudo; else it names the command; NO_DEPS=1 skips it in test, unit, e2e)"
	@echo "make bench     side-by-side benchmark (bench/)"
	@echo "make build     the collector with ocb $(OCB_VERSION): $(COLLECTOR), and the queue tool $(KBQ)"
	@echo "make generate  regenerate internal/metadata etc. from metadata.yaml (mdatagen)"
	@echo "make lint      go vet, gofmt, and golangci-lint when bin/golangci-lint exists (make golangci-lint)"

$(OCB):
	GOBIN=$(BIN) go install go.opentelemetry.io/collector/cmd/builder@$(OCB_VERSION)

build: $(COLLECTOR) $(KBQ)

# telemetrygen drives the built collector in the e2e suite (traces, metrics).
telemetrygen: $(TELEMETRYGEN)

$(TELEMETRYGEN):
	GOBIN=$(BIN) go install github.com/open-telemetry/opentelemetry-collector-contrib/cmd/telemetrygen@$(TELEMETRYGEN_VERSION)

$(COLLECTOR): $(OCB) builder-config.yaml $(GO_SOURCES)
	$(OCB) --config builder-config.yaml

# The operator tool for the temp storage directory (README, "Operating it").
kbq: $(KBQ)

$(KBQ): $(GO_SOURCES)
	go build -o $(KBQ) ./cmd/kbq

devbroker: $(DEVBROKER)

$(DEVBROKER): $(GO_SOURCES)
	go build -o $(DEVBROKER) ./cmd/devbroker

# A real broker instead of the devbroker: KAFKA=real make run.
run: build devbroker $(if $(filter real,$(KAFKA)),kafka-cmd)
	@KAFKA=$(KAFKA) bash scripts/run.sh run

# The real-Kafka test bench (testbench/, its own module): fetches Kafka from
# Maven Central into a cache outside the repository on first use.
kafka: kafka-cmd
	$(KAFKA_CMD) -dir $(CURDIR)/_build/kafka $(KAFKA_ARGS)

kafka-cmd: $(KAFKA_CMD)

$(KAFKA_CMD): $(BENCH_SOURCES)
	cd testbench && go build -o $(CURDIR)/$(KAFKA_CMD) ./cmd/kafka

demo: build devbroker $(if $(filter real,$(KAFKA)),kafka-cmd)
	@KAFKA=$(KAFKA) bash scripts/run.sh demo

# What the tests need besides Go, make and bash: promtool (Debian's
# prometheus package) for the unit tests' dashboard check, which skips without
# it; a JDK (java, keytool), mvn, kcat and an MIT KDC (krb5kdc, kdb5_util,
# kadmin.local: the secure cluster's Kerberos listener) for e2e's real Kafka,
# whose tests fail without them. scripts/deps.sh installs the missing ones with apt-get when it
# can (root, or sudo without a password), else stops naming the command to run.
# NO_DEPS=1 skips it in test, unit and e2e.
UNIT_TOOLS := promtool
E2E_TOOLS  := java keytool mvn kcat krb5kdc kdb5_util kadmin.local
DEPS       := $(if $(NO_DEPS),,deps)

deps:
	@bash scripts/deps.sh $(UNIT_TOOLS) $(E2E_TOOLS)

deps-unit:
	@bash scripts/deps.sh $(UNIT_TOOLS)

deps-e2e:
	@bash scripts/deps.sh $(E2E_TOOLS)

# Both suites run even when the first fails, so one run shows every failure.
# Everything is installed (or the command named) before either starts.
test: $(DEPS)
	@rc=0; \
	$(MAKE) --no-print-directory NO_DEPS=1 unit || rc=1; \
	$(MAKE) --no-print-directory NO_DEPS=1 e2e || rc=1; \
	exit $$rc

unit: $(DEPS:%=%-unit)
	go test -race -count=1 ./...
	cd testbench && go test -race -count=1 ./...

# The e2e suite (e2e/, its own module) builds on the collector and the
# devbroker binaries, and finds them through these variables. Its real-Kafka
# tests need java, keytool and mvn (or a warm $$KAFKABATCHER_CACHE) and kcat;
# they fail, never skip, when those are missing (deps-e2e installs them).
e2e: $(DEPS:%=%-e2e) build devbroker telemetrygen
	cd e2e && OTELCOL_BIN=$(CURDIR)/$(COLLECTOR) DEVBROKER_BIN=$(CURDIR)/$(DEVBROKER) KBQ_BIN=$(CURDIR)/$(KBQ) TELEMETRYGEN_BIN=$(TELEMETRYGEN) \
		go test -tags e2e -count=1 -timeout 40m $(E2E_ARGS) ./...

# The idempotent leader- and follower-kill tests on 3 real Kafka nodes,
# STRESS_COUNT times under each producer.timeout of STRESS_TIMEOUTS
# ("default": the exporter's own), one `go test` per run so a failure stops
# nothing; each run's output in _build/stress/<test>-<timeout>-<i>.log, then
# a table of duplicates, records out of order and lost per run (the tests'
# "ledger:" line). Fails when a run failed. One run takes 1-2 minutes;
# the tools it needs as make e2e (deps-e2e, NO_DEPS=1 skips it).
STRESS_COUNT    ?= 10
STRESS_TIMEOUTS ?= default 3s
STRESS_TESTS    ?= TestRealKafkaLeaderKilled/idempotent TestRealKafkaFollowerKilled

.PHONY: e2e-stress
e2e-stress: $(DEPS:%=%-e2e) build devbroker telemetrygen
	@mkdir -p _build/stress; rm -f _build/stress/*.log _build/stress/results.txt; \
	for test in $(STRESS_TESTS); do \
		run="^$$(echo $$test | sed 's|/|$$/^|')$$"; \
		for to in $(STRESS_TIMEOUTS); do \
			i=1; while [ $$i -le $(STRESS_COUNT) ]; do \
				log=$(CURDIR)/_build/stress/$$(echo $$test | tr / -)-$$to-$$i.log; \
				echo "e2e-stress: $$test producer.timeout=$$to run $$i of $(STRESS_COUNT): $$log"; \
				if (cd e2e && KAFKABATCHER_E2E_PRODUCER_TIMEOUT=$$to OTELCOL_BIN=$(CURDIR)/$(COLLECTOR) \
					DEVBROKER_BIN=$(CURDIR)/$(DEVBROKER) KBQ_BIN=$(CURDIR)/$(KBQ) TELEMETRYGEN_BIN=$(TELEMETRYGEN) \
					go test -tags e2e -count=1 -timeout 15m -v -run "$$run" ./...) >$$log 2>&1; \
				then result=pass; else result=FAIL; fi; \
				grep -m1 -o 'ledger: .*' $$log | awk -v t=$$test -v to=$$to -v i=$$i -v r=$$result \
					'{ for (f = 2; f <= NF; f++) { split($$f, kv, "="); v[kv[1]] = kv[2] } } \
					END { d = "duplicates"; o = "out_of_order"; l = "lost"; \
						printf "%s %s %s %s %s %s %s\n", t, to, i, (d in v ? v[d] : "-"), (o in v ? v[o] : "-"), (l in v ? v[l] : "-"), r }' \
					>>_build/stress/results.txt; \
				tail -n1 _build/stress/results.txt; \
				i=$$((i + 1)); \
			done; \
		done; \
	done; \
	echo; (echo "test timeout run duplicates out_of_order lost result"; cat _build/stress/results.txt) | \
		awk '{ printf "%-38s %-8s %4s %10s %12s %5s  %s\n", $$1, $$2, $$3, $$4, $$5, $$6, $$7 }'; \
	! grep -q ' FAIL$$' _build/stress/results.txt

bench:
	@if [ -f bench/go.mod ]; then \
		cd bench && go run .; \
	else \
		echo "bench/ not present yet: no benchmark to run"; \
	fi

generate:
	bash internal/tools/generate.sh

lint:
	go vet ./...
	cd testbench && go vet ./...
	cd bench && go vet ./...
	cd e2e && go vet -tags e2e ./...
	@unformatted="$$(gofmt -l $$(git ls-files '*.go'))"; \
		if [ -n "$$unformatted" ]; then echo "not gofmt'ed:"; echo "$$unformatted"; exit 1; fi
	@if [ -x $(BIN)/golangci-lint ]; then $(BIN)/golangci-lint run ./...; \
		else echo "golangci-lint not installed (make golangci-lint); ran go vet and gofmt only"; fi

golangci-lint: $(BIN)/golangci-lint

$(BIN)/golangci-lint:
	GOBIN=$(BIN) go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT)

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf _build
