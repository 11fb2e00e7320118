# smtpspool: build, test, install. See README.md.
#   make            build build/smtpspool
#   make demo       build, pipe examples/demo-session.txt into it, list the queue
#   make check      unit tests, session transcripts (binary and in-process),
#                   command-line, crash, end-to-end and integration tests, the
#                   same unit, transcript and command-line tests under
#                   ASan+UBSan, valgrind, fuzz targets, man page lint
#                   (tests/README.md)
#   make quick      build, unit tests, in-process transcripts
#   make install    PREFIX=/usr/local DESTDIR=    (make uninstall: the same files go)
#   make integration   smtpspool under the real inetd, xinetd, systemd-socket-activate
#                   and tcpserver, make install/uninstall, bash completion
#   make fleet      HAProxy, two receivers and RabbitMQ on one machine (tests/README.md)
#   make package-check build the Debian package, lintian, install, check, purge

SHELL := /bin/bash

PREFIX ?= /usr/local
DESTDIR ?=
SBINDIR = $(PREFIX)/sbin
MANDIR = $(PREFIX)/share/man
DOCDIR = $(PREFIX)/share/doc/smtpspool
BASHCOMPDIR = $(PREFIX)/share/bash-completion/completions

CXX ?= g++
BUILD ?= build
sanitize ?= no

# Debug information: line tables and function names (-g1), what valgrind,
# the sanitizers and a backtrace print, at a fraction of -g's compile time
# (make check builds the tree twice). Debugging: make CXXFLAGS-debug=-g.
CXXFLAGS-debug ?= -g1
CXXFLAGS-sanitize-yes = -O1 $(CXXFLAGS-debug) -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
CXXFLAGS-sanitize-no = -O2 $(CXXFLAGS-debug)
LDFLAGS-sanitize-yes = -fsanitize=address,undefined

CXXFLAGS += -Wall -Wextra -Werror -Wpedantic -Wshadow $(CXXFLAGS-sanitize-$(sanitize))
# What the code needs, even when CXXFLAGS comes from the command line (the
# Debian build passes its own).
override CXXFLAGS += -std=c++20 -MMD -MP
LDFLAGS += $(LDFLAGS-sanitize-$(sanitize))
LIBS = -lboost_program_options -lrabbitmq -lssl -lcrypto -lcrypt -ldl
# The binary starts once per connection: with libstdc++, libgcc and Boost
# linked in, the dynamic loader has less to do and the greeting comes
# sooner (measured with bench/); so are librabbitmq (runq's amqp transport,
# without its TLS) and OpenSSL. glibc stays shared (getaddrinfo
# needs it). libcurl (the http transports) is not linked: runq loads it when
# it first posts (delivery/webhook_deliverer.cpp says why).
BIN_LIBS-sanitize-no = -static-libstdc++ -static-libgcc -Wl,-Bstatic -lboost_program_options -lrabbitmq -lssl -lcrypto \
	-Wl,-Bdynamic -lcrypt -ldl -pthread
BIN_LIBS-sanitize-yes = $(LIBS)

