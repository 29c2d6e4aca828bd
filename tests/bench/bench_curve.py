#!/usr/bin/python3
"""bench_curve.py — daemon throughput with CURVE on against off (make bench).

Two daemons on the same model, one plaintext and one with
--curve-secret-key and the three allow-lists (tests/support/curve_harness.py),
both on tcp://127.0.0.1 (where CURVE is meant to be used), fed the same
`tokens` payloads (uint32 bins: no tokenizer cost on either side), block
size 256, per-block embedding + surprisal outputs; first message sent ->
final received.  Rounds alternate between the two daemons and the best of
each is compared, because this machine is shared.  Beside the wall-clock
throughput, the daemon's own CPU time per run (utime + stime from
/proc/PID/stat) is compared: other work on the machine stretches wall time
but hardly the CPU seconds the daemon itself spends, encryption included.

Models: the RWKV-7 0.1B shape (random, `rwkv mkmodel L12-D768-H64-V65536`;
target: CURVE on >= 0.95 of off) and the tiny fixture model (834K
parameters), where the engine is so cheap that per-message costs,
encryption included, are as visible as they get.
Environment: BENCH_TOKENS (0.1B shape, default 2048), BENCH_TINY_TOKENS
(default 262144), BENCH_ROUNDS (3), BENCH_THREADS (0 = one per CPU).
"""
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "support"))
from bench_daemon import BLOCK, SHAPE, daemon_run, mkmodel  # noqa: E402
from curve_harness import CurveDaemon, make_keys  # noqa: E402
from rwkvd_harness import (REL_BIN, RWKV_CLI, Daemon, Work, check, free_tcp_port,  # noqa: E402
                           tiny_model, tiny_text)

TOKENS = int(os.environ.get("BENCH_TOKENS", "2048"))
TINY_TOKENS = int(os.environ.get("BENCH_TINY_TOKENS", "262144"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
THREADS = int(os.environ.get("BENCH_THREADS", "0")) or os.cpu_count()


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def on_tcp(d):
    d.ingest_ep, d.emit_ep, d.control_ep = ("tcp://127.0.0.1:%d" % free_tcp_port() for _ in range(3))
    return d


def compare(w, model, tokens, tag):
    data = (tiny_text() * (tokens // 4096 + 1))[:tokens]
    ids = list(data)
    args = ["--vocab", "bytes", "--block-size", str(BLOCK), "--linger-ms", "100"]
    kdir = os.path.join(w, tag + "-keys")
    os.mkdir(kdir)
    keys, dirs = make_keys(REL_BIN, kdir)
    plain = on_tcp(Daemon(w, model=model, threads=THREADS, tag=tag + "-plain",
                          state_dir=os.path.join(w, tag + "-plain"), args=args)).start()
    curve = on_tcp(CurveDaemon(w, keys, dirs, model=model, threads=THREADS, tag=tag + "-curve",
                               state_dir=os.path.join(w, tag + "-curve"), args=args)).start()
    off, on, off_cpu, on_cpu = [], [], [], []
    for r in range(ROUNDS):
        for d, out, cpu in ((plain, off, off_cpu), (curve, on, on_cpu)):
            doc = "%s-%d" % (tag, r)
            c0 = cpu_s(d.pid)
            out.append(daemon_run(d, doc, ids))
            cpu.append(cpu_s(d.pid) - c0)
            d.call(cmd="drop", doc=doc)
    st = curve.call(cmd="status")
    check(st["messages_total"] == ROUNDS * ((tokens + 1023) // 1024), "curve daemon status %r" % st)
    plain.stop()
    curve.stop()
    return off, on, off_cpu, on_cpu


def main():
    check(os.access(RWKV_CLI, os.X_OK) and os.access(REL_BIN, os.X_OK), "make the binaries first")
    load0 = os.getloadavg()[0]
    rows = []
    with Work() as w:
        t0 = time.time()
        model = mkmodel(w, SHAPE)
        t_make = time.time() - t0
        rows.append(("%s random (bf16), %d tokens" % (SHAPE, TOKENS), 0.95,
                     compare(w, model, TOKENS, "big")))
        rows.append(("tiny fixture model, %d tokens" % TINY_TOKENS, None,
                     compare(w, tiny_model(), TINY_TOKENS, "tiny")))
    print()
    print("rwkvd throughput, CURVE on vs off: tcp://127.0.0.1, block %d, embedding+surprisal, "
          "tokens payloads of 1024 ids, %d thread(s), best of %d alternating rounds"
          % (BLOCK, THREADS, ROUNDS))
    print("%-44s %12s %12s %7s" % ("model", "off tok/s", "on tok/s", "on/off"))
    for name, target, (off, on, _, _) in rows:
        ratio = max(on) / max(off)
        verdict = "" if target is None else (
            "  target >= %.2f %s" % (target, "met" if ratio >= target else "NOT met"))
        print("%-44s %12.1f %12.1f %7.3f%s" % (name, max(off), max(on), ratio, verdict))
        print("%-44s %12s %12s %7.3f  (ratio of medians)"
              % ("  every round", " ".join("%.0f" % x for x in off), " ".join("%.0f" % x for x in on),
                 statistics.median(on) / statistics.median(off)))
    print("daemon CPU seconds per run (utime+stime; less sensitive to other load), median:")
    for name, _, (_, _, off_cpu, on_cpu) in rows:
        print("%-44s %12.2f %12.2f %7.3f  (on/off CPU; every round: %s | %s)"
              % (name, statistics.median(off_cpu), statistics.median(on_cpu),
                 statistics.median(on_cpu) / statistics.median(off_cpu),
                 " ".join("%.2f" % x for x in off_cpu), " ".join("%.2f" % x for x in on_cpu)))
    print("  load average %.2f at start, %.2f at the end on %d CPUs (model creation %.1f s, not "
          "measured)" % (load0, os.getloadavg()[0], os.cpu_count(), t_make))


if __name__ == "__main__":
    main()
