# libjail: two set-up commands for a fresh machine, `make demo` and `make test`.
# Both install what they need (idempotently, with apt-get) and then run. Tests that need root run
# for real when invoked as root.

SHELL := /bin/bash
GO ?= go
BUILD := _build
# Debian packages: libseccomp for the seccomp package (cgo), busybox-static for test and demo rootfs.
APT_PKGS := gcc pkg-config libseccomp-dev busybox-static

.PHONY: deps test unit vet fmt-check demo demo-rootfs clean test-vm bench bench-profile fuzz

deps:
	@missing=""; for p in $(APT_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
	@$(GO) mod download

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

# Every test: unit tests without root everywhere, integration tests as root against the real kernel.
# The soak test (1000 create/destroy cycles) runs in the first pass; the race detector pass is
# -short, which skips it.
test: deps fmt-check vet
	$(GO) test -count=1 -timeout 30m ./...
	$(GO) test -race -short -count=1 -timeout 30m ./...

demo: deps demo-rootfs
	$(GO) build -o $(BUILD)/run ./examples/run
	$(GO) build -o $(BUILD)/pod ./examples/pod
	$(BUILD)/run --bundle $(BUILD)/demo-bundle --id libjail-demo
	@echo; echo "--- a pod of two containers (examples/pod):"
	$(BUILD)/pod --rootfs $(BUILD)/demo-bundle/rootfs --id libjail-demo-pod

# A small busybox rootfs and an OCI config for the demo.
demo-rootfs:
	$(GO) run ./internal/fixtures/cmd/mkbundle -busybox -out $(BUILD)/demo-bundle -- /bin/sh -c 'echo "hello from $$(hostname), pid $$$$ in a libjail container"; ls /; cat /proc/self/uid_map 2>/dev/null | head -1'

# The root integration suite again in a throwaway pure cgroup-v2 guest (qemu; internal/vmtest).
# Optional: PKGS="./cgroups ./devices ." RUN='regex'
test-vm: deps
	bash internal/vmtest/run.sh $(if $(RUN),-run '$(RUN)') $(PKGS)

# Benchmarks against runc and crun, as root (docs/benchmarks.md); installs runc and crun with apt.
bench: deps
	bash internal/bench/run.sh

# Where the in-process lifecycle's time goes (pprof; with perf, the child's steps).
bench-profile: deps
	bash internal/bench/profile.sh

# Every fuzz target for a bounded time each (FUZZTIME=60s by default).
FUZZTIME ?= 60s
FUZZ_TARGETS := ./syncpipe:FuzzDecode ./mounts:FuzzPlan ./namespaces:FuzzPlan ./seccomp:FuzzCompile \
	./devices:FuzzPlanRules ./devices:FuzzPlanNodes ./devices:FuzzParseList ./cgroups:FuzzPlan \
	./cgroups:FuzzParseHierarchies ./capabilities:FuzzPlan .:FuzzNew .:FuzzParseState .:FuzzReadPodRecord \
	.:FuzzSysctlPath .:FuzzParseCPUList
fuzz: deps
	FUZZTIME=$(FUZZTIME) GO=$(GO) bash internal/fuzz/run.sh $(FUZZ_TARGETS)

clean:
	rm -rf $(BUILD)
