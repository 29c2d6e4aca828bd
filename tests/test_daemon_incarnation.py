#!/usr/bin/python3
"""test_daemon_incarnation.py — dropping and reusing a document id
(PROTOCOL.md §8.4).

A document is sent whole (its outputs have no `inc`: incarnation 0), dropped,
and sent again with other text; the second incarnation is cut by kill -9
half-way and finished after the restart.  Checked: every output after the
drop carries inc 1; the restarted daemon's emit journal, which still holds
the first incarnation's outputs, sends none of them again; the consumer's
outputs de-duplicated by (doc, inc, block) — keeping the highest inc — are
exactly a clean run of the second text on a fresh daemon (byte for byte but
for `inc`).  Also: a drop of an unknown id creates no incarnation; a second
drop gives inc 2; a daemon started on another model over the same state
directory replays nothing of the old model's journal.  rwkvd-sink keeps both
incarnations of an id (JSONL and raw), and its --append reload tells them
apart.
"""
import json
import os
import subprocess
import time

import sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "support"))
from rwkvd_harness import (ASAN_BIN, REL_BIN, RWKV_CLI, Daemon, Work, check,  # noqa: E402
                           collect_docs, ingest, run_cases, send_doc, tiny_text, unpack)

BLOCK = 64
OPTS = {"outputs": ["embedding", "surprisal"], "pooling": "mean", "normalize": False}


def drain(pull, seconds, into):
    """Receives for `seconds`; appends (raw, decoded) to into."""
    end = time.time() + seconds
    while True:
        left = end - time.time()
        if left <= 0 or not pull.poll(int(left * 1000)):
            return
        raw = pull.recv()
        into.append((raw, unpack(raw)))


def dedupe(outs, doc):
    """(doc, inc, block|"final") -> raw; only the highest inc seen for doc."""
    keyed = {}
    for raw, m in outs:
        if m.get("doc") != doc or m["type"] not in ("block", "final"):
            continue
        key = (m.get("inc", 0), m["block"] if m["type"] == "block" else "final")
        check(keyed.get(key, raw) == raw, "%r sent twice with different bytes" % (key,))
        keyed[key] = raw
    top = max(k[0] for k in keyed)
    return top, {k[1]: v for k, v in keyed.items() if k[0] == top}


def without_inc(raw):
    m = unpack(raw)
    m.pop("inc", None)
    return m


def incarnations(binary):
    text = tiny_text()
    first, second = text[:700], text[1000:2600]   # 11 and 25 blocks
    parts = [second[:900], second[900:1300], second[1300:]]
    with Work() as work:
        args = ["--block-size", str(BLOCK), "--checkpoint-blocks", "4"]
        d = Daemon(work, binary=binary, args=args).start()
        push, pull = d.push(), d.pull()

        # incarnation 0, whole
        send_doc(push, "X", [first], opts=OPTS)
        got0 = collect_docs(pull, ["X"], daemon=d)["X"]
        check(all("inc" not in unpack(r) for r in got0["raw"].values()), "inc on incarnation 0")
        check(d.call(cmd="drop", doc="never-seen")["dropped"] is False, "drop of an unknown id")
        check(not any(f.endswith(".inc") for f in os.listdir(d.state_dir)),
              "a drop of an unknown id made an incarnation file: %r" % os.listdir(d.state_dir))
        check(d.call(cmd="drop", doc="X")["dropped"] is True, "drop X")
        inc_file = [f for f in os.listdir(d.state_dir) if f.endswith(".inc")]
        check(inc_file == ["d-58.inc"] and open(os.path.join(d.state_dir, "d-58.inc")).read() == "1\n",
              "incarnation file after the drop: %r" % inc_file)
        check(d.call(cmd="resume", doc="X")["known"] is False, "X known after the drop")

        # incarnation 1, cut by kill -9 after some blocks and a checkpoint
        after = []
        push.send(ingest("X", 0, parts[0], opts=OPTS))
        push.send(ingest("X", 1, parts[1]))
        end = time.time() + 60
        while sum(1 for _, m in after if m["type"] == "block") < 12:
            check(time.time() < end, "incarnation 1: only %d outputs before the kill" % len(after))
            drain(pull, 0.2, after)
        d.kill9()
        d.start()
        replayed = []
        drain(pull, 1.5, replayed)  # the journal's records go out first
        stale = [(m.get("inc", 0), m.get("block")) for _, m in replayed if m.get("inc", 0) != 1]
        check(not stale, "the journal replayed outputs of the dropped incarnation: %r" % stale)
        check("of dropped incarnations or another model left out" in d.log_text(),
              "no journal line about left-out records: %s" % d.log_text()[-800:])
        rs = d.call(cmd="resume", doc="X")
        check(rs["known"] and 1 <= rs["next_seq"] <= 2, "resume after kill -9: %r" % rs)
        send_doc(push, "X", parts[rs["next_seq"]:], start_seq=rs["next_seq"])
        rest = collect_docs(pull, ["X"], daemon=d)["X"]
        all_after = after + replayed + [(r, unpack(r)) for r in rest["raw"].values()]
        check(all(m.get("inc") == 1 for _, m in all_after if m.get("doc") == "X"),
              "an output after the drop without inc 1: %r"
              % sorted({m.get("inc") for _, m in all_after}))
        top, mine = dedupe(all_after, "X")

        # a second drop: inc 2
        check(d.call(cmd="drop", doc="X")["dropped"] is True, "second drop")
        send_doc(push, "X", [b"short"], opts=OPTS)
        got2 = collect_docs(pull, ["X"], daemon=d)["X"]
        check(all(unpack(r).get("inc") == 2 for r in got2["raw"].values()), "inc after a second drop")
        push.close(0)
        pull.close(0)
        d.stop()

        # another model over the same state directory: nothing of the journal goes out
        other = os.path.join(work, "other.safetensors")
        subprocess.run([RWKV_CLI, "mkmodel", "--shape", "L1-D32-H32-V256", "--seed", "3", "--dtype",
                        "f32", "-q", other], check=True)
        d2 = Daemon(work, binary=binary, model=other, args=args, tag="other",
                    state_dir=d.state_dir).start()
        p2 = d2.pull()
        foreign = []
        drain(p2, 1.5, foreign)
        p2.close(0)
        check(not foreign, "another model's journal records were replayed: %d" % len(foreign))
        d2.stop()

        # the clean run of the second text
        c = Daemon(work, binary=binary, args=args, tag="clean",
                   state_dir=os.path.join(work, "clean")).start()
        push, pull = c.push(), c.pull()
        send_doc(push, "X", parts, opts=OPTS)
        ref = collect_docs(pull, ["X"], daemon=c)["X"]["raw"]
        push.close(0)
        pull.close(0)
        c.stop()

    check(top == 1, "highest incarnation %r" % top)
    check(sorted(mine, key=str) == sorted(ref, key=str),
          "keys: %r vs clean %r" % (sorted(mine, key=str), sorted(ref, key=str)))
    for k in ref:
        check(without_inc(mine[k]) == unpack(ref[k]), "output %r differs from the clean run" % (k,))
        check(unpack(ref[k]).get("inc") is None, "clean run has inc")


