# clientmanager — build, test and measure.
GO              ?= go
STATICCHECK_VER ?= v0.6.1
GOBIN           ?= $(shell $(GO) env GOPATH)/bin
STATICCHECK     := $(GOBIN)/staticcheck
TEST_TIMEOUT    ?= 9m
FUZZTIME        ?= 10s
BENCH_COUNT     ?= 6
BENCH_TIME      ?= 500ms

.PHONY: all test fmt-check vet staticcheck unit bench fuzz tools clean

all: test

## test: gofmt check, go vet, staticcheck and the race-enabled unit tests.
test: fmt-check vet staticcheck unit

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

unit:
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...

## bench: every benchmark of the module, then the comparison module.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count $(BENCH_COUNT) -benchtime $(BENCH_TIME) ./... | tee bench.txt
	cd integration/bench && $(GO) test -run '^$$' -bench . -benchmem -count $(BENCH_COUNT) -benchtime $(BENCH_TIME) ./... | tee ../../bench-compare.txt

## fuzz: a short run of every fuzz target.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./session

clean:
	rm -f bench.txt bench-compare.txt
