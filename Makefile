# hermes-gitops — see README.md. `make demo` runs the main job on the bundled example,
# `make test` runs every test against real sshd, Docker, git and sops.
GO       ?= go
BIN      := bin
EXAMPLE  := tenants.example
PKGS     := ./...
# The fuzz targets run for a few seconds each in `make test`; longer with FUZZTIME=1m.
FUZZTIME ?= 5s
FUZZ     := ./schema:FuzzLoadTenant ./internal/shellquote:FuzzJoin ./reconcile/agent:FuzzEnvRoundTrip

export SOPS_AGE_KEY_FILE ?= $(CURDIR)/$(EXAMPLE)/demo.agekey

.PHONY: all build test unit fuzz demo demo-clean bench lint image

all: build

build:
	$(GO) build -o $(BIN)/hermesctl ./cmd/hermesctl
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags='-s -w' -o $(BIN)/hermes-agent-linux-amd64 ./cmd/hermes-agent
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -trimpath -ldflags='-s -w' -o $(BIN)/hermes-agent-linux-arm64 ./cmd/hermes-agent

test: unit fuzz

unit:
	$(GO) test -race -timeout 30m $(PKGS)

fuzz:
	@for t in $(FUZZ); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$pkg $$name ($(FUZZTIME))"; \
		$(GO) test -run='^$$' -fuzz="^$$name\$$" -fuzztime=$(FUZZTIME) $$pkg || exit 1; \
	done

# The stand-in runner image (the real Hermes runner images are private).
image:
	$(GO) run ./internal/standin/build

demo: build image
	@echo "== validate the example desired state"
	$(BIN)/hermesctl validate $(EXAMPLE)
	@echo "== plan: what would change on the local worker"
	$(BIN)/hermesctl plan --repo $(EXAMPLE)
	@echo "== apply"
	$(BIN)/hermesctl apply --repo $(EXAMPLE) --yes
	@echo "== the running tenants"
	docker ps --filter name=^astral-tenant- --filter name=^spawn-tenant- --format 'table {{.Names}}\t{{.Status}}\t{{.Image}}'
	@echo "== verify: knowledge base, isolation, capabilities, env inside every container"
	$(BIN)/hermesctl verify --all --repo $(EXAMPLE)
	@echo "== a second plan: nothing to do"
	$(BIN)/hermesctl plan --repo $(EXAMPLE) --detailed-exitcode

# Remove the demo's containers; their data is kept under /var/tmp/hermes-gitops-demo.
demo-clean:
	docker ps -aq --filter name=^astral-tenant- --filter name=^spawn-tenant- | xargs -r docker rm -f

bench:
	$(GO) test -run='^$$' -bench=. -benchtime=1x -timeout 30m $(PKGS)

STATICCHECK ?= $(shell command -v staticcheck || echo $(shell $(GO) env GOPATH)/bin/staticcheck)

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1)
	$(GO) vet $(PKGS)
	@if [ -x "$(STATICCHECK)" ]; then echo "staticcheck $(PKGS)"; $(STATICCHECK) $(PKGS); \
	else echo "staticcheck not installed (go install honnef.co/go/tools/cmd/staticcheck@v0.8.2): skipped"; fi
