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
from rwkvd_harness import (ASAN_BIN, REL_BIN, Daemon, Work, check, collect_docs, fixture_path,
                           ingest, random_split, run_cases, send_doc, unpack)

BLOCK = 64
ARGS = ["--block-size", str(BLOCK), "--linger-ms", "100"]
MODELS = ["tiny-rwkv-4v0-660K", "tiny-rwkv-5v1-730K", "tiny-rwkv-5v2-730K", "tiny-rwkv-6v0-3m"]


def whole_doc(d, doc, parts):
    push, pull = d.push(), d.pull()
    send_doc(push, doc, parts, opts=RAW)
    res = collect_docs(pull, [doc], timeout=120, daemon=d)[doc]
    push.close(0)
    pull.close(0)
    return res


def generation(name, binary):
    r = Ref(name)
    model = fixture_path("models/%s.safetensors" % name)
    rng = random.Random(sum(map(ord, name)))
    with Work() as w:
        d = Daemon(w, model=model, binary=binary, args=ARGS, tag="full").start()
        full = whole_doc(d, "g", random_split(r.text, rng, 9))
        n = check_doc(r, full, BLOCK)
        check(n > 0, "no hidden position fell on a block end")
        d.stop()

        # half the document, SIGTERM (checkpoint), a new process finishes it
        parts = random_split(r.text, rng, 8)
        d2 = Daemon(w, model=model, binary=binary, args=ARGS, state_dir=os.path.join(w, "half"),
                    tag="half")
        d2.start()
        push, pull = d2.push(), d2.pull()
        for i, p in enumerate(parts[:4]):
            push.send(ingest("g", i, p, opts=RAW if i == 0 else None))
        seen = {}
        want_blocks = sum(len(p) for p in parts[:4]) // BLOCK - 1
        while len(seen) < want_blocks:
            check(pull.poll(60000), "%s: only %d of %d blocks before the stop"
                  % (name, len(seen), want_blocks))
            raw = pull.recv()
            seen[unpack(raw)["block"]] = raw
        push.close(0)
        pull.close(0)
        d2.stop()
        d2.start()
        rs = d2.call(cmd="resume", doc="g")
        check(rs["known"] and rs["next_seq"] == 4, "%s: resume after SIGTERM %r" % (name, rs))
        push, pull = d2.push(), d2.pull()
        send_doc(push, "g", parts[4:], start_seq=4)
        rest = collect_docs(pull, ["g"], timeout=120, daemon=d2)["g"]
        push.close(0)
        pull.close(0)
        d2.stop()
        union = dict(seen)
        for key, raw in rest["raw"].items():
            check(key not in union or union[key] == raw,
                  "%s: block %r sent twice with different bytes" % (name, key))
            union[key] = raw
        check(set(union) == set(full["raw"]), "%s: outputs %d, uninterrupted %d"
              % (name, len(union), len(full["raw"])))
        diff = [k for k in full["raw"] if union[k] != full["raw"][k]]
        check(not diff, "%s: outputs after the restart differ from the uninterrupted run: %r"
              % (name, diff[:10]))


if __name__ == "__main__":
    run_cases([("daemon on %s (%s): fixtures through random splits, SIGTERM mid-document and "
                "resume == uninterrupted" % (m, f), lambda m=m, b=b: generation(m, b), f)
               for f, b in (("rel", REL_BIN), ("asan", ASAN_BIN)) for m in MODELS])
