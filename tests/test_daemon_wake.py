#!/usr/bin/python3
"""test_daemon_wake.py — work left on disk continues after a restart without
any new message.

A producer's last message (with eof) may bring many blocks at once; the
daemon checkpoints while working through them.  If it is killed then, the
eof message is already counted (resume says next_seq = 1), so the producer
sends nothing more: the daemon itself must find the document's unfinished
work on disk at start-up and finish it.  The outputs of the two runs
together must equal an uninterrupted run byte for byte, final included.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "support"))
from rwkvd_harness import (ASAN_BIN, REL_BIN, Daemon, Work, check, collect_docs,
                           ingest, recv_until, run_cases, tiny_text, unpack)

BLOCK = 16
ARGS = ["--block-size", str(BLOCK), "--checkpoint-blocks", "1", "--checkpoint-seconds", "0",
        "--linger-ms", "100"]
OPTS = {"outputs": ["embedding", "surprisal"], "pooling": "mean", "normalize": False}


def reference(work, binary):
    d = Daemon(work, state_dir=os.path.join(work, "ref-state"), binary=binary, args=ARGS,
               tag="ref").start()
    pull, push = d.pull(), d.push()
    push.send(ingest("doc", 0, tiny_text(), eof=True, opts=OPTS))
    res = collect_docs(pull, ["doc"], timeout=120, daemon=d)["doc"]
    d.stop()
    return res["raw"]


def case_wake_after_kill(binary):
    with Work() as work:
        ref = reference(work, binary)
        n_blocks = len(ref) - 1
        d = Daemon(work, binary=binary, args=ARGS, tag="k").start()
        pull, push = d.pull(), d.push()
        push.send(ingest("doc", 0, tiny_text(), eof=True, opts=OPTS))
        seen = {}
        # let a third of the blocks out (and be checkpointed), then kill
        keep = []
        recv_until(pull, lambda o: o.get("type") == "block" and o["block"] >= n_blocks // 3,
                   timeout=120, daemon=d, keep=keep)
        d.kill9()
        for raw in keep:
            o = unpack(raw)
            seen.setdefault(o["block"], raw)
        d.start()
        r = d.call(cmd="resume", doc="doc")
        check(r["known"] and r["next_seq"] == 1 and not r["finished"],
              "resume after the kill: %r (the eof message must count as received)" % (r,))
        # no message is sent: the daemon must finish the document by itself
        keep = []
        recv_until(pull, lambda o: o.get("type") == "final", timeout=120, daemon=d, keep=keep)
        for raw in keep:
            o = unpack(raw)
            key = o["block"] if o["type"] == "block" else "final"
            if key in seen:
                check(seen[key] == raw, "block %r re-emitted with different bytes" % (key,))
            seen[key] = raw
        missing = [k for k in ref if k not in seen]
        check(not missing, "outputs missing after the restart: %r" % (missing[:10],))
        diff = [k for k in ref if seen[k] != ref[k]]
        check(not diff, "outputs differ from the uninterrupted run: %r" % (diff[:10],))
        r = d.call(cmd="resume", doc="doc")
        check(r["finished"], "document not finished: %r" % (r,))
        d.stop()


if __name__ == "__main__":
    run_cases([("restart finishes work left on disk (eof received, blocks pending) (rel)",
                lambda: case_wake_after_kill(REL_BIN), "rel"),
               ("restart finishes work left on disk (eof received, blocks pending) (asan)",
                lambda: case_wake_after_kill(ASAN_BIN), "asan")])
