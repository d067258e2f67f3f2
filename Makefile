# portico - build, test, fuzz, bench.
#
#   make              build build/portico
#   make run          start the main job
#   make test         unit tests (cmocka) + integration tests (pytest)
#   make test SAN=1   the same under AddressSanitizer + UBSan (in build/san/)
#   make fuzz         run every fuzz target for FUZZ_SECONDS each
#   make bench        run the benchmarks in bench/ against their peers

CC      ?= cc
PYTHON  := /usr/bin/python3
CFLAGS  := -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror -Isrc -MMD -MP
# The demo site that `portico serve` shows without a DIR argument.
CFLAGS  += -DPORTICO_DEFAULT_SITE='"$(CURDIR)/examples/site"'
LDLIBS  := -linih -lcrypt -ljansson -lz -lpthread -lsodium

ifeq ($(SAN),1)
BUILD   := build/san
CFLAGS  += -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
LDFLAGS += -fsanitize=address,undefined
else
BUILD   := build
# The binary is linked static-PIE: no ld.so and no shared-library pages
# at run time (RSS at rest about 1.7 MB instead of 2.5), no PLT calls, ASLR
# kept. Nothing in portico uses libc's NSS (names go through src/dns).
BIN_LDFLAGS := -static-pie
endif

BIN      := $(BUILD)/portico
CMD_SRC  := $(wildcard src/cmd/*.c)
LIB_SRC  := $(filter-out $(CMD_SRC),$(wildcard src/*/*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CMD_OBJ  := $(CMD_SRC:%.c=$(BUILD)/obj/%.o)
LIB      := $(BUILD)/libportico.a

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

DEPS_STAMP := build/.deps-ok

RUN_ARGS ?= serve --access-log -

.PHONY: all run test unit integration fuzz bench clean deps
all: $(BIN)

# Installs missing Debian packages once per change of the list.
$(DEPS_STAMP): scripts/deps.sh
	@bash scripts/deps.sh
	@mkdir -p $(@D) && touch $@
deps: $(DEPS_STAMP)

$(BUILD)/obj/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BIN): $(CMD_OBJ) $(LIB)
	$(CC) $(LDFLAGS) $(BIN_LDFLAGS) -o $@ $(CMD_OBJ) $(LIB) $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(LIB) | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Itests/unit $(LDFLAGS) -MF $@.d -o $@ $< $(LIB) $(LDLIBS) -lcmocka

run: $(BIN)
	./$(BIN) $(RUN_ARGS)

unit: $(UNIT_BIN)
	@total=0; progs=0; for t in $(UNIT_BIN); do \
	  echo "== $$t"; out=$$($$t 2>&1); rc=$$?; echo "$$out"; \
	  if [ $$rc -ne 0 ]; then echo "unit: FAILED in $$t"; exit 1; fi; \
	  n=$$(echo "$$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p'); \
	  total=$$((total + n)); progs=$$((progs + 1)); done; \
	echo "unit: $$total tests passed in $$progs programs"

# playwright-core for the browser test, as pinned in its lock file.
BROWSER_STAMP := tests/browser/node_modules/.package-lock.json
$(BROWSER_STAMP): tests/browser/package-lock.json | $(DEPS_STAMP)
	cd tests/browser && npm ci --no-audit --no-fund

integration: $(BIN) $(BROWSER_STAMP)
	PORTICO=$(abspath $(BIN)) $(PYTHON) -m pytest -q tests/integration

test: unit integration

fuzz:
	@$(MAKE) -f tests/fuzz/fuzz.mk

bench: $(BIN)
	@for b in bench/*.sh; do echo "== $$b"; bash $$b; done

clean:
	rm -rf build

-include $(LIB_OBJ:.o=.d) $(CMD_OBJ:.o=.d) $(UNIT_BIN:=.d)
