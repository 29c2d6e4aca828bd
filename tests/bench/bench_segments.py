#!/usr/bin/python3
"""bench_segments.py — what per-line segment outputs cost (make bench).

A synthetic log (tests/support/synth_log.py) goes through rwkvd twice per
round: with `outputs: ["surprisal"]` only, and with the same plus
`segment: "line"` (protocol v 2).  Time = first message sent -> final
received; runs alternate and the best of each is kept (shared machine).
Printed: tokens/s of both, their ratio (target >= 0.95), and output bytes
per input line (segments messages alone, and everything).
Models: the tiny fixture model (byte-level) and a random model of the
RWKV-7 0.1B shape (L12-D768-H64-V65536, World tokenizer), which is slow on
a CPU, hence its own smaller size.
Environment: BENCH_SEG_MB (default 2; the issue's figure is for 100),
BENCH_SEG_BIG_MB (0.05), BENCH_ROUNDS (3), BENCH_THREADS (0: one per CPU).
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "support"))
import synth_log
from rwkvd_harness import (RWKV_CLI, Daemon, Work, check, fixture_path, ingest, tiny_model,
                           unpack)

MB = float(os.environ.get("BENCH_SEG_MB", "2"))
BIG_MB = float(os.environ.get("BENCH_SEG_BIG_MB", "0.05"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
THREADS = int(os.environ.get("BENCH_THREADS", "0")) or os.cpu_count()
CHUNK = 1 << 20


def log_of(mb):
    lines = max(100, int(mb * 1e6 / 52))
    text, _ = synth_log.generate(lines, n_each=max(1, lines // 2000), warmup=min(2000, lines // 4))
    return text


def run(d, doc, text, opts):
    """Seconds from the first message to the final, and bytes per output type."""
    push, pull = d.push(), d.pull()
    parts = [text[i:i + CHUNK] for i in range(0, len(text), CHUNK)]
    t0 = time.time()
    for i, p in enumerate(parts):
        push.send(ingest(doc, i, p, eof=i == len(parts) - 1, opts=opts if i == 0 else None, v=2))
    sizes, tokens = {}, 0
    while True:
        check(pull.poll(600000), "no output for 600 s")
        raw = pull.recv()
        # the type without decoding the whole message (a slow consumer would
        # hold the daemon back through the emit high-water mark): every
        # output starts {"v": <fixint>, "type": <fixstr>, ...
        typ = raw[10:10 + (raw[9] & 0x1f)].decode()
        sizes[typ] = sizes.get(typ, 0) + len(raw)
        check(typ != "error", "error output: %r" % unpack(raw))
        if typ == "final":
            tokens = unpack(raw)["tokens"]
            break
    secs = time.time() - t0
    push.close(0)
    pull.close(0)
    return secs, tokens, sizes


def bench(name, model, text, args):
    n_lines = text.count(b"\n")
    plain = {"outputs": ["surprisal"]}
    seg = {"outputs": ["surprisal"], "segment": "line"}
    best = {"plain": None, "segments": None}
    with Work() as w:
        d = Daemon(w, model=model, args=args + ["--block-size", "256"], threads=THREADS).start()
        for r in range(ROUNDS):
            for kind, opts in (("plain", plain), ("segments", seg)):
                secs, tokens, sizes = run(d, "%s-%d" % (kind, r), text, opts)
                if best[kind] is None or secs < best[kind][0]:
                    best[kind] = (secs, tokens, sizes)
        d.stop()
    (tp, tok, sp), (ts, _, ss) = best["plain"], best["segments"]
    ratio = tp / ts
    print("%s: %.2f MB, %d lines, %d tokens, %d threads" % (name, len(text) / 1e6, n_lines, tok,
                                                             THREADS))
    print("  plain surprisal   %10.0f tok/s" % (tok / tp))
    print("  + segments        %10.0f tok/s   ratio %.3f (target >= 0.95)%s"
          % (tok / ts, ratio, "" if ratio >= 0.95 else "  BELOW TARGET"))
    print("  output bytes per input line: segments messages %.1f, all outputs %.1f "
          "(plain: %.1f)" % (ss.get("segments", 0) / n_lines, sum(ss.values()) / n_lines,
                             sum(sp.values()) / n_lines), flush=True)


def main():
    check(os.access(RWKV_CLI, os.X_OK), "missing %s (make it)" % RWKV_CLI)
    bench("tiny fixture model (RWKV-7, byte-level)", tiny_model(), log_of(MB), [])
    with Work() as w:
        big = os.path.join(w, "big.safetensors")
        subprocess.run([RWKV_CLI, "mkmodel", "--shape", "L12-D768-H64-V65536", "--seed", "1",
                        "--dtype", "bf16", "-q", big], check=True)
        bench("random model, RWKV-7 0.1B shape (World tokenizer)", big, log_of(BIG_MB),
              ["--vocab", fixture_path("tokenizer/rwkv_vocab_v20230424.txt")])


if __name__ == "__main__":
    main()
