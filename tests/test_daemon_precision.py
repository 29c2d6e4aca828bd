#!/usr/bin/python3
"""test_daemon_precision.py — a document's outputs never silently mix
precisions (PROTOCOL.md §4.1, §8.1).

- Every block, final and segments output names the precision its document's
  state was computed in, right after `normalize` (block, final) or `model`
  (segments): "fp32" from a daemon run with the default, "bf16" from one run
  with --precision bf16 (only where the CPU has avx512_bf16; the test says
  when it could not run it).
- A document computed in bf16 up to a checkpoint, then given to an fp32
  daemon:
    without --allow-precision-change: `resume` and the next message are
      refused as other_model, the message naming both precisions and the
      option; the checkpoint is left as it was;
    with it: the document continues; the WARN log names the document and
      both precisions; every block after the checkpoint and the final say
      "mixed"; the checkpoint written at eof records precision 3 (mixed);
    a daemon without the option then refuses the finished document naming
      "mixed", whatever precision it runs; the option turned on in the INI file
      and re-read on SIGHUP lets `resume` take it.
- A document with no completed block (nothing computed yet) continued under
  another precision with the option takes the daemon's precision: its
  outputs say "fp32", not "mixed".

Runs against the rel binary and once against the ASan+UBSan binary (the
tiny model, a few hundred tokens per document).
"""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "support"))
from rwkvd_harness import (ASAN_BIN, REL_BIN, Daemon, Work, check, collect_docs, ingest,
                           run_cases, run_doc, tiny_text, unpack)

BLOCK = 64
ARGS = ["--block-size", str(BLOCK), "--checkpoint-blocks", "0", "--checkpoint-seconds", "0",
        "--linger-ms", "100"]
OPTS = {"outputs": ["embedding", "surprisal"], "pooling": "mean", "normalize": False}
TEXT = tiny_text()[:1000]     # 1000 byte tokens: 15 full blocks and a partial one
CUT = 600                     # seq 0 = TEXT[:CUT] (9 blocks), seq 1 = the rest with eof


def cpu_has_bf16():
    with open("/proc/cpuinfo") as f:
        return " avx512_bf16" in f.read()


def ckpt_path(state, doc):
    return os.path.join(state, "d-%s.ckpt" % doc.encode().hex())


def ckpt_precision(path):
    """Flag bits 6-7 of a checkpoint file (daemon/checkpoint.h)."""
    with open(path, "rb") as f:
        head = f.read(20)
    check(head[:8] == b"RWKVDCKP", "%s is not a checkpoint" % path)
    return (int.from_bytes(head[16:20], "little") >> 6) & 3


def check_named(outs, want, what):
    """Every output of outs (decoded maps) names `want`, at its place."""
    check(outs, "%s: no outputs" % what)
    for o in outs:
        keys = list(o)
        after = "model" if o["type"] == "segments" else "normalize"
        check("precision" in o and keys.index("precision") == keys.index(after) + 1,
              "%s: %s output without precision right after %s: %r" % (what, o["type"], after, keys))
        check(o["precision"] == want, "%s: %s output says %r, expected %r"
              % (what, o["type"], o["precision"], want))


def outputs_of(res):
    return (list(res["blocks"].values()) + list(res["segments"].values()) +
            ([res["final"]] if res["final"] else []))


def named(binary):
    """Outputs name the daemon's precision (fp32; bf16 where the CPU runs it)."""
    runs = [("fp32", [])]
    if cpu_has_bf16():
        runs.append(("bf16", ["--precision", "bf16"]))
    else:
        print("SKIP: outputs in bf16: this CPU has no avx512_bf16", flush=True)
    with Work() as w:
        for name, extra in runs:
            d = Daemon(w, state_dir=os.path.join(w, "state-" + name), binary=binary,
                       args=ARGS + extra, tag=name).start()
            res = run_doc(d, "doc-" + name, [TEXT[:CUT], TEXT[CUT:]], opts=OPTS)
            check(len(res["blocks"]) == 16, "%s: %d blocks" % (name, len(res["blocks"])))
            check_named(outputs_of(res), name, name)
            # segments (v 2) carry the model, and so the precision beside it
            seg = run_doc(d, "seg-" + name, [TEXT[:CUT], TEXT[CUT:]], v=2,
                          opts={"outputs": ["surprisal"], "segment": "line"})
            check(seg["segments"], "%s: no segments outputs" % name)
            check_named(outputs_of(seg), name, name + " segments")
            d.stop()


