# mirrord — see README.md. `make run` mirrors this host's package sources (via
# `mirrord init`) plus the bundled examples and serves them; `make test` runs
# every test (CI runs it through .ci/run).
GO       ?= go
BIN      := bin/mirrord
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
CONFIG   ?= examples/mirrord.yaml
STATICCHECK_VERSION ?= v0.8.2

.PHONY: build run run-example test test-short bench fuzz lint fmt clean

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/mirrord

# The main job: mirror this host's own package sources (filtered to a few
# packages, via `mirrord init`) plus the bundled file and git examples into a
# snapshot, promote it to "production" and serve it. See examples/run.sh.
run: build
	chmod 600 examples/token.example   # serve refuses a token file others can read; git keeps 0644
	BIN=$(BIN) bash examples/run.sh

# The same with only the bundled examples (no network needed).
run-example: build
	chmod 600 examples/token.example   # serve refuses a token file others can read; git keeps 0644
	ID=$$($(BIN) --config $(CONFIG) sync) && $(BIN) --config $(CONFIG) snapshot promote $$ID production
	$(BIN) --config $(CONFIG) snapshot list
	$(BIN) --config $(CONFIG) serve

test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...

test-short:
	$(GO) test -short -count=1 ./...

bench: build
	bash bench/run.sh

# Run every native fuzz target (func FuzzXxx in *_fuzz_test.go) for
# FUZZTIME each, one after another; new findings land in the package's
# testdata/fuzz/FuzzXxx/, which `make test` replays. Prints execs per target.
FUZZTIME ?= 30s
fuzz:
	@set -e; log=$$(mktemp); trap 'rm -f $$log' EXIT; \
	for file in $$(grep -l '^func Fuzz' $$(find internal -name '*_fuzz_test.go') | sort); do \
	  pkg=./$$(dirname $$file); \
	  for t in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$file); do \
	    echo "== $$pkg $$t ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5s $$pkg 2>&1 | tee $$log | grep -v '^fuzz: elapsed' || true; \
	    grep -q '^ok' $$log || { echo "FAIL: $$pkg $$t (the failing input is in $$pkg/testdata/fuzz/$$t/)"; exit 1; }; \
	    echo "$$pkg $$t $$(grep -o 'execs: [0-9]*' $$log | tail -1)" >> $$log.sum; \
	  done; \
	done; echo; echo "== execs per target"; cat $$log.sum; rm -f $$log.sum

lint:
	@test -z "$$(gofmt -l . | tee /dev/stderr)" || (echo "gofmt: files above need formatting"; exit 1)
	$(GO) vet ./...
	@command -v staticcheck >/dev/null || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	PATH="$$PATH:$$($(GO) env GOPATH)/bin" staticcheck ./...

fmt:
	gofmt -w .

clean:
	rm -rf bin
