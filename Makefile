# rwkvd — build, test, fuzz and benchmark.
#
#   make            build everything (CUDA kernels too when nvcc exists)
#   make test       build and run every test, normal build and ASan+UBSan build;
#                   ends with one line "N passed, N failed"
#   make run        build and start the daemon (MODEL=... or the tiny fixture model)
#   make fuzz       libFuzzer targets with clang (FUZZ_SECONDS per target)
#   make bench      benchmark programs (not tests)
#   make gpu-check  everything that needs a CUDA device, one report
#                   (build/gpu-check/report.txt; kernels/NOTES.md)
#
#   make check T=test_x [ARGS=case] [FLAVOUR=asan]
#                   one test program (C or Python), optionally only the cases
#                   whose name contains ARGS
#
# Sources are picked up by wildcard so that adding a file needs no edit here:
#   core/<subsystem>/*.c -> libcore.a  (model files, tokenizers, the engine,
#                      sampling, the wire codec; public headers are core/*.h)
#   daemon/**/*.c     -> libdaemon.a + bin/rwkvd (daemon/main.c holds main)
#   clients/<prog>/*.c -> bin/<prog>
#   tests/test_*.c    -> one test program each
#   tests/test_*.py   -> run by /usr/bin/python3 against build/rel and build/asan
#   tests/fuzz/fuzz_*.c -> libFuzzer target (clang) and corpus replay (gcc)
#   tests/bench/bench_*.c -> one benchmark program each
#   tests/bench/bench_*.py -> Python benchmarks (/usr/bin/python3) against build/rel

# Debian packages the build and the tests need; installed on demand (root).
DEB_PACKAGES := build-essential libzmq3-dev libmsgpack-dev libzstd-dev \
                libopenblas-pthread-dev libjansson-dev libssl-dev libsystemd-dev \
                libmicrohttpd-dev libutf8proc-dev libdnnl-dev python3 python3-zmq python3-msgpack \
                libnats-dev nats-server

FIXTURES ?= $(if $(RWKVD_FIXTURES),$(RWKVD_FIXTURES),../shared/fixtures)
export RWKVD_FIXTURES := $(FIXTURES)

CC := gcc
CLANG ?= clang
B := build

# OpenBLAS, pthread flavour, told to use one thread (openblas_set_num_threads):
# rwkvd runs its own thread pool and calls sgemm from each worker, so only one
# set of threads works.  Not the "serial" flavour: Debian builds that one
# without locking, and concurrent sgemm calls from several threads corrupt
# each other's buffers (seen as wrong logits).
BLAS_INC := /usr/include/x86_64-linux-gnu/openblas-pthread
BLAS_LIB := /usr/lib/x86_64-linux-gnu/openblas-pthread

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
        -Wformat=2 -Wvla -Wno-format-nonliteral
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE -g -fopenmp-simd -ffp-contract=fast -pthread $(WARN) -I. -I$(BLAS_INC)
LIBS := -L$(BLAS_LIB) -Wl,-rpath,$(BLAS_LIB) -lopenblas -ljansson -lzstd -lzmq -lmsgpackc \
        -lcrypto -lsystemd -lmicrohttpd -lutf8proc -ldnnl -lgomp -lnats -lm -lpthread

REL_CFLAGS := $(BASE_CFLAGS) -O2
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
ASAN_CFLAGS := $(BASE_CFLAGS) -O1 $(SAN_FLAGS)

