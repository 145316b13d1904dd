# rfm: customer-intelligence scoring. `make run` and `make test` do all set-up.
CC      ?= cc
CXX     ?= c++
PKGS    := libmicrohttpd jansson gsl yaml-0.1 zlib libisal libpq sqlite3 libzstd double-conversion
# hiredis: the Redis state store (core/files/state_redis.c); its flags add
# -I/usr/include/hiredis, whose read.h and sds.h would shadow, so libs only.
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter
CFLAGS  ?= -O2 -g
# Math functions never report through errno here, so sqrt/log inline.
NOERRNO := -fno-math-errno
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(CORE_INC) $(WARN) $(CFLAGS) $(NOERRNO) $(SAN) \
             $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
CXXFLAGS ?= -O2 -g
ALL_CXXFLAGS = -std=c++17 $(CORE_INC) -Wall -Wextra -Werror $(CXXFLAGS) $(SAN)
# Debian's libfaiss-dev is a static library needing OpenBLAS, OpenMP, C++.
FAISS_LIBS := -lfaiss -lopenblas -lgomp -lstdc++
# libpq and Debian's libxgboost-dev (the boosted churn learner): their
# headers only; core/data/source_pg.c loads libpq when a PostgreSQL source
# opens and core/models/boost.c libxgboost at the first fit (dlopen).
# --as-needed: a program links only the libraries it calls (rfm-train no
# libmicrohttpd): each one loaded costs every start.
LIBS    = -Wl,--as-needed $(shell pkg-config --libs $(filter-out libpq,$(PKGS)) hiredis 2>/dev/null) \
          $(FAISS_LIBS) -lpthread -lm
TEST_LIBS = $(LIBS) $(shell pkg-config --libs cmocka 2>/dev/null)

B       ?= build
# core/ in layers (docs/architecture.md); each may include only those before it.
LAYERS   := base data models files serving
CORE_INC := $(LAYERS:%=-Icore/%)
CORE_H   := $(wildcard core/*/*.h)
CORE_C   := $(wildcard core/*/*.c)
CORE_CXX := $(wildcard core/*/*.cpp)
CORE_OBJ := $(CORE_C:%.c=$(B)/%.o) $(CORE_CXX:%.cpp=$(B)/%.o)
TESTS    := $(patsubst tests/%.c,$(B)/tests/%,$(wildcard tests/*/test_*.c))
DEBS     := build-essential pkg-config libmicrohttpd-dev libjansson-dev libgsl-dev \
            libfaiss-dev libopenblas-dev libyaml-dev libcmocka-dev zlib1g-dev libisal-dev wrk \
            python3 curl bc openssl clang libclang-rt-14-dev libomp-14-dev \
            libpq-dev libsqlite3-dev postgresql sqlite3 libzstd-dev \
            librdkafka-dev kcat libhiredis-dev redis-server nginx-light libxgboost-dev \
            chromium poppler-utils libdouble-conversion-dev
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps bench-deps format layers lint run test unit ui-test san bench clean fuzz fuzz-short fuzz-models
all: bin/rfm-train bin/rfm-serve bin/rfm-score bin/rfm-report $(B)/ui-assets/index.html

