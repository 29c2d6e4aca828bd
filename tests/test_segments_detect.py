#!/usr/bin/python3
"""test_segments_detect.py — do segment scores find anomalous log lines?

A synthetic log (tests/support/synth_log.py: 50,000 lines from 30
templates with random fields, 20 injected lines of each anomaly kind after a
2,000-line warm-up) is scored with the tiny fixture model through
`rwkv eval --segments line --out-segments` (the same records the daemon
sends).  Lines are ranked by score, ties (scores saturate at 1 for lines
above everything before them) broken by mean surprisal.  Required: every
random-byte and binary line is in the top 1%.  Printed, with no target (it
depends on the model): recall at 0.5%, 1%, 2% and 5% for every kind.
The byte-level tiny model was trained on English text, so a log's random
fields are already surprising to it; the required kinds are the ones no
language model should confuse with a log line.
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "support"))
import synth_log
from rwkvd_harness import RWKV_CLI, Work, check, fixture_path, run_cases

MODEL = "tiny-rwkv-4v0-660K"  # the fastest fixture model (4 layers)
N_LINES = 50000


def test_detection():
    text, kinds = synth_log.generate(N_LINES, n_each=20, warmup=2000, seed=1)
    with Work() as w:
        inp, out = os.path.join(w, "synth.log"), os.path.join(w, "segs.jsonl")
        with open(inp, "wb") as f:
            f.write(text)
        subprocess.run([RWKV_CLI, "eval", "--model", fixture_path("models/%s.safetensors" % MODEL),
                        "--bytes", "-q", "-t", "2", "--block", "1024", "--segments", "line",
                        "--out-segments", out, inp], check=True)
        with open(out) as f:
            segs = [json.loads(ln) for ln in f]
    check(len(segs) == N_LINES, "%d segments for %d lines" % (len(segs), N_LINES))
    def key(g):
        n = g["tok_end"] - g["tok_start"] - (1 if g["tok_start"] == 0 else 0)
        mean = g["surprisal_sum"] / n if g["surprisal_sum"] is not None and n else 0.0
        return (g["score"] if g["score"] is not None else 0.0, mean)
    order = sorted(range(len(segs)), key=lambda i: key(segs[i]), reverse=True)
    rank = {i: r for r, i in enumerate(order)}
    total = {k: sum(1 for x in kinds if x == k) for k in synth_log.KINDS}
    for frac in (0.005, 0.01, 0.02, 0.05):
        top = int(N_LINES * frac)
        rec = {k: sum(1 for i, x in enumerate(kinds) if x == k and rank[i] < top) / total[k]
               for k in synth_log.KINDS}
        print("recall@%d (%.1f%%): %s" % (top, frac * 100,
                                          ", ".join("%s %.2f" % (k, rec[k]) for k in synth_log.KINDS)),
              flush=True)
    top1 = int(N_LINES * 0.01)
    for k in ("random", "binary"):
        worst = max(rank[i] for i, x in enumerate(kinds) if x == k)
        check(worst < top1, "a %s line ranks %d, outside the top 1%% (%d)" % (k, worst, top1))
    flagged = sum(1 for g in segs if g["anomalous"])
    print("anomalous (score > 0.99 after 100 lines): %d lines, %d of them injected" %
          (flagged, sum(1 for i, g in enumerate(segs) if g["anomalous"] and kinds[i])), flush=True)


if __name__ == "__main__":
    run_cases([("random-byte and binary lines in the top 1% of 50,000 log lines", test_detection)])
