#!/usr/bin/python3
"""test_daemon_ckpt.py — damaged and foreign checkpoint files (PROTOCOL.md §8.1).

Two documents get two checkpoint generations each (explicit `checkpoint`
requests at known points: next_seq 1 / 15 blocks, then next_seq 2 / 31
blocks), the daemon stops, and the newest file of document A is damaged in
one way after another: bytes flipped in the magic, the header, the payload
and its last byte, cut short at several lengths, emptied, grown by a byte.
Each time a fresh daemon must report, on `resume`, the previous generation
(next_seq 1), log the refusal of the newest naming the file, and — once —
continue the document from there to outputs byte-identical to an
uninterrupted run.  Both generations damaged: `resume` refuses with
checkpoint_bad naming the file, a message for A gets the same error output,
and document B, on disk beside it, still completes correctly.  A daemon on
the bf16 copy of the model (another sha256, so "another model") refuses A
with other_model, and so does a daemon on the same model at another
precision (--precision bf16).  The daemon must never crash.

Runs against the rel binary and once against the ASan+UBSan binary, so the
sanitizers watch the checkpoint decoder on real damaged files.
"""
import os
import shutil
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "support"))
from rwkvd_harness import (ASAN_BIN, REL_BIN, TINY, Daemon, TestFailure, Work, check,
                           fixture_path, ingest, run_cases, tiny_text, unpack)

BLOCK = 64
ARGS = ["--block-size", str(BLOCK), "--checkpoint-blocks", "0", "--checkpoint-seconds", "0",
        "--linger-ms", "100"]
OPTS = {"outputs": ["embedding", "surprisal"], "pooling": "mean", "normalize": False}
T = 2048                       # tokens per document (ASan runs the model slowly)
CUTS = [0, 1000, 2000, T]      # seq k = text[CUTS[k]:CUTS[k+1]], eof on seq 2
DOCS = ["A", "B"]
N_BLOCKS = T // BLOCK


def msg(doc, seq):
    text = tiny_text()
    return ingest(doc, seq, text[CUTS[seq]:CUTS[seq + 1]], eof=(seq == 2),
                  opts=OPTS if seq == 0 else None)


def ckpt_name(doc):
    return "d-%s.ckpt" % doc.encode().hex()


class Collector:
    """Outputs of one emit socket, each checked against the reference run."""

    def __init__(self, d, ref=None):
        self.d = d
        self.pull = d.pull()
        self.ref = ref
        self.seen = {}
        self.errors = []

    def _take(self, timeout):
        if not self.pull.poll(int(timeout * 1000)):
            self.d.check_running()
            return None
        raw = self.pull.recv()
        out = unpack(raw)
        if out["type"] == "error":
            self.errors.append(out)
        elif out["type"] in ("block", "final"):
            key = (out["doc"], out.get("block", "final"))
            if self.ref is not None:
                check(self.ref.get(key) == raw, "output %r differs from the uninterrupted run" % (key,))
            self.seen[key] = raw
        return out

    def wait(self, pred, timeout=60.0, what="outputs"):
        import time
        end = time.time() + timeout
        while not pred(self):
            if time.time() > end:
                raise TestFailure("timed out waiting for %s" % what)
            self._take(0.5)

    def close(self):
        self.pull.close(0)


def reference(w, binary):
    d = Daemon(w, state_dir=os.path.join(w, "ref-state"), binary=binary, args=ARGS, tag="ref").start()
    c = Collector(d)
    push = d.push()
    for doc in DOCS:
        for seq in range(3):
            push.send(msg(doc, seq))
    c.wait(lambda c: all((doc, "final") in c.seen for doc in DOCS), what="reference finals")
    check(not c.errors, "reference run errors: %r" % c.errors)
    check(len(c.seen) == 2 * (N_BLOCKS + 1), "reference: %d outputs" % len(c.seen))
    push.close(0)
    c.close()
    d.stop()
    return dict(c.seen)