deps:
	@missing=$$(for p in $(DEBS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
	  | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then echo "installing:" $$missing; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; fi
	@# Node for the npm tools (package.json): Debian's, unless a node is there.
	@if ! command -v node >/dev/null || ! command -v npm >/dev/null; then \
	  echo "installing: nodejs npm"; $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq nodejs npm; fi
	@[ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund

# The contract: Redocly's recommended rules (redocly.yaml; the problems
# skipped on purpose, with reasons, in .redocly.lint-ignore.yaml).
lint:
	npx --no-install redocly lint --format=stylish openapi.yaml

# The /ui/ web app (docs/ui.md): ui/ and ECharts (npm) as rfm-serve serves
# them, with content-hashed names and gzip twins (ui/build.sh).
UI_SRC := $(wildcard ui/*.html ui/*.js ui/*.css) ui/build.sh
$(B)/ui-assets/index.html: $(UI_SRC) node_modules/echarts/dist/echarts.min.js
	@$(if $(Q),echo "  UI    $(@D)")
	$(Q)ui/build.sh $(@D)
node_modules/echarts/dist/echarts.min.js:
	@echo "$@ is missing: run make deps (npm ci)" >&2; exit 1

# `make V=1` shows the full commands.
Q := $(if $(V),,@)
$(B)/%.o: %.c $(CORE_H)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC    $<")
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@
$(B)/%.o: %.cpp $(CORE_H)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CXX   $<")
	$(Q)$(CXX) $(ALL_CXXFLAGS) -c $< -o $@
$(B)/libcore.a: $(CORE_OBJ)
	@rm -f $@
	$(Q)ar rcs $@ $^

# The programs: bin/rfm-NAME from the files of DIR, each object with DIR's
# headers; $(B)/bin/rfm-NAME is the same program in the build folder, for the
# integration tests (`make san` runs them under the sanitizers, never stale).
# cli/: what the command-line programs share (header-only; say.h).
PROG_H := $(wildcard train/*.h server/*.h score/*.h report/*.h cli/*.h)
define program
$(1)_OBJ := $$(patsubst %.c,$$(B)/%.o,$$(wildcard $(2)/*.c))
$$(B)/$(2)/%.o: $(2)/%.c $$(PROG_H) $$(CORE_H)
	@mkdir -p $$(@D)
	@$$(if $$(Q),echo "  CC    $$<")
	$$(Q)$$(CC) $$(ALL_CFLAGS) -I$(2) -Icli -c $$< -o $$@
bin/rfm-$(1) $$(B)/bin/rfm-$(1): $$($(1)_OBJ) $$(B)/libcore.a
	@mkdir -p $$(@D)
	@$$(if $$(Q),echo "  LINK  $$@")
	$$(Q)$$(CC) $$(SAN) -o $$@ $$^ $$(LIBS)
endef
$(eval $(call program,train,train))
$(eval $(call program,serve,server))
# The Kafka consumer (server/kafka.c) is the daemon's alone.
bin/rfm-serve $(B)/bin/rfm-serve: LIBS += -lrdkafka
$(eval $(call program,score,score))
$(eval $(call program,report,report))
$(B)/tests/integration/test_http $(B)/tests/integration/test_events $(B)/tests/integration/test_feed: $(B)/bin/rfm-serve
$(B)/tests/integration/test_redis: $(B)/bin/rfm-serve
$(B)/tests/integration/test_accesslog: $(B)/bin/rfm-serve
$(B)/tests/integration/test_http: $(B)/ui-assets/index.html
$(B)/tests/integration/test_privacy: $(B)/bin/rfm-serve $(B)/bin/rfm-train $(B)/bin/rfm-score
$(B)/tests/integration/test_score: $(B)/bin/rfm-serve $(B)/bin/rfm-score
$(B)/tests/integration/test_report: $(B)/bin/rfm-train $(B)/bin/rfm-report
# test_kafka hosts librdkafka's mock cluster (tests/kafka_mock.h).
$(B)/tests/integration/test_kafka: $(B)/bin/rfm-serve
$(B)/tests/integration/test_kafka: TEST_LIBS += -lrdkafka
# test_sources seeds its PostgreSQL server through libpq itself
$(B)/tests/integration/test_sources: TEST_LIBS += $(shell pkg-config --libs libpq 2>/dev/null)

$(B)/tests/%: tests/%.c $(B)/libcore.a $(wildcard tests/*.h)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  TEST  $@")
	$(Q)$(CC) $(ALL_CFLAGS) $(shell pkg-config --cflags cmocka) -Itests -o $@ $< $(TEST_OBJ) $(B)/libcore.a $(TEST_LIBS)

# test_modelfile, test_export and test_erasure see core/'s syncs and renames, in order
# (tests/syncwrap.h).
$(B)/tests/files/test_modelfile $(B)/tests/files/test_export $(B)/tests/files/test_erasure: \
  TEST_LIBS += \
  -Wl,--wrap=fsync,--wrap=rename,--wrap=renameat2
# test_oom makes each allocation fail in turn: core/'s and api_load's calls go to its wrappers.
$(B)/tests/integration/test_oom: $(B)/server/api.o $(B)/server/live.o
$(B)/tests/integration/test_alog: $(B)/server/alog.o
$(B)/tests/integration/test_alog: TEST_OBJ = $(B)/server/alog.o
$(B)/tests/integration/test_oom: TEST_OBJ = $(B)/server/api.o $(B)/server/live.o
$(B)/tests/integration/test_oom: TEST_LIBS += -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup,--wrap=free,--wrap=json_load_file

# unit: every cmocka test once. san: the same under ASan+UBSan in build/san.
unit: $(TESTS)
	@fail=0; for t in $(TESTS); do echo "== $$t"; \
	  (cd tests && RFM_SERVE=$(B)/bin/rfm-serve ../$$t) || fail=1; done; exit $$fail

# The /ui/ app in Debian's chromium against the real daemon (tests/ui/,
# docs/ui.md); screenshots of every page go to $(B)/ui/.
ui-test: all $(B)/bin/rfm-serve
	node tests/ui/sse.test.mjs
	B=$(B) node tests/ui/ui.test.mjs

san:
	$(MAKE) --no-print-directory B=build/san SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" unit

# glibc picks libm code paths by CPU; the unit suite runs a second time with
# the wide-vector paths masked, so a test that leans on last bits fails here
# and not only on a user's machine with another CPU.
NOHWCAPS := glibc.cpu.hwcaps=-AVX2,-FMA,-AVX512F,-AVX512VL

# Every C and C++ file through clang-format (.clang-format).
format:
	clang-format -i $$(git ls-files '*.c' '*.h' '*.cpp')

# The include rules of docs/architecture.md.
layers:
	@tests/layers.sh

test: deps fuzz-short
	$(MAKE) --no-print-directory layers lint all ui-test unit
	@echo "== unit suite again with GLIBC_TUNABLES=$(NOHWCAPS)"
	GLIBC_TUNABLES=$(NOHWCAPS) $(MAKE) --no-print-directory unit
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 $(MAKE) --no-print-directory san
	@echo "all tests passed"

# Fuzzing (docs/operations.md): libFuzzer targets tests/fuzz/fuzz_*.c, with
# core/ and server/ built again by clang under ASan+UBSan in build/fuzz.
# `make fuzz` runs each for FUZZ_SECONDS, growing build/fuzz/corpus-*;
# fuzz-short (part of `make test`) runs each for 20 s. Crashes are saved as
# build/fuzz/<target>-crash-* (or -leak-, -timeout-, -oom-) and fail the make.
FUZZ_B       := build/fuzz
FUZZ_SECONDS ?= 300
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS   = -std=c11 -D_GNU_SOURCE $(CORE_INC) -Iserver $(WARN) -g -O1 $(NOERRNO) $(FUZZ_SAN) \
                $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
FUZZ_OBJ     := $(CORE_C:%.c=$(FUZZ_B)/%.o) $(CORE_CXX:%.cpp=$(FUZZ_B)/%.o) \
                $(FUZZ_B)/server/api.o $(FUZZ_B)/server/docs.o $(FUZZ_B)/server/http.o \
                $(FUZZ_B)/server/ops.o $(FUZZ_B)/server/guard.o $(FUZZ_B)/server/live.o \
                $(FUZZ_B)/server/ui.o $(FUZZ_B)/server/alog.o
FUZZ_NAMES   := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS    := $(FUZZ_NAMES:%=$(FUZZ_B)/fuzz_%)
FUZZ_MODELS  := $(FUZZ_B)/models/manifest.json
# Per input: 10 s at most, 2 GB of memory; bodies and files up to 16 KiB.
FUZZ_RUN      = -timeout=10 -rss_limit_mb=2048 -max_len=16384 -print_final_stats=1

$(FUZZ_B)/%.o: %.c $(CORE_H) $(wildcard server/*.h)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CLANG $<")
	$(Q)clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@
$(FUZZ_B)/%.o: %.cpp $(CORE_H)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CLANG $<")
	$(Q)clang++ -std=c++17 $(CORE_INC) -Wall -Wextra -Werror -g -O1 $(FUZZ_SAN) \
	  -fsanitize=fuzzer-no-link -c $< -o $@
.SECONDARY: $(FUZZ_OBJ)
# clang++ links, for the C++ parts of the sanitizer runtimes FAISS needs.
$(FUZZ_B)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_OBJ)
	@$(if $(Q),echo "  FUZZ  $@")
	$(Q)clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -c $< -o $@.o
	$(Q)clang++ $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $@.o $(FUZZ_OBJ) $(LIBS)

# The models fuzz_request scores with: trained once from the bundled data.
$(FUZZ_MODELS): bin/rfm-train
	bin/rfm-train --quiet --config config/rfm.yaml --transactions data/online_retail.csv.gz \
	  --campaign data/hillstrom.csv.gz --models $(FUZZ_B)/models
fuzz-models: $(FUZZ_MODELS)

# $(call fuzz_run,name,seconds): new inputs go to build/fuzz/corpus-name,
# the committed seeds in tests/fuzz/corpus/name are only read.
fuzz_run = mkdir -p $(FUZZ_B)/corpus-$(1) && \
  RFM_FUZZ_MODELS=$(FUZZ_B)/models $(FUZZ_B)/fuzz_$(1) $(FUZZ_RUN) -max_total_time=$(2) \
  -dict=tests/fuzz/$(1).dict -artifact_prefix=$(FUZZ_B)/$(1)- \
  $(FUZZ_B)/corpus-$(1) tests/fuzz/corpus/$(1)

fuzz: $(FUZZ_BINS) $(FUZZ_MODELS)
	$(foreach t,$(FUZZ_NAMES),$(call fuzz_run,$(t),$(FUZZ_SECONDS)) &&) true
fuzz-short: $(FUZZ_BINS) $(FUZZ_MODELS)
	@$(foreach t,$(FUZZ_NAMES),$(call fuzz_run,$(t),20) 2>$(FUZZ_B)/short-$(t).log || \
	  { tail -n 60 $(FUZZ_B)/short-$(t).log; exit 1; }; \
	  echo "  fuzz_$(t): 20 s, no crash, leak or sanitizer report: $$(grep -h 'DONE' \
	    $(FUZZ_B)/short-$(t).log | tail -n 1 | sed 's/^#\([0-9]*\)[[:space:]]*DONE/\1 inputs,/')";) true

# Train when models/ has none, then serve on the configured port (8080)
# with the tokens of RFM_API_TOKENS, or a new random one.
run: deps
	@$(MAKE) --no-print-directory all
	@[ -f models/manifest.json ] || bin/rfm-train --config config/rfm.yaml
	@bin/rfm-train --config config/rfm.yaml --print-clusters
	@tok="$${RFM_API_TOKENS:-$$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')}"; \
	first="$${tok%%,*}"; \
	echo; echo "token: $$first"; \
	echo "web app: http://127.0.0.1:8080/ui/ (sign in with the token; docs/ui.md)"; \
	echo "try:   curl -s -H 'Authorization: Bearer $$first' -H 'Content-Type: application/json' \\"; \
	echo "         -d '{\"recency\": 12, \"frequency\": 7, \"monetary\": 4310}' http://127.0.0.1:8080/segment"; \
	echo; RFM_API_TOKENS="$$tok" exec bin/rfm-serve --config config/rfm.yaml

BENCH := $(patsubst bench/%.c,$(B)/bench/%,$(wildcard bench/*.c))
$(B)/bench/%: bench/%.c bench/bench.h $(B)/libcore.a
	@mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $< $(B)/libcore.a $(LIBS)

$(B)/bench/bench_kafka: LIBS += -lrdkafka
# The Python stack the figures are compared with, for `make bench` only:
# bench/pandas_rfm.py and bench/python_train.py (Debian's packages).
BENCH_DEBS := python3-pandas python3-sklearn python3-scipy python3-xgboost
bench-deps:
	@missing=$$(for p in $(BENCH_DEBS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
	  | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then echo "installing:" $$missing; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; fi
bench: deps bench-deps all $(B)/bin/rfm-serve $(BENCH)
	B=$(B) bench/run.sh

clean:
	rm -rf build bin
