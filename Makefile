# mirrord — see README.md. `make run` mirrors this host's package sources (via
# `mirrord init`) plus the bundled examples and serves them; `make test` runs
# every test (CI runs it through .ci/run).
GO       ?= go
BIN      := bin/mirrord
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
CONFIG   ?= examples/mirrord.yaml
STATICCHECK_VERSION ?= v0.8.2
# Package version: deb and rpm both accept it (no '-', starts with a digit).
PKG_VERSION ?= 0.1.$(shell git rev-list --count HEAD 2>/dev/null || echo 0)
NFPM     ?= $(shell .ci/nfpm.sh)

.PHONY: build run run-example test test-short bench ui-shots fuzz lint fmt clean deb rpm package-bin

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

# A screenshot of every web UI page (real binary, real chromium, fixture
# upstreams), written to bench/out/ui/ for people to look at.
ui-shots:
	MIRRORD_UI_SHOTS=$(CURDIR)/bench/out/ui $(GO) test -count=1 -run 'TestWebUI$$' ./test/e2e/
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

# Packages (deploy/nfpm.yaml): binary, systemd unit, default config, and
# maintainer scripts that create the mirrord user.
package-bin:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w -X main.version=$(PKG_VERSION)' -o dist/build/mirrord ./cmd/mirrord

deb: package-bin
	VERSION=$(PKG_VERSION) $(NFPM) package --config deploy/nfpm.yaml --packager deb --target dist/mirrord_$(PKG_VERSION)_amd64.deb

rpm: package-bin
	VERSION=$(PKG_VERSION) $(NFPM) package --config deploy/nfpm.yaml --packager rpm --target dist/mirrord-$(PKG_VERSION).x86_64.rpm

clean:
	rm -rf bin dist
