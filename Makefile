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
PEER_RUNS       ?= 100

.PHONY: bench-go all test fmt-check vet staticcheck mocks-check unit bench bench-peer latency fuzz tools clean integration soak scale

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

## integration: the scenarios of integration/ with real node processes
## under real faults (build tag integration: failover by SIGTERM, SIGKILL
## and SIGSTOP, rolling restart, exclusive takeover, etcd leader loss in a
## 3-member cluster, etcd outage and partition, a black-holed link, bad
## input in etcd), with its in-process etcd fault tests (a watcher cut off
## from etcd through a compaction among them). Figures are printed per
## scenario (-v). ETCD=system runs the process scenarios (TestProc*)
## against Debian's etcd (package etcd-server, installed when missing):
## one process, or three for the leader loss.
## INTEGRATION_FLAGS=-race adds the race detector (binaries included).
integration:
	@if [ "$(ETCD)" = system ] && ! command -v etcd >/dev/null 2>&1; then \
		echo "installing Debian's etcd-server"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server >/dev/null; \
	fi
	$(GO) vet -tags integration ./integration/
	ETCD=$(ETCD) $(GO) test -tags integration -count=1 -v -timeout 15m $(if $(filter system,$(ETCD)),-run '^TestProc') \
		$(INTEGRATION_FLAGS) ./integration/

## soak: node processes under call load and a seeded random schedule of
## faults (kill -9, SIGTERM, SIGSTOP, etcd link cut, etcd restart) for
## SOAK_DURATION (default 5m), with invariant checks after each cycle and a
## summary; SOAK_SEED=<seed> replays a schedule, SOAK_NODES sets the
## number of nodes (default 50).
soak:
	SOAK_DURATION=$(or $(SOAK_DURATION),5m) SOAK_SEED=$(SOAK_SEED) SOAK_NODES=$(SOAK_NODES) \
		$(GO) test -tags integration -count=1 -v -run '^TestProcSoak$$' -timeout 3h ./integration/

## bench: every benchmark of the module, the comparison module, then the
## latency harness.
bench: bench-go latency

bench-go:
	$(GO) test -run '^$$' -bench . -benchmem -count $(BENCH_COUNT) -benchtime $(BENCH_TIME) ./... | tee bench.txt
	cd integration/bench && $(GO) test -run '^$$' -bench . -benchmem -count $(BENCH_COUNT) -benchtime $(BENCH_TIME) ./... | tee ../../bench-compare.txt

## bench-peer: the client manager side by side with etcd's naming
## resolver and grpc round_robin (plain and with a retry policy), in
## integration/bench: same embedded etcd, servers and call load, PEER_RUNS
## interleaved repetitions (default 100); prints the table of
## docs/benchmarks.md (p50/p90/p99/max, failed calls, ours ÷ peer).
bench-peer:
	cd integration/bench && PEER_RUNS=$(PEER_RUNS) $(GO) test -count=1 -run '^TestPeerTable$$' -v -timeout 30m . | grep -v -e '^=== RUN' -e '^--- PASS' -e '^PASS$$' -e '^ok '

## latency: detection and recovery latencies (p50/p90/p99) on embedded etcd.
latency:
	$(GO) run ./cmd/cmlatency -n $(LATENCY_RUNS)

## scale: the scale measurements of docs/benchmarks.md (cmd/cmscale):
## New → all online at 1,000–16,000 nodes, 1,000 nodes with 100 black
## holes, a list of 1,000,000 sessions, on etcd in a child process. Prints
## one table and fails when a figure misses its target. About 6 minutes
## (the black holes take 3 × 30 s); SCALE_FLAGS=-run registry picks one.
scale:
	$(GO) run ./cmd/cmscale $(SCALE_FLAGS)

## fuzz: a short run of every fuzz target.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./session

clean:
	rm -f bench.txt bench-compare.txt

.PHONY: demo e2e

## demo: the whole cluster through its fault timeline (cmctl demo).
demo:
	$(GO) run ./cmd/cmctl demo

## e2e: the demo's status page in a real browser, not part of make test.
## Installs Debian's chromium if missing, runs the demo's cluster, checks
## the page's node rows, a killed node's row turning red and a frozen
## node's breaker, and saves a screenshot as docs/img/status-page.png.
e2e:
	@if ! command -v chromium >/dev/null 2>&1; then \
		sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		echo "installing Debian's chromium"; \
		$$sudo apt-get update -qq && \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core; \
	fi
	$(GO) test -tags e2e -count=1 -run '^TestE2E' -v ./cmd/cmctl