def sink_incarnations(binary):
    text = tiny_text()
    first, second = text[:700], text[1000:2600]   # 11 and 25 blocks
    sink_bin = os.path.join(os.path.dirname(binary), "rwkvd-sink")
    with Work() as work:
        d = Daemon(work, binary=binary, args=["--block-size", str(BLOCK)]).start()
        out = os.path.join(work, "out.jsonl")
        raw = os.path.join(work, "raw")
        sinks = [subprocess.Popen([sink_bin, "--emit", d.emit_ep, "--out", out, "--until-final", "2",
                                   "--idle-timeout", "60", "-q"], stderr=subprocess.PIPE)]
        push = d.push()
        send_doc(push, "X", [first], opts=OPTS)
        end = time.time() + 60
        while not d.call(cmd="resume", doc="X")["finished"]:
            check(time.time() < end, "X never finished")
            time.sleep(0.05)
        check(d.call(cmd="drop", doc="X")["dropped"], "drop")
        send_doc(push, "X", [second[:800], second[800:]], opts=OPTS)
        _, err = sinks[0].communicate(timeout=120)
        check(sinks[0].returncode == 0, "sink: %d %r" % (sinks[0].returncode, err))
        recs = [json.loads(line) for line in open(out)]
        keys = sorted((r.get("inc", 0), r.get("block", -1), r["type"]) for r in recs)
        want = sorted([(0, b, "block") for b in range(11)] + [(0, -1, "final")] +
                      [(1, b, "block") for b in range(25)] + [(1, -1, "final")])
        check(keys == want, "sink wrote %r" % keys)
        # --append: both finals are counted back (the old key (doc, "final") made them one)
        p = subprocess.run([sink_bin, "--emit", d.emit_ep, "--out", out, "--append", "--until-final",
                            "2", "--idle-timeout", "5"], capture_output=True, timeout=60)
        check(p.returncode == 0 and b"(2 final)" in p.stderr,
              "sink --append: %d %r" % (p.returncode, p.stderr))
        # raw mode: the second incarnation's files do not overwrite the first's
        check(d.call(cmd="drop", doc="X")["dropped"], "second drop")
        sink = subprocess.Popen([sink_bin, "--emit", d.emit_ep, "--raw", raw, "--until-final", "1",
                                 "--idle-timeout", "60", "-q"], stderr=subprocess.PIPE)
        send_doc(push, "X", [first], opts=OPTS)
        _, err = sink.communicate(timeout=120)
        check(sink.returncode == 0, "raw sink: %d %r" % (sink.returncode, err))
        files = sorted(os.listdir(os.path.join(raw, "58")))
        check("i2.final.json" in files and "i2.0.embedding.f32" in files and "final.json" not in files,
              "raw files: %r" % files)
        push.close(0)
        d.stop()


if __name__ == "__main__":
    run_cases([
        ("drop, reuse, kill -9: incarnations and the journal (rel)", lambda: incarnations(REL_BIN), "rel"),
        ("drop, reuse, kill -9: incarnations and the journal (asan)", lambda: incarnations(ASAN_BIN),
         "asan"),
        ("rwkvd-sink keeps incarnations apart (rel)", lambda: sink_incarnations(REL_BIN), "rel"),
        ("rwkvd-sink keeps incarnations apart (asan)", lambda: sink_incarnations(ASAN_BIN), "asan"),
    ])