def start_doc(d, doc, payload):
    """Sends seq 0 (no eof) and waits until its complete blocks are out."""
    push, pull = d.push(), d.pull()
    push.send(ingest(doc, 0, payload, opts=OPTS))
    n = len(payload) // BLOCK
    got = {}
    while len(got) < n:
        check(pull.poll(60000), "%s: only %d of %d blocks" % (doc, len(got), n))
        o = unpack(pull.recv())
        check(o["type"] == "block", "%s: unexpected output %r" % (doc, o))
        got[o["block"]] = o
    deadline = time.time() + 30
    while d.call(cmd="resume", doc=doc).get("next_seq") != 1:   # taken in, not just sent
        check(time.time() < deadline, "%s: seq 0 not taken in" % doc)
        time.sleep(0.05)
    push.close(0)
    pull.close(0)
    return got


def refused(d, doc, seq, payload, words):
    """resume and the next message are refused as other_model, the message
    holding every one of words."""
    r = d.call(cmd="resume", doc=doc)
    check(r.get("ok") is False and r.get("reason") == "other_model"
          and all(x in r.get("message", "") for x in words),
          "%s: resume %r, expected other_model naming %r" % (doc, r, words))
    push, pull = d.push(), d.pull()
    push.send(ingest(doc, seq, payload, eof=True))
    while True:   # the emit journal's replay of earlier outputs comes first
        check(pull.poll(30000), "%s: no answer to seq %d" % (doc, seq))
        e = unpack(pull.recv())
        if e["type"] == "error":
            break
        check(e["type"] == "block" and e["block"] < CUT // BLOCK,
              "%s: unexpected output %r" % (doc, e))
    check(e["type"] == "error" and e["reason"] == "other_model" and e["doc"] == doc
          and all(x in e["message"] for x in words), "%s: error output %r" % (doc, e))
    push.close(0)
    pull.close(0)


