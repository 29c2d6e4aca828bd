#!/bin/sh
# gpu_check.sh — `make gpu-check`: everything that needs a CUDA device, in
# one run that fits a short GPU loan (under 8 minutes on one modern GPU),
# with one text report of every figure.  kernels/NOTES.md says how to run it
# and what each part checks.
#
#   1. build      the rel binaries, the GPU tests and bench_gpu (make -j)
#   2. probe      is there a device? (test_gpu_kernels_rows --probe)  If not: say
#                 so, write it in the report, exit 3 — never a silent pass
#   3. kernels    tests/test_gpu_kernels_{rows,wkv7,products}: each kernel
#                 alone against the CPU engine
#   4. test-gpu   make test-gpu: golden fixtures, batches, bf16 bound
#   5. memcheck   compute-sanitizer memcheck on the kernel tests and on a
#                 whole forward (rwkv eval, multi-pass), racecheck and
#                 synccheck on the reduction and scan kernels; skipped, and said, when
#                 compute-sanitizer is not installed
#   6. daemon     rwkvd --device cuda:0, checkpoint, resumed on the CPU
#                 (tests/support/gpu_daemon_check.py), fp32 and bf16
#   7. bench      make bench-gpu
# Every part runs under its own `timeout`, so one hang costs that part only;
# the limits add up to 590 s, so the whole run fits one 10-minute device
# command even if every part hangs; a normal run takes far less (NOTES.md).  Progress goes to stdout as each part starts and ends.
#
# Output: $GPU_CHECK_DIR (default build/gpu-check): report.txt (figures,
# verdict per part, summary) and one <part>.log each with everything.
# Exit: 0 all parts passed (or were skipped with a reason), 1 a part
# failed, 3 no CUDA device.
#
# Options: --no-build (use what is built; the host test uses it).
# Environment: MAKE (make), GPU_CHECK_DIR, GPU_CHECK_JOBS (nproc),
# GPU_CHECK_BUILD (build/rel: where the binaries are).
set -u

build=1
for a in "$@"; do
    case "$a" in
    --no-build) build=0 ;;
    *) echo "usage: $0 [--no-build]" >&2; exit 2 ;;
    esac
done

MAKE=${MAKE:-make}
OUT=${GPU_CHECK_DIR:-build/gpu-check}
JOBS=${GPU_CHECK_JOBS:-$(nproc 2>/dev/null || echo 4)}
REL=${GPU_CHECK_BUILD:-build/rel}
REPORT=$OUT/report.txt
FIX=${RWKVD_FIXTURES:-../shared/fixtures}
# On a device machine only the checkout arrives: `make gpu-fixtures` staged
# what the checks read in build/gpu-fixtures, carried with the call.
if [ ! -d "$FIX" ] && [ -d build/gpu-fixtures ]; then
    FIX=$PWD/build/gpu-fixtures
fi
export RWKVD_FIXTURES="$FIX"
TINY=$FIX/models/tiny-rwkv-7v0-834K.safetensors
# the CLI has no CPU stand-in of its own: a rehearsal runs it on the CPU
DEV=cuda:0
[ "${RWKVD_TEST_GPU_ON_CPU:-}" = 1 ] && DEV=cpu
TEXT=$FIX/inputs/gpl-3.first4096.bin

mkdir -p "$OUT" || exit 1
: >"$REPORT" || exit 1
summary=""
failed=0
t_start=$(date +%s)

say() { echo "$*"; echo "$*" >>"$REPORT"; }

# run_part NAME LIMIT_S CMD...: runs CMD under timeout with output in
# $OUT/NAME.log; its figures ('#' lines), test verdicts and, on failure, the
# log's tail go to the report.  Sets $rc.
run_part() {
    name=$1 limit=$2
    shift 2
    log=$OUT/$name.log
    echo ">> [$(date +%H:%M:%S)] $name (limit ${limit}s): $*"
    {
        echo
        echo "== $name: $* (limit ${limit}s)"
    } >>"$REPORT"
    t0=$(date +%s)
    timeout -k 10 "$limit" "$@" >"$log" 2>&1
    rc=$?
    secs=$(( $(date +%s) - t0 ))
    grep -E '^(#|PASS: |FAIL: |SKIP: |========= ERROR SUMMARY|rel +test_)' "$log" >>"$REPORT"
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        verdict="TIMED OUT after ${limit}s"
    elif [ "$rc" -ne 0 ]; then
        verdict="FAILED (exit $rc)"
    else
        verdict=ok
    fi
    if [ "$verdict" != ok ]; then
        failed=1
        echo "-- last lines of $log:" >>"$REPORT"
        tail -n 25 "$log" | sed 's/^/   | /' >>"$REPORT"
    fi
    say "-- $name: $verdict (${secs}s; log $log)"
    summary="$summary$(printf '%-18s %-28s %5ss' "$name" "$verdict" "$secs")
"
}