def damage(path, how):
    with open(path, "rb") as f:
        b = bytearray(f.read())
    n = len(b)
    if how == "magic":
        b[3] ^= 0x20
    elif how == "header":
        b[50] ^= 0x01
    elif how == "payload":
        b[n - n // 3] ^= 0x80
    elif how == "last_byte":
        b[n - 1] ^= 0xFF
    elif how == "cut_1":
        b = b[:n - 1]
    elif how == "cut_header":
        b = b[:100]
    elif how == "cut_payload":
        b = b[:n // 2 + 120]
    elif how == "empty":
        b = b""
    elif how == "grown":
        b += b"\0"
    else:
        raise ValueError(how)
    with open(path, "wb") as f:
        f.write(bytes(b))


DAMAGES = ["magic", "header", "payload", "last_byte", "cut_1", "cut_header", "cut_payload",
           "empty", "grown"]


def cpu_has_bf16():
    with open("/proc/cpuinfo") as f:
        return " avx512_bf16" in f.read()


def resume(d, doc):
    return d.call(cmd="resume", doc=doc)


def corruption(binary):
    with Work() as w:
        ref = reference(w, binary)
        state = os.path.join(w, "state")
        d = Daemon(w, state_dir=state, binary=binary, args=ARGS, tag="c").start()
        c = Collector(d, ref)
        push = d.push()
        # generation 1: 15 blocks done, next_seq 1
        for doc in DOCS:
            push.send(msg(doc, 0))
        c.wait(lambda c: all((doc, 14) in c.seen for doc in DOCS), what="blocks 0..14")
        for doc in DOCS:
            r = d.call(cmd="checkpoint", doc=doc)
            check(r.get("ok") and r.get("written") == 1 and r.get("failed") == 0,
                  "checkpoint %s: %r" % (doc, r))
        # generation 2: 31 blocks, next_seq 2
        for doc in DOCS:
            push.send(msg(doc, 1))
        c.wait(lambda c: all((doc, 30) in c.seen for doc in DOCS), what="blocks 15..30")
        for doc in DOCS:
            r = d.call(cmd="checkpoint", doc=doc)
            check(r.get("ok") and r.get("written") == 1, "checkpoint %s: %r" % (doc, r))
        push.close(0)
        c.close()
        d.stop()
        check(not c.errors, "errors: %r" % c.errors)
        newest = os.path.join(state, ckpt_name("A"))
        prev = newest + ".prev"
        check(os.path.isfile(newest) and os.path.isfile(prev), "two generations of A on disk: %r"
              % sorted(os.listdir(state)))
        good = {p: open(p, "rb").read() for p in (newest, prev)}

        def restore():
            for p, b in good.items():
                with open(p, "wb") as f:
                    f.write(b)

        d.start()
        r = resume(d, "A")
        check(r.get("ok") and r["where"] == "disk" and r["next_seq"] == 2 and r["blocks"] == 31
              and r["known"] and not r["finished"], "undamaged resume: %r" % r)
        d.stop()

        # newest damaged, every way: the previous generation is used
        for how in DAMAGES:
            restore()
            damage(newest, how)
            d.start()
            r = resume(d, "A")
            check(r.get("ok") and r.get("where") == "disk" and r.get("next_seq") == 1
                  and r.get("blocks") == 15,
                  "newest damaged (%s): resume %r, expected the previous generation" % (how, r))
            rb = resume(d, "B")
            check(rb.get("ok") and rb["next_seq"] == 2, "B beside a damaged A: %r" % rb)
            d.stop()

        # continue A from the previous generation: identical to the uninterrupted run
        restore()
        damage(newest, "payload")
        d.start()
        c = Collector(d, ref)
        push = d.push()
        r = resume(d, "A")
        check(r.get("next_seq") == 1, "resume %r" % r)
        push.send(msg("A", 1))
        push.send(msg("A", 2))
        c.wait(lambda c: ("A", "final") in c.seen, what="A's final after the fallback")
        missing = [k for k in range(15, N_BLOCKS) if ("A", k) not in c.seen]
        check(not missing, "blocks missing after the fallback: %r" % missing[:10])
        check(not c.errors, "errors: %r" % c.errors)
        log = d.log_text()
        check(any(ckpt_name("A") in l and "previous generation" in l for l in log.splitlines()),
              "the refusal of the newest generation is not logged naming %s" % ckpt_name("A"))
        push.close(0)
        c.close()
        d.stop()

        # both generations damaged: refused, named; B keeps flowing
        restore()
        damage(newest, "payload")
        damage(prev, "cut_payload")
        d.start()
        c = Collector(d, ref)
        push = d.push()
        r = resume(d, "A")
        check(r.get("ok") is False and r.get("reason") == "checkpoint_bad",
              "both damaged: resume %r, expected checkpoint_bad" % r)
        check(ckpt_name("A") in r.get("message", ""), "the refusal does not name the file: %r" % r)
        push.send(msg("A", 2))
        push.send(msg("B", 2))
        c.wait(lambda c: ("B", "final") in c.seen and c.errors, what="B's final and A's error")
        e = c.errors[0]
        check(e["doc"] == "A" and e["seq"] == 2 and e["reason"] == "checkpoint_bad"
              and ckpt_name("A") in e["message"], "error output %r" % e)
        check(len(c.errors) == 1, "more errors than expected: %r" % c.errors)
        missing = [k for k in range(31, N_BLOCKS) if ("B", k) not in c.seen]
        check(not missing, "B's blocks missing: %r" % missing[:10])
        h = d.call(cmd="health")
        check(h.get("ok") and h.get("status") in ("ok", "degraded"), "health %r" % h)
        st = d.call(cmd="status")
        check(st["rejected"]["checkpoint_bad"] >= 2, "rejected counts %r" % st["rejected"])
        check("checkpoint_bad" in d.log_text(), "the refusal is not logged")
        push.close(0)
        c.close()
        d.stop()

        # another model (the bf16 copy: other sha256)
        restore()
        bf16 = fixture_path("models/%s.bf16.safetensors" % TINY)
        d2 = Daemon(w, state_dir=state, binary=binary, model=bf16, args=ARGS, tag="bf16").start()
        c = Collector(d2)
        push = d2.push()
        r = resume(d2, "A")
        check(r.get("ok") is False and r.get("reason") == "other_model",
              "checkpoint of another model: resume %r, expected other_model" % r)
        check(ckpt_name("A") in r.get("message", ""), "the refusal does not name the file: %r" % r)
        push.send(msg("A", 2))
        for seq in range(3):
            push.send(msg("C", seq))
        c.wait(lambda c: ("C", "final") in c.seen and c.errors, what="C's final and A's error")
        check(c.errors[0]["reason"] == "other_model" and c.errors[0]["doc"] == "A",
              "error output %r" % c.errors[0])
        check(len([k for k in c.seen if k[0] == "C"]) == N_BLOCKS + 1, "C incomplete")
        push.close(0)
        c.close()
        d2.stop()
        check(open(newest, "rb").read() == good[newest], "a refused checkpoint was modified")

        # the same model at another precision (PROTOCOL.md §8.1): refused as
        # other_model, the message naming both precisions and the option that
        # would continue it (test_daemon_precision.py runs that)
        if not cpu_has_bf16():
            print("SKIP: another precision: this CPU has no avx512_bf16")
            return
        restore()
        d3 = Daemon(w, state_dir=state, binary=binary, args=ARGS + ["--precision", "bf16"],
                    tag="prec").start()
        r = resume(d3, "A")
        d3.stop()
        check(r.get("ok") is False and r.get("reason") == "other_model"
              and "computed in fp32" in r.get("message", "")
              and "runs bf16" in r.get("message", "")
              and "--allow-precision-change" in r.get("message", ""),
              "checkpoint of another precision: resume %r, expected other_model" % r)
        check(open(newest, "rb").read() == good[newest], "a refused checkpoint was modified")


if __name__ == "__main__":
    run_cases([
        ("checkpoint damage/other model (rel)", lambda: corruption(REL_BIN), "rel"),
        ("checkpoint damage/other model (asan)", lambda: corruption(ASAN_BIN), "asan"),
    ])