CORE_SRC := $(wildcard core/*/*.c)
DAEMON_SRC := $(filter-out daemon/main.c,$(wildcard daemon/*.c daemon/*/*.c))
CLIENT_DIRS := $(patsubst clients/%/,%,$(dir $(wildcard clients/*/*.c)))
CLIENT_PROGS := $(sort $(CLIENT_DIRS))
TEST_SRC := $(wildcard tests/test_*.c)
PY_TESTS := $(wildcard tests/test_*.py)
TEST_SUPPORT := $(wildcard tests/support/*.c)
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
BENCH_SRC := $(wildcard tests/bench/bench_*.c)
PY_BENCH := $(wildcard tests/bench/bench_*.py)
# Header dependencies: every object gets a .d file from the compiler (-MMD
# -MP), included below, so a header change rebuilds exactly its users.
DEPFLAGS := -MMD -MP

NVCC := $(shell command -v nvcc 2>/dev/null || { test -x /usr/local/cuda/bin/nvcc && echo /usr/local/cuda/bin/nvcc; })
CU_SRC := $(wildcard kernels/*.cu)

.PHONY: all deps test check test-gpu gpu-check gpu-check-build gpu-fixtures run run-cluster \
        fuzz bench bench-gpu clean features
.DEFAULT_GOAL := all

# ---------------------------------------------------------------- packages
$(B)/.deps-ok:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@mkdir -p $(B) && touch $@
deps: $(B)/.deps-ok

# ---------------------------------------------------------------- objects
# Two flavours share every rule: rel (optimised) and asan (ASan + UBSan).
CFLAGS_rel = $(REL_CFLAGS)
CFLAGS_asan = $(ASAN_CFLAGS)
objs = $(patsubst %.c,$(B)/$(1)/%.o,$(2))

define flavour
$(B)/$(1)/%.o: %.c | $(B)/.deps-ok
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CFLAGS_$(1)) $(DEPFLAGS) -c $$< -o $$@

$(B)/$(1)/libcore.a: $(call objs,$(1),$(CORE_SRC))
	@rm -f $$@; ar rcs $$@ $$^

$(B)/$(1)/libdaemon.a: $(call objs,$(1),$(DAEMON_SRC)) $(B)/$(1)/empty.o
	@rm -f $$@; ar rcs $$@ $$^

$(B)/$(1)/empty.o: | $(B)/.deps-ok
	@mkdir -p $$(dir $$@)
	echo 'typedef int rwkv_empty_unit;' | $$(CC) $$(CFLAGS_$(1)) -x c -c - -o $$@

$(B)/$(1)/bin/rwkvd: $(B)/$(1)/daemon/main.o $$(KERNEL_LIB) $(B)/$(1)/libdaemon.a $(B)/$(1)/libcore.a
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CFLAGS_$(1)) $$^ $$(KERNEL_LINK) $(LIBS) -o $$@
endef

# $(1) = flavour, $(2) = output path, $(3) = objects of the program itself.
# libkernels.a comes before libcore.a: static archives are searched in order,
# and the kernels call into core (model weights, states, errors).
# $(4): extra objects (the test support code, for tests and benchmarks only)
define program
$(2): $(3) $(4) $$(KERNEL_LIB) $(B)/$(1)/libdaemon.a $(B)/$(1)/libcore.a
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CFLAGS_$(1)) $$^ $$(KERNEL_LINK) $(LIBS) -o $$@
endef

# ---------------------------------------------------------------- CUDA
ifneq ($(NVCC),)
# nvcc finds its headers and libraries through the nvcc.profile beside the
# real binary; called through a symlink (say /usr/local/bin/nvcc) it finds
# neither, so the resolved path is what we run.
NVCC := $(realpath $(NVCC))
# Where cuda_runtime.h and libcudart live: asked of nvcc itself (--dryrun
# prints the -I and -L directories it compiles and links with), because the
# nvcc on PATH may be a wrapper in /usr/local/bin or Debian's /usr/bin, far
# from the toolkit.  Guessing from nvcc's path broke CI ("cannot find -lcudart").
NVCC_DRYRUN := $(shell $(NVCC) --dryrun -c -x cu /dev/null -o /dev/null 2>&1 \
    | sed -n 's/.*INCLUDES=//p; s/.*LIBRARIES=//p' | tr -d '"' | tr ' ' '\n')
CUDA_INCDIR := $(firstword $(foreach d,$(patsubst -I%,%,$(filter -I%,$(NVCC_DRYRUN))) /usr/include,\
    $(if $(wildcard $(d)/cuda_runtime.h),$(d))))
CUDA_LIBDIR := $(firstword $(foreach d,$(filter-out %/stubs,$(patsubst -L%,%,$(filter -L%,$(NVCC_DRYRUN)))) \
    $(dir $(NVCC))../lib64 /usr/local/cuda/lib64 /usr/lib/x86_64-linux-gnu,\
    $(if $(wildcard $(d)/libcudart.so),$(abspath $(d)))))
ifeq ($(CUDA_INCDIR),)
CUDA_LIBDIR :=
CUDA_STATE := not built ($(NVCC) found, but not the cuda_runtime.h it would compile with)
else ifeq ($(CUDA_LIBDIR),)
CUDA_STATE := not built ($(NVCC) found, but no libcudart.so to link with)
endif
else
CUDA_STATE := not built (no nvcc)
endif
ifneq ($(CUDA_LIBDIR),)
# SASS for sm_80 (A100; also runs on sm_86/sm_89) and sm_90 (H100/H200), and
# compute_90 PTX so newer GPUs (sm_100, sm_120) JIT-compile the kernels.
# -Werror all-warnings: nvcc's own (device-code) warnings fail the build too.
NVCC_FLAGS := -O2 -std=c++17 -I. -lineinfo -Werror all-warnings \
              -Xcompiler -Wall,-Wextra,-Werror,-fPIC \
              -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
              -gencode arch=compute_90,code=compute_90 \
              -DRWKV_CUDA_LIBDIR='"$(CUDA_LIBDIR)"'
# -u: core refers to rwkv_cuda_backend weakly (core/backend.h), and a weak
# reference alone does not pull a member out of a static archive.  cuBLAS is
# not linked: kernels/cublas_dl.cu loads it when a CUDA engine is created
# (linking it costs every program ~70 ms and ~210 MB at start-up).
KERNEL_LINK := -Wl,-u,rwkv_cuda_backend -L$(CUDA_LIBDIR) -Wl,-rpath,$(CUDA_LIBDIR) \
               -lcudart -ldl -lstdc++
KERNEL_OBJ := $(patsubst %.cu,$(B)/cuda/%.o,$(CU_SRC))
KERNEL_LIB := $(if $(CU_SRC),$(B)/cuda/libkernels.a)
$(B)/cuda/%.o: %.cu | $(B)/.deps-ok
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCC_FLAGS) $(DEPFLAGS) -c $< -o $@
$(B)/cuda/libkernels.a: $(KERNEL_OBJ)
	@rm -f $@; ar rcs $@ $^
CUDA_STATE := $(if $(CU_SRC),built with $(NVCC),nvcc found but kernels/ has no sources yet)
else
KERNEL_LINK :=
KERNEL_LIB :=
endif
ifeq ($(KERNEL_LINK),)
REL_CFLAGS += -DRWKV_NO_CUDA
ASAN_CFLAGS += -DRWKV_NO_CUDA
else ifeq ($(CU_SRC),)
REL_CFLAGS += -DRWKV_NO_CUDA
ASAN_CFLAGS += -DRWKV_NO_CUDA
KERNEL_LINK :=
KERNEL_LIB :=
endif

FLAVOURS := rel asan
$(foreach f,$(FLAVOURS),$(eval $(call flavour,$(f))))
$(foreach f,$(FLAVOURS),$(foreach p,$(CLIENT_PROGS),\
  $(eval $(call program,$(f),$(B)/$(f)/bin/$(p),$(call objs,$(f),$(wildcard clients/$(p)/*.c))))))
$(foreach f,$(FLAVOURS),$(foreach t,$(TEST_SRC) $(BENCH_SRC),\
  $(eval $(call program,$(f),$(patsubst %.c,$(B)/$(f)/%,$(t)),$(call objs,$(f),$(t)),$(call objs,$(f),$(TEST_SUPPORT))))))
# A fuzz target of a client's parsers links that client's sources (all but
# its main.c): FUZZ_LINK_<name> lists them.
FUZZ_LINK_sink := clients/rwkvd-sink/keyset.c clients/rwkvd-sink/reload.c \
                  clients/rwkvd-sink/render.c clients/rwkvd-sink/top.c
fuzz_link = $(FUZZ_LINK_$(patsubst tests/fuzz/fuzz_%.c,%,$(1)))
$(foreach f,$(FLAVOURS),$(foreach z,$(FUZZ_SRC),\
  $(eval $(call program,$(f),$(patsubst tests/fuzz/fuzz_%.c,$(B)/$(f)/tests/fuzz/replay_%,$(z)),\
    $(call objs,$(f),$(z) tests/fuzz/replay_main.c $(call fuzz_link,$(z))),\
    $(call objs,$(f),$(TEST_SUPPORT))))))

DAEMON_BIN := $(if $(wildcard daemon/main.c),rwkvd)
REL_BINS := $(addprefix $(B)/rel/bin/,$(DAEMON_BIN)) $(addprefix $(B)/rel/bin/,$(CLIENT_PROGS))
REL_TESTS := $(patsubst tests/%.c,$(B)/rel/tests/%,$(TEST_SRC))
ASAN_TESTS := $(patsubst tests/%.c,$(B)/asan/tests/%,$(TEST_SRC))
ASAN_BINS := $(addprefix $(B)/asan/bin/,$(DAEMON_BIN)) $(addprefix $(B)/asan/bin/,$(CLIENT_PROGS))
REPLAYS := $(patsubst tests/fuzz/fuzz_%.c,$(B)/asan/tests/fuzz/replay_%,$(FUZZ_SRC))
BENCHES := $(patsubst tests/%.c,$(B)/rel/tests/%,$(BENCH_SRC))

features:
	@echo "rwkvd build:"
	@echo "  ✓ core, daemon, clients (gcc, C11)"
	@echo "  $(if $(KERNEL_LINK),✓,✗) CUDA kernels: $(CUDA_STATE)"

all: features $(REL_BINS)

# Tests: every test program in the normal build, then again under
# AddressSanitizer + UBSan, then the fuzz corpora replayed under sanitizers.
test: features $(REL_TESTS) $(ASAN_TESTS) $(REPLAYS) $(REL_BINS) $(ASAN_BINS)
	@sh tests/run-tests.sh \
	  $(foreach t,$(REL_TESTS),rel:$(t)) \
	  $(foreach t,$(ASAN_TESTS),asan:$(t)) \
	  $(foreach t,$(REPLAYS),replay:$(t)) \
	  $(foreach t,$(PY_TESTS),py:$(t) py-asan:$(t))

# One test program: make check T=test_rwkv_golden [ARGS=v7] [FLAVOUR=asan].
# T names a C test (tests/T.c) or a Python test (tests/T.py); ARGS are case
# filters passed to it (a case runs when its name contains one of them).
FLAVOUR ?= rel
CHECK_C := $(wildcard tests/$(T).c)
CHECK_PY := $(wildcard tests/$(T).py)
# C tests that run the CLI find it beside them in build/$(FLAVOUR)/bin.
check: features $(if $(CHECK_C),$(B)/$(FLAVOUR)/tests/$(T) $(B)/$(FLAVOUR)/bin/rwkv) $(if $(CHECK_PY),$(B)/$(FLAVOUR)/bin/rwkvd \
        $(addprefix $(B)/$(FLAVOUR)/bin/,$(CLIENT_PROGS)) $(B)/rel/bin/rwkv)
	@if [ -z "$(T)" ] || [ -z "$(CHECK_C)$(CHECK_PY)" ]; then \
	  echo "make check: T=<test name> (tests/T.c or tests/T.py); got T='$(T)'" >&2; exit 2; fi
	@if [ -n "$(CHECK_C)" ]; then $(B)/$(FLAVOUR)/tests/$(T) $(ARGS); \
	 else RWKVD_BUILD_FLAVOUR=$(FLAVOUR) /usr/bin/python3 tests/$(T).py $(ARGS); fi

# The CUDA backend's tests alone (they also run, and SKIP without a device,
# in `make test`).
GPU_TESTS := $(filter $(B)/rel/tests/test_gpu_% $(B)/rel/tests/test_cuda_%,$(REL_TESTS))
test-gpu: features $(GPU_TESTS) $(REL_BINS)
	@sh tests/run-tests.sh $(foreach t,$(GPU_TESTS),rel:$(t))

# The CUDA benchmark alone (it also runs in `make bench`; without a device it
# says so and exits 0).
bench-gpu: features $(B)/rel/tests/bench/bench_gpu
	$(B)/rel/tests/bench/bench_gpu $(BENCH_GPU_ARGS)

# Everything that needs a GPU, in one run with one report
# (build/gpu-check/report.txt): per-kernel tests, test-gpu, compute-sanitizer,
# the daemon on the device resumed on the CPU, bench-gpu; each part under its
# own time limit (tests/gpu_check.sh; kernels/NOTES.md).  Without a device it
# says so and fails (exit 3).  The script builds gpu-check-build itself, under
# a time limit too.
gpu-check-build: features $(REL_BINS) $(GPU_TESTS) $(B)/rel/tests/bench/bench_gpu
gpu-check:
	@sh tests/gpu_check.sh
# The fixtures the GPU checks read, copied to $(B)/gpu-fixtures: a device call
# sends the checkout only (not ../shared), so it carries this folder and
# gpu_check.sh uses it when $(FIXTURES) is not there (kernels/NOTES.md).
GPU_FIXTURES := models/tiny-rwkv-7v0-834K.safetensors models/tiny-rwkv-7v0-834K.pth \
                models/tiny-rwkv-7v0-834K.bf16.pth models/tiny-rwkv-7v0-834K.bf16.safetensors \
                tiny-rwkv-7v0-834K inputs/gpl-3.first4096.bin
gpu-fixtures:
	@for f in $(GPU_FIXTURES); do \
	  mkdir -p $(B)/gpu-fixtures/$$(dirname $$f) && cp -r $(FIXTURES)/$$f $(B)/gpu-fixtures/$$(dirname $$f)/ || exit 1; \
	done; chmod -R u+w $(B)/gpu-fixtures; du -sh $(B)/gpu-fixtures
# test_cuda_host runs tests/gpu_check.sh, which asks test_gpu_kernels_rows
# (same flavour) whether there is a device.
$(foreach f,$(FLAVOURS),$(eval $(B)/$(f)/tests/test_cuda_host: | $(B)/$(f)/tests/test_gpu_kernels_rows))

# The daemon in the foreground on MODEL (default: the tiny fixture model).
MODEL ?= $(FIXTURES)/models/tiny-rwkv-7v0-834K.safetensors
run: $(B)/rel/bin/rwkvd
	@if [ ! -f "$(MODEL)" ]; then \
	  echo "make run: no model at '$(MODEL)'. Pass MODEL=/path/to/model.pth (or .safetensors)." >&2; exit 2; fi
	$(B)/rel/bin/rwkvd --model "$(MODEL)" $(RUN_ARGS)

# A local cluster: nats-server with JetStream in a temporary directory and
# two workers sharing one state directory (PROTOCOL.md §12); Ctrl-C stops all.
CLUSTER_PARTITIONS ?= 16
run-cluster: $(B)/rel/bin/rwkvd $(B)/rel/bin/rwkvd-nats
	@if [ ! -f "$(MODEL)" ]; then \
	  echo "make run-cluster: no model at '$(MODEL)'. Pass MODEL=/path/to/model.pth." >&2; exit 2; fi
	@command -v nats-server >/dev/null || { echo "make run-cluster: nats-server missing (make deps)" >&2; exit 2; }
	@d=$$(mktemp -d /tmp/rwkvd-cluster.XXXXXX); port=$${NATS_PORT:-4222}; \
	printf 'listen: 127.0.0.1:%s\njetstream { store_dir: %s/nats }\nmappings = { "rwkvd.doc.*": "rwkvd.in.{{partition(%s,1)}}.{{wildcard(1)}}" }\n' \
	  $$port $$d $(CLUSTER_PARTITIONS) > $$d/nats.conf; \
	nats-server -c $$d/nats.conf > $$d/nats.log 2>&1 & ns=$$!; sleep 1; \
	for w in a b; do \
	  $(B)/rel/bin/rwkvd --model "$(MODEL)" $(RUN_ARGS) --nats nats://127.0.0.1:$$port \
	    --partitions $(CLUSTER_PARTITIONS) --worker-id $$w --state-dir $$d/state \
	    --control ipc://$$d/control-$$w --log-file $$d/worker-$$w.log & \
	done; \
	trap 'kill $$(jobs -p) 2>/dev/null; wait; echo "stopped; files in $$d"' INT TERM; \
	echo "cluster up: nats://127.0.0.1:$$port, workers a and b (logs in $$d)"; \
	echo "feed it:  rwkvd-nats pub --nats nats://127.0.0.1:$$port < frames   ([u32 LE length][msgpack map] each)"; \
	echo "read it:  $(B)/rel/bin/rwkvd-nats sub --nats nats://127.0.0.1:$$port --durable mine > outputs"; \
	echo "leases:   $(B)/rel/bin/rwkvd-nats leases --nats nats://127.0.0.1:$$port"; \
	echo "Ctrl-C stops everything"; wait

# ---------------------------------------------------------------- fuzzing
FUZZ_SECONDS ?= 60
FUZZ_BINS := $(patsubst tests/fuzz/fuzz_%.c,$(B)/fuzz/fuzz_%,$(FUZZ_SRC))
FUZZ_CFLAGS := $(BASE_CFLAGS) -DRWKV_NO_CUDA -O1 -fsanitize=fuzzer,address,undefined \
               -fno-sanitize-recover=all -Wno-unused-command-line-argument -Wno-pass-failed
.SECONDEXPANSION:
$(B)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(CORE_SRC) $(DAEMON_SRC) $$(FUZZ_LINK_$$*) | $(B)/.deps-ok
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_CFLAGS) $(DEPFLAGS) -MF $@.d $< $(CORE_SRC) $(DAEMON_SRC) \
	  $(FUZZ_LINK_$*) $(LIBS) -o $@
fuzz: $(FUZZ_BINS)
	@for f in $(FUZZ_BINS); do \
	  name=$${f##*/fuzz_}; mkdir -p $(B)/fuzz/corpus/$$name; \
	  echo "== fuzzing $$name for $(FUZZ_SECONDS)s"; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -max_len=1048576 \
	      $(B)/fuzz/corpus/$$name tests/fuzz/corpus/$$name || exit 1; \
	done

# ---------------------------------------------------------------- benchmarks
bench: features $(BENCHES) $(REL_BINS)
	@for b in $(BENCHES); do echo "== $$b"; $$b || exit 1; done
	@for b in $(PY_BENCH); do echo "== $$b"; /usr/bin/python3 $$b || exit 1; done

clean:
	rm -rf $(B)

-include $(shell find $(B) -name '*.d' 2>/dev/null)