skip_part() {
    say ""
    say "== $1: SKIPPED: $2"
    summary="$summary$(printf '%-18s %-28s' "$1" "skipped: $2")
"
}

finish() {
    {
        echo
        echo "== summary ($(( $(date +%s) - t_start ))s in all)"
        printf '%s' "$summary"
    } >>"$REPORT"
    echo ">> report: $REPORT"
    printf '%s' "$summary"
    exit "$1"
}

say "rwkvd gpu-check, $(date -u '+%Y-%m-%d %H:%M:%S UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with local changes)')"
say "fixtures: $FIX"
if command -v nvidia-smi >/dev/null 2>&1; then
    say "nvidia-smi: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -n 4 | tr '\n' ';')"
fi

# 1. build ---------------------------------------------------------------
if [ "$build" -eq 1 ]; then
    run_part build 150 "$MAKE" -j"$JOBS" gpu-check-build
    [ "$rc" -ne 0 ] && finish 1
fi

# 2. probe ---------------------------------------------------------------
K=$REL/tests/test_gpu_kernels
if [ ! -x "${K}_rows" ]; then
    say "gpu-check: ${K}_rows is not built (run make gpu-check)"
    finish 1
fi
probe=$(timeout 15 "${K}_rows" --probe 2>&1)
prc=$?
say "$probe"
case "$probe" in *RWKVD_TEST_GPU_ON_CPU*) say "gpu-check: REHEARSAL on the CPU (RWKVD_TEST_GPU_ON_CPU=1): no figure below is a GPU figure" ;; esac
if [ "$prc" -ne 0 ]; then
    say "gpu-check: NO CUDA DEVICE: nothing was checked on a GPU (exit 3)"
    summary="probe              no CUDA device: nothing checked
"
    finish 3
fi
summary="$summary$(printf '%-18s %s' probe "$probe" | head -c 200)
"

# 3-7 ---------------------------------------------------------------------
run_part kernels-rows 20 "${K}_rows"
run_part kernels-wkv7 15 "${K}_wkv7"
run_part kernels-products 25 "${K}_products"
run_part test-gpu 115 "$MAKE" --no-print-directory test-gpu
for t in build/test-logs/rel-test_gpu_*.log build/test-logs/rel-test_cuda_*.log; do
    # the per-kernel programs' figures are in the kernels parts already
    case "$t" in *test_gpu_kernels*) continue ;; esac
    [ -f "$t" ] || continue
    echo "-- figures of $t:" >>"$REPORT"
    grep '^#' "$t" >>"$REPORT"
done

CS=$(command -v compute-sanitizer 2>/dev/null)
for d in /usr/local/cuda/bin /usr/local/cuda-*/bin /opt/nvidia/compute-sanitizer; do
    [ -n "$CS" ] && break
    [ -x "$d/compute-sanitizer" ] && CS=$d/compute-sanitizer
done
if [ -z "$CS" ]; then
    skip_part memcheck "compute-sanitizer not installed (looked on PATH and in /usr/local/cuda*/bin)"
else
    # every kernel, the head's at small vocabularies only (instrumented, the
    # 65536-wide product would take the whole limit)
    MC="$CS --tool memcheck --error-exitcode 9 --leak-check full"
    run_part memcheck-kernels 45 sh -c "$MC ${K}_rows && $MC ${K}_wkv7 &&
        $MC ${K}_products test_head_and_surprisal_small test_gemm test_colsum"
    # a whole forward, 256-row passes (multi-pass, every kernel, cuBLAS)
    run_part memcheck-forward 30 env RWKV_CUDA_PASS_ROWS=256 "$CS" --tool memcheck \
        --error-exitcode 9 "$REL/bin/rwkv" eval -m "$TINY" --bytes --device $DEV -b 333 -q "$TEXT"
    RC="$CS --tool racecheck --error-exitcode 9"
    run_part racecheck 25 sh -c "$RC ${K}_wkv7 && $RC ${K}_rows test_ln_shift &&
        $RC ${K}_products test_head_and_surprisal_small"
    # barriers reached by part of a block (the LN of the row above is
    # skipped for a segment's first row: it must be skipped block-wide)
    SC="$CS --tool synccheck --error-exitcode 9"
    run_part synccheck 25 sh -c "$SC ${K}_wkv7 && $SC ${K}_rows test_ln_shift &&
        $SC ${K}_products test_head_and_surprisal_small"
fi

run_part daemon 45 /usr/bin/python3 tests/support/gpu_daemon_check.py
run_part bench-gpu 80 "$MAKE" --no-print-directory bench-gpu
# bench_gpu's figures are plain lines: all of it goes to the report
echo "-- bench_gpu output:" >>"$REPORT"
grep -v '^make' "$OUT/bench-gpu.log" >>"$REPORT"

finish "$failed"
