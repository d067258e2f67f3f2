# fuzz.mk - libFuzzer targets for the sans-I/O parsers (run by `make fuzz`).
#
#   make fuzz                                  every target for FUZZ_SECONDS (60) each
#   make fuzz FUZZ_SECONDS=600                 longer runs
#   make -j2 fuzz FUZZ_TARGETS="request chunked"   two targets at once
#   make fuzz FUZZ_SECONDS_date=30             one target's own time
#   make -f tests/fuzz/fuzz.mk build           only build build/fuzz/fuzz_*
#   make -f tests/fuzz/fuzz.mk regress         run the repo corpus once, no fuzzing
#
# The targets are built with clang from the src/core, src/http and src/dns sources
# (-fsanitize=fuzzer,address,undefined). Each run works on a copy of its
# seed corpus in build/fuzz/corpus-<name>, so tests/fuzz/corpus/ is never
# written; crash reproducers go to build/fuzz/artifacts/<name>/ and the
# output to build/fuzz/<name>.log. Exits non-zero if any target failed.

FUZZ_SECONDS  ?= 60
FUZZ_TARGETS  ?= request chunked date dns multipart negotiate mergepatch rudp upload dnsserver \
                 response url proxy
FUZZ_CC       ?= clang-14
FUZZ_MAX_LEN  ?= 4096
FUZZ_TIMEOUT  ?= 10
FUZZ_FLAGS    ?=
FUZZ_PKGS     := clang-14 libclang-rt-14-dev

FUZZ_DIR      := build/fuzz
FUZZ_DICT     := tests/fuzz/http.dict
FUZZ_SAN      := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS   := -std=c11 -D_GNU_SOURCE -g -O1 -Wall -Wextra -Isrc $(FUZZ_SAN) -MMD -MP
FUZZ_ENV      := ASAN_OPTIONS=abort_on_error=1:detect_leaks=1:symbolize=1 \
                 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

FUZZ_LIB_SRC  := $(wildcard src/core/*.c src/http/*.c src/dns/*.c src/rudp/*.c) \
                 src/proxy/acl.c src/proxy/hop.c src/proxy/pstore.c
FUZZ_LIB_OBJ  := $(FUZZ_LIB_SRC:%.c=$(FUZZ_DIR)/obj/%.o)
FUZZ_LIB      := $(FUZZ_DIR)/libportico-fuzz.a
FUZZ_BINS     := $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%)
FUZZ_RUNS     := $(FUZZ_TARGETS:%=run-%)
FUZZ_DEPS_OK  := $(FUZZ_DIR)/.deps-ok

.PHONY: all build regress $(FUZZ_RUNS)
.DEFAULT_GOAL := all

# Installs clang and its runtime libraries (libFuzzer, sanitizers) if missing.
$(FUZZ_DEPS_OK): tests/fuzz/fuzz.mk
	@missing=; for p in $(FUZZ_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "fuzz: installing$$missing"; \
	  if [ "$$(id -u)" -ne 0 ]; then \
	    if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else \
	      echo "fuzz: missing packages:$$missing; run as root or install them" >&2; exit 1; fi; \
	  else SUDO=; fi; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends $$missing || exit 1; \
	fi
	@mkdir -p $(@D) && touch $@

$(FUZZ_DIR)/obj/%.o: %.c | $(FUZZ_DEPS_OK)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_LIB): $(FUZZ_LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_LIB) | $(FUZZ_DEPS_OK)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -MF $@.d -o $@ $< $(FUZZ_LIB) -ljansson -lz -lpthread -lsodium

build: $(FUZZ_BINS)

# One run: fresh working corpus seeded from the repo, then fuzz. The exit
# status goes to <name>.rc, so that every target runs before `all` judges.
$(FUZZ_RUNS): run-%: $(FUZZ_DIR)/fuzz_%
	@mkdir -p $(FUZZ_DIR)/corpus-$* $(FUZZ_DIR)/artifacts/$*
	@cp tests/fuzz/corpus/$*/* $(FUZZ_DIR)/corpus-$*/
	@rm -f $(FUZZ_DIR)/$*.rc
	@echo "== fuzz_$*: $(or $(FUZZ_SECONDS_$*),$(FUZZ_SECONDS)) s, log in $(FUZZ_DIR)/$*.log"
	@( $(FUZZ_ENV) ./$(FUZZ_DIR)/fuzz_$* \
	    -max_total_time=$(or $(FUZZ_SECONDS_$*),$(FUZZ_SECONDS)) \
	    -dict=$(FUZZ_DICT) -max_len=$(FUZZ_MAX_LEN) -timeout=$(FUZZ_TIMEOUT) \
	    -artifact_prefix=$(FUZZ_DIR)/artifacts/$*/ -print_final_stats=1 $(FUZZ_FLAGS) \
	    $(FUZZ_DIR)/corpus-$*; echo $$? > $(FUZZ_DIR)/$*.rc ) 2>&1 \
	  | tee $(FUZZ_DIR)/$*.log | sed -u 's/^/[$*] /'

all: $(FUZZ_RUNS)
	@bad=; for t in $(FUZZ_TARGETS); do \
	  rc=$$(cat $(FUZZ_DIR)/$$t.rc 2>/dev/null || echo none); \
	  last=$$(grep -E '^#[0-9]+' $(FUZZ_DIR)/$$t.log | tail -n 1); \
	  runs=$$(sed -n 's/^stat::number_of_executed_units: *//p' $(FUZZ_DIR)/$$t.log); \
	  eps=$$(sed -n 's/^stat::average_exec_per_sec: *//p' $(FUZZ_DIR)/$$t.log); \
	  echo "fuzz_$$t: exit $$rc, $${runs:-?} runs, $${eps:-?} exec/s; $$last"; \
	  [ "$$rc" = 0 ] || bad="$$bad fuzz_$$t"; \
	done; \
	if [ -n "$$bad" ]; then \
	  echo "fuzz: FAILED:$$bad (reproducers in $(FUZZ_DIR)/artifacts/, output in $(FUZZ_DIR)/*.log)"; exit 1; \
	fi; \
	echo "fuzz: all targets passed"

# The repo corpus once through every target: a quick regression check.
regress: $(FUZZ_BINS)
	@for t in $(FUZZ_TARGETS); do \
	  echo "== fuzz_$$t on tests/fuzz/corpus/$$t"; \
	  $(FUZZ_ENV) ./$(FUZZ_DIR)/fuzz_$$t tests/fuzz/corpus/$$t/* >$(FUZZ_DIR)/regress-$$t.log 2>&1 \
	    || { tail -n 40 $(FUZZ_DIR)/regress-$$t.log; echo "fuzz: regress FAILED in fuzz_$$t"; exit 1; }; \
	done; echo "fuzz: regress passed"

-include $(FUZZ_LIB_OBJ:.o=.d) $(FUZZ_BINS:=.d)
