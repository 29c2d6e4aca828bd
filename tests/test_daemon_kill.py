#!/usr/bin/python3
"""test_daemon_kill.py — kill -9 loses nothing (PROTOCOL.md §8).

A 2.4 MB document streams into rwkvd while the daemon is SIGKILLed at
random moments (>= 20 times, each before the document's final output),
restarted on the same state directory, asked `resume`, and fed again from
next_seq.  Messages cover fixed byte ranges (seq k = bytes
[k*chunk, (k+1)*chunk)), as a producer resending after a crash does.  One
sink stays connected across all restarts and keeps every output.  Then the
union of what it received, keyed (doc, block) and (doc, "final"), must equal
an uninterrupted run on a separate state directory BYTE FOR BYTE, with no
block missing, none extra, and every duplicate identical to its first copy.

Why a random model and not the fixture model: the tiny fixture model runs
~25k tokens/s here, so a multi-megabyte document would take minutes; a
1-layer, 32-wide random model (rwkv mkmodel, fixed seed) runs the same code
paths ~10x faster.  Exactness against golden data is test_daemon_e2e's job;
this test is about state surviving kills.  Small --checkpoint-blocks and
--checkpoint-seconds make kills land both just after and between
checkpoints.
"""
import os
import random
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "support"))
import zmq
from rwkvd_harness import (ASAN_BIN, REL_BIN, RWKV_CLI, Daemon, Work, check,
                           ingest, run_cases, tiny_text, unpack, _CTX)

DOC = "big-doc"
CHUNK = 16384
BLOCK = 256
N_KILLS = 20
ARGS = ["--block-size", str(BLOCK), "--checkpoint-blocks", "5", "--checkpoint-seconds", "0.3",
        "--emit-hwm", "64"]
OPTS = {"outputs": ["embedding", "surprisal"], "pooling": "mean", "normalize": False}


def make_model(work):
    path = os.path.join(work, "l1-d32.safetensors")
    check(os.access(RWKV_CLI, os.X_OK), "missing %s (make it)" % RWKV_CLI)
    subprocess.run([RWKV_CLI, "mkmodel", "--shape", "L1-D32-H32-V256", "--seed", "11",
                    "--dtype", "f32", "-q", path], check=True)
    return path


def message(text, seq):
    n = (len(text) + CHUNK - 1) // CHUNK
    part = text[seq * CHUNK:(seq + 1) * CHUNK]
    return ingest(DOC, seq, part, eof=(seq == n - 1), opts=OPTS if seq == 0 else None)


class Sink(threading.Thread):
    """Receives every output of the emit endpoint, across daemon restarts."""

    def __init__(self, endpoint):
        super().__init__(daemon=True)
        self.endpoint = endpoint
        self.raw = {}          # block number or "final" -> first raw copy
        self.copies = 0
        self.dups = 0
        self.mismatch = []
        self.errors = []
        self.final = threading.Event()
        self.stop = threading.Event()

    def run(self):
        s = _CTX.socket(zmq.PULL)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(self.endpoint)
        while not self.stop.is_set():
            if not s.poll(100):
                continue
            raw = s.recv()
            out = unpack(raw)
            t = out.get("type")
            if t in ("block", "final"):
                key = out["block"] if t == "block" else "final"
                self.copies += 1
                if key in self.raw:
                    self.dups += 1
                    if self.raw[key] != raw:
                        self.mismatch.append(key)
                else:
                    self.raw[key] = raw
                if t == "final":
                    self.final.set()
            elif t == "error":
                self.errors.append(out)
        s.close(0)


class Sender(threading.Thread):
    """Sends seq start.. of the document until told to stop."""

    def __init__(self, endpoint, text, start):
        super().__init__(daemon=True)
        self.endpoint, self.text, self.start_seq = endpoint, text, start
        self.stop = threading.Event()
        self.sent = 0

    def run(self):
        s = _CTX.socket(zmq.PUSH)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.SNDHWM, 8)
        s.connect(self.endpoint)
        n = (len(self.text) + CHUNK - 1) // CHUNK
        seq = self.start_seq
        while seq < n and not self.stop.is_set():
            if s.poll(100, zmq.POLLOUT):
                s.send(message(self.text, seq), zmq.NOBLOCK)
                seq += 1
                self.sent += 1
        self.stop.wait()
        s.close(0)


def reference_run(work, model, text, binary):
    d = Daemon(work, state_dir=os.path.join(work, "ref-state"), model=model, binary=binary,
               args=ARGS, tag="ref").start()
    sink = Sink(d.emit_ep)
    sink.start()
    snd = Sender(d.ingest_ep, text, 0)
    snd.start()
    t0 = time.time()
    ok = sink.final.wait(180)
    dt = time.time() - t0
    snd.stop.set()
    snd.join()
    time.sleep(0.2)
    sink.stop.set()
    sink.join()
    check(ok, "uninterrupted run: no final message within 180 s")
    check(not sink.errors, "uninterrupted run: error outputs %r" % sink.errors[:3])
    check(not sink.dups, "uninterrupted run: %d duplicates" % sink.dups)
    d.stop()
    return sink.raw, dt, d


