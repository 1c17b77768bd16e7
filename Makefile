# Thin wrapper over Meson + Ninja. Each target first makes sure the Debian
# packages it needs are present (scripts/deps.sh installs only what is missing).
#
#   make          build everything; the CLI lands at build/coalition
#   make test     unit + integration tests under ASan/UBSan, then short fuzz runs
#   make demo     run the main job: a live local coalition for DEMO_FOR
#                 seconds (default 30; DEMO_FOR= runs until Ctrl-C)
#   make bench    build optimised and print the benchmark figures; also
#                 installs the bench-only packages (etcd to compare with)
#   make fuzz-long  every fuzz target for FUZZ_SECONDS each (default 3600
#                 here), then minimise; FUZZ_TARGETS="a b", FUZZ_JOBS=N,
#                 FUZZ_COMMIT=1 (docs/testing.md)
#   make sim      the deterministic simulator over seeds 1..SEEDS (default
#                 500) with every fault; SIM_ARGS adds options
#   make chaos    leader kills under load against real members, KILLS per
#                 committee size in MEMBERS (default 20, "3 5"), on the
#                 sanitized build unless CHAOS_BUILD=build; CHAOS_ARGS adds
#                 options (--netns, --enospc: root)
#   make install  build, then install under PREFIX (default /usr/local),
#                 staged under DESTDIR when given: libraries (shared and
#                 static), headers, pkg-config files, the two programs,
#                 man pages, the systemd unit, bash completion
#                 (docs/install.md)

BUILD      ?= build
TESTBUILD  ?= build-test
FUZZBUILD  ?= build-fuzz
MESON      ?= meson
FUZZ_SECONDS ?= 5
DEMO_FOR   ?= 30
SEEDS      ?= 500
SIM_ARGS   ?=
KILLS      ?= 20
MEMBERS    ?= 3 5
CHAOS_BUILD ?= $(TESTBUILD)
CHAOS_ARGS ?=
PREFIX     ?= /usr/local
DESTDIR    ?=

.PHONY: all deps test-deps test unit fuzz fuzz-long demo bench sim chaos install clean

all: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

deps:
	@sh scripts/deps.sh

$(BUILD)/build.ninja:
	$(MESON) setup $(BUILD) --buildtype=release -Db_ndebug=false

$(TESTBUILD)/build.ninja:
	$(MESON) setup $(TESTBUILD) --buildtype=debug -Doptimization=1 \
		-Db_sanitize=address,undefined -Db_lundef=false -Dsanitized=true

$(FUZZBUILD)/build.ninja:
	CC=clang $(MESON) setup $(FUZZBUILD) --buildtype=debug -Dfuzz=enabled \
		-Db_lundef=false -Dtests=false

# The tests also drive a headless chromium (the dashboard test).
test-deps:
	@sh scripts/deps.sh browser

test: test-deps $(TESTBUILD)/build.ninja $(FUZZBUILD)/build.ninja
	ninja -C $(TESTBUILD)
	$(MESON) test -C $(TESTBUILD) --print-errorlogs --num-processes 4
	ninja -C $(FUZZBUILD)
	FUZZ_SECONDS=$(FUZZ_SECONDS) sh fuzz/run.sh $(FUZZBUILD)

# FUZZ_SECONDS defaults to 5 for make test; a long run means an hour
# unless it was given on the command line or in the environment.
fuzz-long: deps $(FUZZBUILD)/build.ninja
	ninja -C $(FUZZBUILD)
	FUZZ_SECONDS=$(if $(filter file,$(origin FUZZ_SECONDS)),3600,$(FUZZ_SECONDS)) \
		sh fuzz/long.sh $(FUZZBUILD)

demo: all
	$(BUILD)/coalition demo $(if $(DEMO_FOR),--for $(DEMO_FOR))

sim: deps $(TESTBUILD)/build.ninja
	ninja -C $(TESTBUILD) tests/sim/sim
	$(TESTBUILD)/tests/sim/sim --seeds 1..$(SEEDS) $(SIM_ARGS)

chaos: deps $(CHAOS_BUILD)/build.ninja
	KILLS=$(KILLS) MEMBERS="$(MEMBERS)" CHAOS_ARGS="$(CHAOS_ARGS)" \
		sh scripts/chaos.sh $(CHAOS_BUILD)

# The bench packages first, so a fresh build finds libnghttp2 (bench_etcd);
# a build configured before they were installed is reconfigured once.
bench:
	@sh scripts/deps.sh bench
	$(MAKE) all
	@if pkg-config --exists libnghttp2 && [ ! -x $(BUILD)/bench/bench_etcd ]; then \
		$(MESON) setup --reconfigure $(BUILD) && ninja -C $(BUILD); fi
	sh bench/run.sh $(BUILD)

# The prefix is a build option (the unit file and pkg-config files name
# it), so it is set before building; DESTDIR only stages the files.
install: deps $(BUILD)/build.ninja
	$(MESON) configure $(BUILD) -Dprefix=$(PREFIX)
	ninja -C $(BUILD)
	$(MESON) install -C $(BUILD) --no-rebuild \
		$(if $(DESTDIR),--destdir "$(abspath $(DESTDIR))")

clean:
	rm -rf $(BUILD) $(TESTBUILD) $(FUZZBUILD)