LIB_SRCS := $(filter-out src/cli/main.cpp,$(wildcard src/*/*.cpp))
LIB_OBJS := $(LIB_SRCS:src/%.cpp=$(BUILD)/obj/%.o)
TEST_SRCS := $(wildcard tests/unit/*.cpp)
TEST_OBJS := $(TEST_SRCS:tests/unit/%.cpp=$(BUILD)/obj/tests/%.o)

DEBIAN_PACKAGES = g++ clang libclang-rt-14-dev make libboost-program-options-dev nlohmann-json3-dev doctest-dev \
	libssl-dev openssl libnet-ssleay-perl python3 python3-aiosmtpd python3-dnslib exim4-daemon-light ucspi-tcp swaks curl git git-email libmailtools-perl msmtp mutt \
	mandoc groff-base systemd strace valgrind \
	libcurl4-openssl-dev librabbitmq-dev rabbitmq-server python3-pika haproxy opendkim opendkim-tools opendmarc rspamd python3-milter python3-dkim iproute2
# Installed without their recommendations: postgrey recommends an MTA, which
# would take exim4-daemon-light away.
DEBIAN_PACKAGES_BARE = postgrey

.PHONY: lint-layers all check demo install uninstall integration fleet package-check clean deps unit sessions cli crash e2e asan valgrind lint-man format fuzz fuzz-build bench

all: $(BUILD)/smtpspool

# The git revision for --version, in a header rewritten only when it changes.
# (Written while the Makefile is read, so that `make -q` stays truthful.)
REVISION := $(shell git -C $(CURDIR) describe --always --dirty 2>/dev/null)
HASH := \#
REVISION_H := $(shell mkdir -p $(BUILD) && echo '$(HASH)define SMTPSPOOL_REVISION "$(REVISION)"' >$(BUILD)/revision.h.tmp && \
	{ cmp -s $(BUILD)/revision.h.tmp $(BUILD)/revision.h || mv $(BUILD)/revision.h.tmp $(BUILD)/revision.h; }; \
	rm -f $(BUILD)/revision.h.tmp; echo $(BUILD)/revision.h)
$(BUILD)/obj/cli/config.o: $(REVISION_H)
$(BUILD)/obj/cli/config.o: override CXXFLAGS += -I$(BUILD)

$(BUILD)/obj/%.o: src/%.cpp
	@mkdir -p $(@D)
	$(CXX) $(CXXFLAGS) -Isrc -c $< -o $@

$(BUILD)/obj/tests/%.o: tests/unit/%.cpp
	@mkdir -p $(@D)
	$(CXX) $(CXXFLAGS) -Isrc -c $< -o $@

$(BUILD)/libsmtpspool.a: $(LIB_OBJS)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/smtpspool: $(BUILD)/obj/cli/main.o $(BUILD)/libsmtpspool.a
	$(CXX) $(LDFLAGS) -o $@ $^ $(BIN_LIBS-sanitize-$(sanitize))

$(BUILD)/unit-tests: $(TEST_OBJS) $(BUILD)/libsmtpspool.a
	$(CXX) $(LDFLAGS) -o $@ $^ $(LIBS)

-include $(LIB_OBJS:.o=.d) $(TEST_OBJS:.o=.d) $(BUILD)/obj/cli/main.d

# libFuzzer targets (clang), over the same sources: make fuzz FUZZ_SECONDS=N
# runs each for N seconds from its seed corpus (tests/fuzz/corpus/NAME) and
# keeps crashers in build-fuzz/crashes/NAME; make check runs each briefly.
FUZZ_TARGETS = session address data envelope client policy policy_service config sendmail proxy downgrade dns milter auth_results
FUZZ_SECONDS ?= 10
FUZZ_CXX = clang++
FUZZ_FLAGS = -std=c++20 -O1 -gline-tables-only -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -Isrc
FUZZ_OBJS := $(LIB_SRCS:src/%.cpp=build-fuzz/obj/%.o)

build-fuzz/obj/%.o: src/%.cpp
	@mkdir -p $(@D)
	$(FUZZ_CXX) $(FUZZ_FLAGS) -MMD -MP -c $< -o $@

build-fuzz/fuzz_%: tests/fuzz/fuzz_%.cpp $(FUZZ_OBJS)
	$(FUZZ_CXX) $(FUZZ_FLAGS) -fsanitize=fuzzer $< $(FUZZ_OBJS) -o $@ $(LIBS)

-include $(FUZZ_OBJS:.o=.d)
# The objects are shared by every target: kept, not removed as intermediates.
.SECONDARY: $(FUZZ_OBJS)

# The ASan+UBSan tier is built from the same clang objects as the fuzz
# targets: their coverage hooks (fuzzer-no-link) link without libFuzzer, the
# sanitizer runtime answering them, so the tree is compiled twice (g++, clang)
# and not three times. The binary, the unit tests and the in-process
# transcript runner land in $(ASAN_BUILD).
ASAN_BUILD = build-fuzz/asan
ASAN_TEST_OBJS := $(TEST_SRCS:tests/unit/%.cpp=build-fuzz/obj/tests/%.o)
build-fuzz/obj/tests/%.o: tests/unit/%.cpp
	@mkdir -p $(@D)
	$(FUZZ_CXX) $(FUZZ_FLAGS) -MMD -MP -c $< -o $@
build-fuzz/obj/cli/config.o: $(REVISION_H)
build-fuzz/obj/cli/config.o: FUZZ_FLAGS += -I$(BUILD)
$(ASAN_BUILD)/smtpspool: build-fuzz/obj/cli/main.o $(FUZZ_OBJS)
	@mkdir -p $(@D)
	$(FUZZ_CXX) $(FUZZ_FLAGS) -o $@ $^ $(LIBS)
$(ASAN_BUILD)/unit-tests: $(ASAN_TEST_OBJS) $(FUZZ_OBJS)
	@mkdir -p $(@D)
	$(FUZZ_CXX) $(FUZZ_FLAGS) -o $@ $^ $(LIBS)
$(ASAN_BUILD)/run-transcripts: build-fuzz/obj/tests/transcripts/main.o build-fuzz/obj/tests/transcript.o $(FUZZ_OBJS)
	@mkdir -p $(@D)
	$(FUZZ_CXX) $(FUZZ_FLAGS) -o $@ $^ $(LIBS)
-include $(ASAN_TEST_OBJS:.o=.d) build-fuzz/obj/tests/transcripts/main.d build-fuzz/obj/cli/main.d
.SECONDARY: $(ASAN_TEST_OBJS) build-fuzz/obj/tests/transcripts/main.o build-fuzz/obj/cli/main.o

.PHONY: asan-build
asan-build: $(ASAN_BUILD)/smtpspool $(ASAN_BUILD)/unit-tests $(ASAN_BUILD)/run-transcripts

fuzz-build: $(FUZZ_TARGETS:%=build-fuzz/fuzz_%)

fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p build-fuzz/corpus/$$t build-fuzz/crashes/$$t; \
	  echo "fuzz_$$t: $(FUZZ_SECONDS) s"; \
	  build-fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=1024 -print_final_stats=1 \
	    -artifact_prefix=build-fuzz/crashes/$$t/ build-fuzz/corpus/$$t tests/fuzz/corpus/$$t 2>&1 \
	    | grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|Done|==[0-9]+==|SUMMARY|invariant)|cov:.*DONE' ; \
	  test $${PIPESTATUS[0]} -eq 0 || exit 1; \
	done

# Installs the Debian packages the build and the tests need, when missing.
deps:
	@missing=""; bare=""; for p in $(DEBIAN_PACKAGES) $(DEBIAN_PACKAGES_BARE); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' && continue; \
	  case " $(DEBIAN_PACKAGES_BARE) " in *" $$p "*) bare="$$bare $$p";; *) missing="$$missing $$p";; esac; \
	done; \
	if [ -n "$$missing$$bare" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing$$bare"; \
	    apt-get update -qq || exit 1; \
	    if [ -n "$$missing" ]; then DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-remove $$missing >/dev/null || exit 1; fi; \
	    if [ -n "$$bare" ]; then DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-remove --no-install-recommends $$bare >/dev/null || exit 1; fi; \
	  else \
	    echo "missing Debian packages; run as root:"; \
	    echo "  apt-get install$$missing"; \
	    if [ -n "$$bare" ]; then echo "  apt-get install --no-install-recommends$$bare"; fi; \
	    exit 1; \
	  fi; \
	fi

unit: $(BUILD)/unit-tests
	cd tests/unit && ../../$(BUILD)/unit-tests

sessions: $(BUILD)/smtpspool
	python3 tests/sessions/run.py $(BUILD)/smtpspool tests/sessions

# The same transcripts in-process, against Session with the real policy and a
# temporary spool (tests/unit/transcript.hpp): milliseconds, and under ASan.
$(BUILD)/run-transcripts: $(BUILD)/obj/tests/transcripts/main.o $(BUILD)/obj/tests/transcript.o $(BUILD)/libsmtpspool.a
	$(CXX) $(LDFLAGS) -o $@ $^ $(LIBS)

-include $(BUILD)/obj/tests/transcripts/main.d

.PHONY: transcripts
transcripts: $(BUILD)/run-transcripts
	$(BUILD)/run-transcripts tests/sessions

cli: $(BUILD)/smtpspool
	python3 tests/cli/run.py $(BUILD)/smtpspool

e2e: $(BUILD)/smtpspool
	bash tests/e2e/run.sh $(BUILD)/smtpspool

# The example files under the real superservers (each test installs its
# Debian package when missing, as root), make install and the completion.
integration: $(BUILD)/smtpspool
	E2E_TESTS_DIR=tests/integration E2E_TEST_TIMEOUT=300 bash tests/e2e/run.sh $(BUILD)/smtpspool

# The fleet on one machine (tests/fleet/fleet.sh, tests/README.md): HAProxy
# with the PROXY protocol in front of two receivers delivering into one
# RabbitMQ quorum queue, one receiver killed and brought back. Not in make
# check (its own tier: a broker and a balancer, addresses beyond 127.0.0.1);
# .ci/run runs it after make check.
fleet: $(BUILD)/smtpspool
	bash tests/fleet/fleet.sh $(BUILD)/smtpspool

# Not run by make check (see README, Deployment).
package-check:
	bash tests/package/check.sh

# SIGKILL at every file-system step of serve and runq (an LD_PRELOAD shim),
# then the spool invariants (tests/crash/run.py).
$(BUILD)/fault_shim.so: tests/crash/fault_shim.c
	@mkdir -p $(@D)
	$(CC) -shared -fPIC -O1 -Wall -Wextra -Werror -o $@ $< -ldl

crash: $(BUILD)/smtpspool $(BUILD)/fault_shim.so
	python3 tests/crash/run.py $(BUILD)/smtpspool $(BUILD)/fault_shim.so

# The transcripts again with smtpspool under valgrind memcheck (zero errors),
# VALGRIND_JOBS at a time; VALGRIND_TRANSCRIPTS names some (default: all).
VALGRIND_JOBS ?= 2
VALGRIND_TRANSCRIPTS ?=
valgrind: $(BUILD)/smtpspool
	SMTPSPOOL_BINARY=$(CURDIR)/$(BUILD)/smtpspool python3 tests/sessions/run.py -j $(VALGRIND_JOBS) --hold-factor 4 \
	  tests/sessions/valgrind.sh tests/sessions $(VALGRIND_TRANSCRIPTS)

# The unit, transcript (binary and in-process) and command-line tests again,
# under AddressSanitizer and UBSan (the clang build above).
asan:
	$(MAKE) -j2 asan-build
	cd tests/unit && ../../$(ASAN_BUILD)/unit-tests
	$(ASAN_BUILD)/run-transcripts tests/sessions
	python3 tests/sessions/run.py --hold-factor 2 $(ASAN_BUILD)/smtpspool tests/sessions
	python3 tests/cli/run.py $(ASAN_BUILD)/smtpspool

# Pages with tables declare tbl ('\" t) and man(1) runs it: groff -t, so that tables
# are checked as tables and not as filled text.
lint-man:
	@for m in man/*.[0-9]; do \
	  out=$$(mandoc -T lint -W warning $$m 2>&1); \
	  if [ -n "$$out" ]; then echo "$$out"; exit 1; fi; \
	  out=$$(LC_ALL=C.UTF-8 groff -t -man -ww -z $$m 2>&1); \
	  if [ -n "$$out" ]; then echo "$$out"; exit 1; fi; \
	done; echo "man pages: lint clean"
	@python3 tests/lint/pipe_routes.py

# The dependency directions between the folders of src/ (ARCHITECTURE.md).
lint-layers:
	python3 tests/lint/layers.py

# make check runs lint-layers, then every tier through tests/check.sh: the
# g++ build, then the g++ tiers (unit transcripts sessions cli crash e2e
# integration lint-man valgrind) while clang builds the fuzz targets and the
# ASan tree (fuzz-build asan-build), then asan beside fuzz; the times at the end
# (tests/README.md). Valgrind takes the transcripts below in make check
# (make valgrind: all of them): every verb and reply path of the session
# (HELO, EHLO, MAIL, RCPT, DATA, BDAT, RSET, VRFY, EXPN, HELP, NOOP, QUIT,
# unknown, STARTTLS and AUTH refused), what only the binary does (the PROXY
# header, idle and session timeouts, hooks as child processes, policy files,
# the spool on disk), and the hostile inputs' buffer paths; the rest repeat
# these paths with other words, and run under ASan in-process and as a binary.
VALGRIND_CHECK_TRANSCRIPTS = basic-delivery.txt bdat-binarymime-data.txt bdat-chunks.txt bdat-eof.txt \
	dot-stuffing.txt dsn-parameters.txt eof-in-data.txt hostile-megabyte-line.txt hostile-nul-bytes.txt \
	line-too-long.txt max-errors.txt pipelined-messages.txt policy-aliases.txt policy-data-hook.txt \
	policy-rcpt-hook.txt policy-sender-deny.txt proxy-malformed.txt proxy-v1.txt proxy-v2.txt \
	relay-denied-network.txt reset-by-ehlo-and-rset.txt rfc821-mode.txt session-deadline.txt size-limit.txt \
	smtputf8.txt timeout.txt unknown-and-unimplemented.txt vrfy-expn-help.txt
check: deps
	$(MAKE) lint-layers
	MAKE="$(MAKE)" VALGRIND_CHECK_TRANSCRIPTS="$(VALGRIND_CHECK_TRANSCRIPTS)" bash tests/check.sh

# The edit-compile-test loop: the build, the unit tests and the in-process
# transcripts (under a minute once built).
.PHONY: quick
quick:
	$(MAKE) -j2 all $(BUILD)/unit-tests $(BUILD)/run-transcripts
	$(MAKE) unit transcripts

demo: deps
	$(MAKE) all
	rm -rf demo-spool
	$(BUILD)/smtpspool --spool demo-spool --hostname demo.example --log stderr < examples/demo-session.txt
	$(BUILD)/smtpspool mailq --spool demo-spool

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(DOCDIR)/examples \
	  $(DESTDIR)$(BASHCOMPDIR)
	install -m 755 $(BUILD)/smtpspool $(DESTDIR)$(SBINDIR)/smtpspool
	install -m 644 man/smtpspool.8 man/smtpspool-runq.8 man/smtpspool-sendmail.8 $(DESTDIR)$(MANDIR)/man8/
	install -m 644 man/smtpspool.conf.5 man/smtpspool-spool.5 $(DESTDIR)$(MANDIR)/man5/
	cp -R examples/. $(DESTDIR)$(DOCDIR)/examples/
	install -m 644 completion/smtpspool $(DESTDIR)$(BASHCOMPDIR)/smtpspool

# Removes what install installed; the shared directories ($(SBINDIR),
# $(MANDIR)/man8, ...) stay.
uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/smtpspool $(DESTDIR)$(MANDIR)/man8/smtpspool.8 \
	  $(DESTDIR)$(MANDIR)/man8/smtpspool-runq.8 $(DESTDIR)$(MANDIR)/man8/smtpspool-sendmail.8 \
	  $(DESTDIR)$(MANDIR)/man5/smtpspool.conf.5 $(DESTDIR)$(MANDIR)/man5/smtpspool-spool.5 \
	  $(DESTDIR)$(BASHCOMPDIR)/smtpspool
	rm -rf $(DESTDIR)$(DOCDIR)

format:
	clang-format -i src/*/*.cpp src/*/*.hpp tests/unit/*.cpp tests/unit/*.hpp

clean:
	rm -rf build build-asan build-fuzz demo-spool

# The benchmark suite (bench/run.py): smtpspool against exim -bs, the
# durability floor and a C stdio sink; writes bench/RESULTS.md. As root it
# installs the Debian packages it needs. A few minutes on 2 cores.
bench: $(BUILD)/smtpspool
	/usr/bin/python3 bench/run.py --binary $(BUILD)/smtpspool