def test_kill9_loop(binary, n_bytes, n_kills):
    text = (tiny_text() * (n_bytes // len(tiny_text()) + 1))[:n_bytes]
    with Work() as w:
        model = make_model(w)
        ref, ref_s, ref_d = reference_run(w, model, text, binary)
        final = unpack(ref["final"])
        n_blocks = final["blocks"]
        check(n_blocks == (len(text) + BLOCK - 1) // BLOCK and len(ref) == n_blocks + 1,
              "uninterrupted run: %d blocks, %d outputs" % (n_blocks, len(ref)))

        rng = random.Random(20240521)
        d = Daemon(w, state_dir=os.path.join(w, "kill-state"), model=model, binary=binary,
                   args=ARGS, tag="k")
        sink = Sink(d.emit_ep)
        sink.start()
        kills = 0
        resumes = []
        t0 = time.time()
        while True:
            d.start()
            r = d.call(cmd="resume", doc=DOC)
            check(r.get("ok"), "resume refused: %r" % r)
            resumes.append((r["where"], r["next_seq"], r["blocks"]))
            snd = Sender(d.ingest_ep, text, r["next_seq"])
            snd.start()
            if kills >= n_kills:
                break
            # a random moment: just after start (journal replay), mid-stream
            delay = rng.choice([0.0, 0.02, rng.uniform(0.05, 0.45)])
            time.sleep(delay)
            if sink.final.is_set():
                break
            d.kill9()
            snd.stop.set()
            snd.join()
            kills += 1
        check(kills >= n_kills, "the document finished after only %d kills (need %d): kill sooner"
              % (kills, n_kills))
        ok = sink.final.wait(180)
        snd.stop.set()
        snd.join()
        time.sleep(0.3)  # duplicates still in flight
        d.stop()
        sink.stop.set()
        sink.join()
        elapsed = time.time() - t0

        check(ok, "no final message after the last restart")
        check(not sink.mismatch, "duplicates that differ from the first copy: blocks %r"
              % sink.mismatch[:10])
        check(not sink.errors, "error outputs during the kill loop: %r" % sink.errors[:3])
        missing = [k for k in ref if k not in sink.raw]
        extra = [k for k in sink.raw if k not in ref]
        check(not missing, "%d outputs missing after kills, e.g. %r" % (len(missing), missing[:10]))
        check(not extra, "outputs that the uninterrupted run does not have: %r" % extra[:10])
        differ = [k for k in ref if sink.raw[k] != ref[k]]
        check(not differ, "%d outputs differ from the uninterrupted run, e.g. %r"
              % (len(differ), differ[:10]))
        seqs = [s for _, s, _ in resumes]
        check(all(a <= b for a, b in zip(seqs, seqs[1:])),
              "resume next_seq went backwards: %r" % seqs)
        print("kill loop: %d kills, %d restarts, %d outputs received (%d duplicates), "
              "uninterrupted %.1f s, with kills %.1f s; resume next_seq %r"
              % (kills, d.starts, sink.copies, sink.dups, ref_s, elapsed, seqs), flush=True)
        # (a document with work left is loaded at start-up, so resume may
        # say "memory" right after a restart: it came from its checkpoint)
        check(max(seqs) > 0 and any(wh != "none" for wh, _s, _b in resumes[1:]),
              "no restart ever resumed from a checkpoint (next_seq always 0): every life started "
              "the document over")
        # checkpoints must have worked while streaming: otherwise every
        # restart starts over and kill -9 only "works" by recomputing all
        bad = [l for l in d.log_text().splitlines() + ref_d.log_text().splitlines()
               if " ERROR " in l]
        check(not bad, "%d ERROR lines in the daemon log, e.g. %s" % (len(bad), bad[0] if bad else ""))


if __name__ == "__main__":
    run_cases([
        ("kill -9 loop: outputs union == uninterrupted run byte for byte (rel, 2.4 MB, %d kills)"
         % N_KILLS, lambda: test_kill9_loop(REL_BIN, 2457600, N_KILLS), "rel"),
        # the recovery paths (journal replay, checkpoint fallback) under the
        # sanitizers: a smaller document, as ASan runs the model ~3x slower
        ("kill -9 loop under ASan/UBSan (256 KB, 8 kills)",
         lambda: test_kill9_loop(ASAN_BIN, 262144, 8), "asan"),
    ])
