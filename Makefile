# mirrord — see README.md. `make run` mirrors this host's package sources (via
# `mirrord init`) plus the bundled examples and serves them; `make test` runs
# every test (CI runs it through .ci/run).
GO       ?= go
BIN      := bin/mirrord
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
CONFIG   ?= examples/mirrord.yaml
STATICCHECK_VERSION ?= v0.8.2

.PHONY: build run run-example test test-short bench ui-shots lint fmt clean

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/mirrord

# The main job: mirror this host's own package sources (filtered to a few
# packages, via `mirrord init`) plus the bundled file and git examples into a
# snapshot, promote it to "production" and serve it. See examples/run.sh.
run: build
	BIN=$(BIN) bash examples/run.sh

# The same with only the bundled examples (no network needed).
run-example: build
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

lint:
	@test -z "$$(gofmt -l . | tee /dev/stderr)" || (echo "gofmt: files above need formatting"; exit 1)
	$(GO) vet ./...
	@command -v staticcheck >/dev/null || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	PATH="$$PATH:$$($(GO) env GOPATH)/bin" staticcheck ./...

fmt:
	gofmt -w .

clean:
	rm -rf bin
