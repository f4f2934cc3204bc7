# shadowfs — everything a fresh Debian machine (as root) needs is installed from here.
SHELL := /bin/bash
APT_PACKAGES := libfuse2 fuse libfuse-dev pkg-config build-essential python3 patch fio mergerfs attr chromium strace
STAMP := .state/stamps
TAP := node_modules/.bin/tap --disable-coverage --reporter=tap --timeout=300 --jobs=1

.PHONY: all deps build fuse-uring install uninstall test demo bench bench-replication bench-failover bench-cpu bench-scale clean

all: build

$(STAMP)/apt:
	@mkdir -p $(STAMP)
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@touch $@

node_modules/.package-lock.json: package-lock.json $(STAMP)/apt
	npm ci --no-audit --no-fund

# fuse-native, patched (native/fuse-native.patch) and built from source against Debian's libfuse.
node_modules/fuse-native/build/Release/fuse.node: node_modules/.package-lock.json native/fuse-native.patch scripts/build-fuse-native.sh
	bash scripts/build-fuse-native.sh

deps: $(STAMP)/apt node_modules/.package-lock.json node_modules/fuse-native/build/Release/fuse.node

build: deps
	rm -rf dist
	node_modules/.bin/tsc -p tsconfig.json

# FUSE over io_uring (Linux 6.14+ built with CONFIG_FUSE_IO_URING) is off until root allows it;
# mounts then take requests through a ring per CPU (`shadowfs mount --help`, --io-uring). The demo,
# the benchmarks and the suite run with it allowed; without it (older kernels) they use /dev/fuse.
fuse-uring:
	@p=/sys/module/fuse/parameters/enable_uring; \
	if [ -w $$p ] && [ "$$(cat $$p)" != Y ]; then echo Y > $$p && echo "allowed FUSE over io_uring ($$p)"; fi; \
	[ -e $$p ] || echo "this kernel has no FUSE over io_uring: requests go through /dev/fuse"

# Links (not copies: they run from this tree's dist/ and node_modules/) so that `shadowfs` is on PATH
# and mount(8) finds the helper. util-linux looks for helpers only in /sbin (also /sbin/fs.d,
# /sbin/fs): mount.fuse.shadowfs for `-t fuse.shadowfs` and fstab lines (without it, it would fall
# back to Debian's mount.fuse, which runs `shadowfs CONFIG MNT -o ...`, a form the CLI does not take),
# mount.shadowfs for `-t shadowfs`.
PREFIX ?= /usr/local
SBINDIR ?= /sbin
install: build
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(SBINDIR)
	ln -sfn $(CURDIR)/bin/shadowfs $(DESTDIR)$(PREFIX)/bin/shadowfs
	ln -sfn $(CURDIR)/bin/mount.shadowfs $(DESTDIR)$(SBINDIR)/mount.shadowfs
	ln -sfn $(CURDIR)/bin/mount.shadowfs $(DESTDIR)$(SBINDIR)/mount.fuse.shadowfs

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/shadowfs $(DESTDIR)$(SBINDIR)/mount.shadowfs $(DESTDIR)$(SBINDIR)/mount.fuse.shadowfs

# Mounts a demo volume under .state/demo, runs fio through it, shows which tier served what.
demo: build fuse-uring
	bash scripts/demo.sh

# fio through shadowfs, mergerfs and the raw directory side by side; ratios in one run. Then the
# `shadowfs bench` presets (fixtures/fio/presets) against the same shadowfs setup: in the same script
# rather than a target of their own because they reuse its mount and results directory and one run
# should give the whole picture; BENCH_PRESETS= skips them (bench/run-bench.sh lists the knobs).
bench: build fuse-uring
	bash bench/run-bench.sh

# Replication throughput vs cp, and foreground 4 KiB read IOPS during a full replication.
bench-replication: build
	bash bench/replication-bench.sh

# Failover under fio's verifying workload: latency ramp then EIO, a hang, recovery and resync, a
# shadow tier failing while failed over (bench/failover-bench.sh lists the knobs; FAILOVER_DOCS=1
# writes the table into docs/failover.md).
bench-failover: build
	bash bench/failover-bench.sh

# The daemons' CPU per 4 KiB random write, shadowfs against mergerfs, side by side (bench/cpu-per-write.sh).
bench-cpu: build fuse-uring
	bash bench/cpu-per-write.sh

# The daemon's RSS, its remount time and the metadata per extent with 1 M extents (bench/scale-bench.sh).
bench-scale: build
	bash bench/scale-bench.sh

# tap's Test class, rebuilt with the plugins package.json names ("tap": no TypeScript, no mock: the
# suite runs compiled JS). tap rebuilds it by itself on a mismatch, but only after it has chosen the
# loaders for that run: a fresh clone would load the dropped plugins' loaders in every test process.
node_modules/.tap-plugins: package.json node_modules/.package-lock.json
	node_modules/.bin/tap build >/dev/null
	@touch $@

test: build fuse-uring node_modules/.tap-plugins
	$(TAP) 'dist/test/**/*.test.js'

clean:
	rm -rf dist .state
