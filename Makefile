# tcplane: `make` builds, `make demo` shows it working, `make test` runs everything.
# Every target installs what it needs on a fresh Debian machine (as root).

SHELL := /bin/bash
.DEFAULT_GOAL := build

# Debian packages the build, the lab and the tests use (checked with dpkg, installed if missing).
DEB_PACKAGES := clang llvm libbpf-dev libbpf1 bpftool iproute2 iperf3 nats-server util-linux procps ethtool iptables nftables
MULTIARCH := $(shell gcc -print-multiarch 2>/dev/null || echo $$(uname -m)-linux-gnu)

BPF_CFLAGS := -O2 -g -Wall -Werror -target bpf -mcpu=v3 -I/usr/include/$(MULTIARCH)
BPF_SRC := bpf/tcplane.bpf.c bpf/bench_empty.bpf.c
BPF_OBJ := $(patsubst bpf/%.c,build/%.o,$(BPF_SRC))
# Objects only tests load (a program the verifier must refuse, …), and tcplane 0.1's
# datapath as released (the upgrade test starts from it; built with 0.1's flags).
BPF_TEST_OBJ := $(patsubst test/fixtures/bpf/%.c,build/test/%.o,$(wildcard test/fixtures/bpf/*.bpf.c)) build/test/tcplane-0.1.bpf.o
BPF_01_CFLAGS := -O2 -g -Wall -Werror -target bpf -I/usr/include/$(MULTIARCH)
BPF_DEPS := $(wildcard bpf/include/*.h bpf/lib/*.h)
# bench/ imports the test packet builder, so it is part of the build too.
TS_SRC := $(shell find src agent bench -name '*.ts' -not -path 'src/gen/*' 2>/dev/null) test/helpers/packet.ts

.PHONY: build deps node debs npm bpf ts demo test typecheck-tests test-unit test-datapath test-e2e bench clean lab-down

build: deps bpf ts

deps: node debs npm

# Node.js 20 or newer must already be there: Debian 12 ships 18, which koffi and the
# NATS client do not support, so it is not installed from Debian.
NODE_MAJOR_MIN := 20
node:
	@v=$$(node --version 2>/dev/null | sed 's/^v//'); \
	if [ -z "$$v" ]; then echo "error: Node.js $(NODE_MAJOR_MIN) or newer is needed and 'node' is not on PATH" >&2; exit 1; fi; \
	if [ "$${v%%.*}" -lt $(NODE_MAJOR_MIN) ]; then echo "error: Node.js $(NODE_MAJOR_MIN) or newer is needed, found $$v" >&2; exit 1; fi

# Installs only what is missing; apt-get update runs only when something is.
debs:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "error: run as root to install:$$missing" >&2; exit 1; fi; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

npm: node_modules/.package-lock.json

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

bpf: $(BPF_OBJ) $(BPF_TEST_OBJ) src/gen/bpf-names.ts

build/%.bpf.o: bpf/%.bpf.c $(BPF_DEPS) | debs
	@mkdir -p build
	clang $(BPF_CFLAGS) -c $< -o $@

build/test/%.bpf.o: test/fixtures/bpf/%.bpf.c | debs
	@mkdir -p build/test
	clang $(BPF_CFLAGS) -c $< -o $@

build/test/tcplane-0.1.bpf.o: $(wildcard test/fixtures/bpf-0.1/*.c test/fixtures/bpf-0.1/*/*.h) | debs
	@mkdir -p build/test
	clang $(BPF_01_CFLAGS) -c test/fixtures/bpf-0.1/tcplane.bpf.c -o $@

# Map and program names for TypeScript, read from the object's BTF (not typed by hand).
src/gen/bpf-names.ts: build/tcplane.bpf.o scripts/gen-bpf-names.mjs
	@mkdir -p src/gen
	node scripts/gen-bpf-names.mjs $< > $@.tmp && mv $@.tmp $@

ts: dist/.built

dist/.built: $(TS_SRC) src/gen/bpf-names.ts tsconfig.json node_modules/.package-lock.json
	npx tsc -p tsconfig.json
	@touch $@

demo: build
	node dist/src/demo/demo.js

# Unit tests need nothing special; datapath tests need root (BPF_PROG_TEST_RUN);
# end-to-end tests build labs of network namespaces, one at a time.
# e2e files run one at a time: every lab uses the same tp-* names and addresses.
E2E := npx vitest run --project e2e --no-file-parallelism

test: build typecheck-tests
	npx vitest run --project unit --project datapath
	$(E2E)

# The tests are TypeScript too: type-check them (vitest only strips types).
typecheck-tests: node_modules/.package-lock.json src/gen/bpf-names.ts
	npx tsc -p tsconfig.test.json

test-unit: build
	npx vitest run --project unit

test-datapath: build
	npx vitest run --project datapath

test-e2e: build
	$(E2E)

# Per-packet cost (BPF_PROG_TEST_RUN; policy, then services), iperf3 throughput, change
# propagation, new connections per second through a ClusterIP (against kube-proxy's
# iptables and nftables modes), adding one service to 10,000 and map memory at 10,000
# services, each beside a baseline measured in the same run; about 15 minutes on 2 cores.
# Each runs alone too: node dist/bench/<name>.js (knobs in each file's header).
BENCHMARKS := datapath services-datapath events throughput propagation connrate service-add map-memory policy-resolver
bench: build
	@set -e; for b in $(BENCHMARKS); do echo "== bench/$$b.ts"; node dist/bench/$$b.js; done

lab-down: ts
	node bin/tcplane.js lab down

clean:
	rm -rf build dist src/gen