def mixed(binary):
    """bf16 up to a checkpoint, then fp32: refused, or continued as "mixed"."""
    if not cpu_has_bf16():
        print("SKIP: continuing a bf16 document in fp32: this CPU has no avx512_bf16",
              flush=True)
        return
    with Work() as w:
        state = os.path.join(w, "state")
        bf = Daemon(w, state_dir=state, binary=binary, args=ARGS + ["--precision", "bf16"],
                    tag="bf16").start()
        first = start_doc(bf, "M", TEXT[:CUT])
        check_named(first.values(), "bf16", "M before the change")
        start_doc(bf, "Z", TEXT[:10])          # no complete block: nothing computed yet
        bf.stop()                              # SIGTERM checkpoints both
        path = ckpt_path(state, "M")
        check(ckpt_precision(path) == 1, "the bf16 checkpoint records %d" % ckpt_precision(path))
        before = open(path, "rb").read()

        # without the option: refused, naming both precisions and the option
        plain = Daemon(w, state_dir=state, binary=binary, args=ARGS, tag="plain").start()
        refused(plain, "M", 1, TEXT[CUT:],
                ["computed in bf16", "runs fp32", "--allow-precision-change"])
        plain.stop()
        check(open(path, "rb").read() == before, "a refused checkpoint was modified")

        # with it: continued, logged, outputs say "mixed", the final too
        allow = Daemon(w, state_dir=state, binary=binary,
                       args=ARGS + ["--allow-precision-change"], tag="allow").start()
        r = allow.call(cmd="resume", doc="M")
        check(r.get("ok") and r.get("next_seq") == 1 and r.get("blocks") == CUT // BLOCK,
              "resume with the option: %r" % r)
        push, pull = allow.push(), allow.pull()
        push.send(ingest("M", 1, TEXT[CUT:], eof=True))
        push.send(ingest("Z", 1, TEXT[10:200], eof=True))
        res = collect_docs(pull, ["M", "Z"], timeout=120, daemon=allow)
        push.close(0)
        pull.close(0)
        m = res["M"]
        # the emit journal replays what the bf16 run sent (as it was sent);
        # everything computed after the change says mixed
        old = [o for k, o in m["blocks"].items() if k < CUT // BLOCK]
        new = [o for k, o in m["blocks"].items() if k >= CUT // BLOCK] + [m["final"]]
        check(sorted(k for k in m["blocks"] if k >= CUT // BLOCK) == list(range(CUT // BLOCK, 16)),
              "M's blocks after the checkpoint: %r" % sorted(m["blocks"]))
        check(m["final"]["blocks"] == 16, "M's final %r" % m["final"])
        if old:
            check_named(old, "bf16", "M's blocks replayed from the journal")
        check_named(new, "mixed", "M after the change")
        check_named(outputs_of(res["Z"]), "fp32", "Z (nothing computed before the change)")
        log = allow.log_text()
        check(any("WARN" in l and 'document M:' in l and "bf16" in l and "fp32" in l and "mixed" in l
                  for l in log.splitlines()),
              "no WARN line naming M and both precisions: %s" % log[-2000:])
        check(any('document Z:' in l and "no block was computed" in l for l in log.splitlines()),
              "Z's continuation is not logged: %s" % log[-2000:])
        allow.stop()
        check(ckpt_precision(path) == 3, "M's checkpoint after eof records %d, expected 3 (mixed)"
              % ckpt_precision(path))
        check(ckpt_precision(ckpt_path(state, "Z")) == 0, "Z's checkpoint is not fp32")

        # a mixed document is refused by every daemon without the option
        for tag, extra, runs in (("plain2", [], "fp32"), ("bf16b", ["--precision", "bf16"], "bf16")):
            d = Daemon(w, state_dir=state, binary=binary, args=ARGS + extra, tag=tag).start()
            r = d.call(cmd="resume", doc="M")
            check(r.get("ok") is False and r.get("reason") == "other_model"
                  and "mixed precisions" in r.get("message", "")
                  and "runs " + runs in r.get("message", "")
                  and "--allow-precision-change" in r.get("message", ""),
                  "mixed checkpoint on a %s daemon: resume %r" % (runs, r))
            d.stop()

        # the option is re-read on SIGHUP: off in the INI file, refused; on, taken
        ini = os.path.join(w, "rwkvd.ini")
        with open(ini, "w") as f:
            f.write("allow_precision_change = false\n")
        d = Daemon(w, state_dir=state, binary=binary, args=ARGS + ["--config", ini],
                   tag="hup").start()
        r = d.call(cmd="resume", doc="M")
        check(r.get("reason") == "other_model", "before SIGHUP: resume %r" % r)
        with open(ini, "w") as f:
            f.write("allow_precision_change = on\n")
        d.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 30
        while "configuration reloaded" not in d.log_text():
            check(time.time() < deadline, "SIGHUP: no reload logged")
            time.sleep(0.05)
        r = d.call(cmd="resume", doc="M")
        check(r.get("ok") and r.get("finished") and r.get("blocks") == 16,
              "after SIGHUP turned the option on: resume %r" % r)
        d.stop()


if __name__ == "__main__":
    run_cases([
        ("outputs name the precision (rel)", lambda: named(REL_BIN), "rel"),
        ("outputs name the precision (asan)", lambda: named(ASAN_BIN), "asan"),
        ("precision change refused or mixed (rel)", lambda: mixed(REL_BIN), "rel"),
        ("precision change refused or mixed (asan)", lambda: mixed(ASAN_BIN), "asan"),
    ])
