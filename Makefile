# choria-broker: `make dev` runs a development broker, `make test` runs every test.
GO          ?= go
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME    ?= 20s
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo development)
LDFLAGS     := -X github.com/choria-broker/choria-broker/internal/buildinfo.version=$(VERSION)

.PHONY: build dev test lint unit fuzz

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/choria-broker ./cmd/choria-broker

dev: build
	bin/choria-broker dev

# Every test: formatting, vet, staticcheck, the race-enabled suite, then each
# fuzz target for FUZZTIME.
test: lint unit fuzz

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

unit:
	$(GO) test -race -count=1 -timeout 20m ./...

fuzz:
	scripts/fuzz $(FUZZTIME)
