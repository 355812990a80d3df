# clientmanager — build, test and measure.
SHELL           := /bin/bash
.SHELLFLAGS     := -o pipefail -c
GO              ?= go
STATICCHECK_VER ?= v0.6.1
GOBIN           ?= $(shell $(GO) env GOPATH)/bin
STATICCHECK     := $(GOBIN)/staticcheck
TEST_TIMEOUT    ?= 9m
FUZZTIME        ?= 10s
BENCH_COUNT     ?= 6
BENCH_TIME      ?= 500ms
LATENCY_RUNS    ?= 100

.PHONY: bench-go all test fmt-check vet staticcheck mocks-check unit bench latency fuzz tools clean

all: test

## test: gofmt check, go vet, staticcheck, stale-mock check and the
## race-enabled tests of every package.
test: fmt-check vet staticcheck mocks-check unit

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "not gofmt'ed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...
	cd integration/bench && $(GO) vet ./...

tools: $(STATICCHECK)

$(STATICCHECK):
	$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VER)

staticcheck: tools
	$(STATICCHECK) ./...
	cd integration/bench && $(STATICCHECK) ./...

mocks-check:
	./scripts/check-mocks.sh

unit:
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...

## bench: every benchmark of the module, the comparison module, then the
## latency harness.
bench: bench-go latency

bench-go:
	$(GO) test -run '^$$' -bench . -benchmem -count $(BENCH_COUNT) -benchtime $(BENCH_TIME) ./... | tee bench.txt
	cd integration/bench && $(GO) test -run '^$$' -bench . -benchmem -count $(BENCH_COUNT) -benchtime $(BENCH_TIME) ./... | tee ../../bench-compare.txt

## latency: detection and recovery latencies (p50/p90/p99) on embedded etcd.
latency:
	$(GO) run ./cmd/cmlatency -n $(LATENCY_RUNS)

## fuzz: a short run of every fuzz target.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./session

clean:
	rm -f bench.txt bench-compare.txt
