# kafkabatcher: build, run and test. `make help` lists the targets.

export GOFLAGS := -buildvcs=false

OCB_VERSION    := v0.165.0
GOLANGCI_LINT  := v2.15.0
BIN            := $(CURDIR)/bin
OCB            := $(BIN)/builder
COLLECTOR      := _build/otelcol-kafkabatcher
DEVBROKER      := _build/devbroker
GO_SOURCES     := $(shell find . -name '*.go' -not -path './_build/*' -not -path './bench/*' -not -path './internal/tools/*') go.mod go.sum

.PHONY: help build devbroker run demo test unit e2e bench generate lint golangci-lint fmt clean

help:
	@echo "make run       build, start the devbroker and the collector on testdata/demo.yaml; Ctrl-C stops both"
	@echo "make demo      the same on the bundled sample log; exits by itself and prints what reached Kafka"
	@echo "make test      all tests: unit tests with -race, then the end-to-end suite"
	@echo "make unit      unit tests only (go test -race -count=1)"
	@echo "make e2e       end-to-end tests of the ocb-built collector against the devbroker"
	@echo "make bench     side-by-side benchmark (bench/)"
	@echo "make build     the collector with ocb $(OCB_VERSION): $(COLLECTOR)"
	@echo "make generate  regenerate internal/metadata etc. from metadata.yaml (mdatagen)"
	@echo "make lint      go vet, gofmt, and golangci-lint when bin/golangci-lint exists (make golangci-lint)"

$(OCB):
	GOBIN=$(BIN) go install go.opentelemetry.io/collector/cmd/builder@$(OCB_VERSION)

build: $(COLLECTOR)

$(COLLECTOR): $(OCB) builder-config.yaml $(GO_SOURCES)
	$(OCB) --config builder-config.yaml

devbroker: $(DEVBROKER)

$(DEVBROKER): $(GO_SOURCES)
	go build -o $(DEVBROKER) ./cmd/devbroker

run: build devbroker
	@bash scripts/run.sh run

demo: build devbroker
	@bash scripts/run.sh demo

# Both suites run even when the first fails, so one run shows every failure.
test:
	@rc=0; \
	$(MAKE) --no-print-directory unit || rc=1; \
	$(MAKE) --no-print-directory e2e || rc=1; \
	exit $$rc

unit:
	go test -race -count=1 $$(go list ./... | grep -v -e '/e2e$$' -e '/e2e/')

# The e2e suite builds on the collector and the devbroker binaries, and finds
# them through these variables.
e2e:
	@if [ -d e2e ]; then \
		$(MAKE) --no-print-directory build devbroker && \
		OTELCOL_BIN=$(CURDIR)/$(COLLECTOR) DEVBROKER_BIN=$(CURDIR)/$(DEVBROKER) \
			go test -tags e2e -count=1 ./e2e/...; \
	else \
		echo "e2e/ not present yet: no end-to-end tests to run"; \
	fi

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
