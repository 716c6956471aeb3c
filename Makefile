# choria-broker: `make dev` runs a development broker, `make test` runs every test.
GO          ?= go
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME    ?= 20s
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo development)
# The commit too: go stamps none in a git worktree or with -buildvcs=false.
COMMIT      ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS     := -X github.com/choria-broker/choria-broker/internal/buildinfo.version=$(VERSION) \
               -X github.com/choria-broker/choria-broker/internal/buildinfo.commit=$(COMMIT)

.PHONY: build dev test lint unit fuzz

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/choria-broker ./cmd/choria-broker

dev: build
	bin/choria-broker dev

# Every test: formatting, vet, staticcheck, the suite with the race
# detector and without, then each fuzz target for FUZZTIME.
test: lint unit fuzz

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	cd dist/deb && $(GO) vet ./... && $(GO) run $(STATICCHECK) ./...

# The race detector slows the fleet tests (thousands of TLS connections)
# tenfold: they run in the second, full-size pass without it.
unit:
	$(GO) test -race -short -count=1 -timeout 20m ./...
	$(GO) test -count=1 -timeout 20m ./...
	cd dist/deb && $(GO) test -count=1 ./...

fuzz:
	scripts/fuzz $(FUZZTIME)

# The Debian package (bin/choria-broker_<version>_<arch>.deb): a static linux
# build, dist/'s service files and default broker.conf, packed by nfpm as a
# library (dist/deb, a module of its own). DEB_DIR chooses the directory.
DEB_DIR ?= bin
.PHONY: deb
deb:
	GOOS=linux CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(DEB_DIR)/deb/choria-broker ./cmd/choria-broker
	cd dist/deb && $(GO) run . -root $(CURDIR) -binary $(abspath $(DEB_DIR))/deb/choria-broker \
	  -version "$(VERSION)" -arch "$$($(GO) env GOARCH)" -out $(abspath $(DEB_DIR))
