#!/usr/bin/python3
"""test_daemon_generations.py — rwkvd on the RWKV-4, 5.0 (5v1 fixture), 5.2
and 6 fixture models, end to end.

The engine's golden tests cover these generations inside one process; this
covers what the daemon adds for them: the fixture text in random splits
through a real daemon gives the official surprisal of every token, ln_out at
the fixture's hidden positions and hidden_last (fixture_check, manifest
tolerances), and a document stopped half-way (SIGTERM: its state, whose
layout differs per generation, goes into a checkpoint), resumed by a new
daemon process and finished gives the uninterrupted run's outputs byte for
byte.
"""
import os
import random
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "support"))
from fixture_check import RAW, Ref, check_doc
from rwkvd_harness import (ASAN_BIN, REL_BIN, Daemon, Work, check, fixture_path,
                           interrupted_run, random_split, run_cases, run_doc)

BLOCK = 64
ARGS = ["--block-size", str(BLOCK), "--linger-ms", "100"]
MODELS = ["tiny-rwkv-4v0-660K", "tiny-rwkv-5v1-730K", "tiny-rwkv-5v2-730K", "tiny-rwkv-6v0-3m"]


def generation(name, binary):
    r = Ref(name)
    model = fixture_path("models/%s.safetensors" % name)
    rng = random.Random(sum(map(ord, name)))
    with Work() as w:
        d = Daemon(w, model=model, binary=binary, args=ARGS, tag="full").start()
        full = run_doc(d, "g", random_split(r.text, rng, 9), RAW)
        n = check_doc(r, full, BLOCK)
        check(n > 0, "no hidden position fell on a block end")
        d.stop()

        # half the document, SIGTERM (checkpoint), a new process finishes it
        parts = random_split(r.text, rng, 8)
        d2 = Daemon(w, model=model, binary=binary, args=ARGS, state_dir=os.path.join(w, "half"),
                    tag="half").start()
        union = interrupted_run(d2, "g", parts, 4, sum(len(p) for p in parts[:4]) // BLOCK - 1,
                                opts=RAW)
        check(set(union) == set(full["raw"]), "%s: outputs %d, uninterrupted %d"
              % (name, len(union), len(full["raw"])))
        diff = [k for k in full["raw"] if union[k] != full["raw"][k]]
        check(not diff, "%s: outputs after the restart differ from the uninterrupted run: %r"
              % (name, diff[:10]))


if __name__ == "__main__":
    run_cases([("daemon on %s (%s): fixtures through random splits, SIGTERM mid-document and "
                "resume == uninterrupted" % (m, f), lambda m=m, b=b: generation(m, b), f)
               for f, b in (("rel", REL_BIN), ("asan", ASAN_BIN)) for m in MODELS])
