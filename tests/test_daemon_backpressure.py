#!/usr/bin/python3
"""test_daemon_backpressure.py — a consumer that stops reading (PROTOCOL.md §5).

The emit side stalls: one PULL socket with a tiny receive high-water mark
reads a few outputs and then nothing, while a producer pushes a 1 MB
document in 4 KB messages.  The daemon must stop taking input — the
producer's send times out — instead of buffering outputs without bound or
dropping them; its RSS (VmRSS) must stay flat while stalled, it must keep
answering control requests, and once the consumer reads again every block
must arrive, numbered without gaps, exactly once, ending with a final that
counts them.

A 1-layer random model (rwkv mkmodel, fixed seed) keeps the run short: the
subject here is flow control, not numerics.
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "support"))
import zmq
from rwkvd_harness import (RWKV_CLI, Daemon, TestFailure, Work, check, ingest, run_cases,
                           tiny_text, unpack)

BLOCK = 256
CHUNK = 4096


def make_model(work):
    path = os.path.join(work, "l1-d32.safetensors")
    subprocess.run([RWKV_CLI, "mkmodel", "--shape", "L1-D32-H32-V256", "--seed", "3",
                    "--dtype", "f32", "-q", path], check=True)
    return path


def test_slow_consumer():
    text = (tiny_text() * 400)[:1024 * 1024]
    n_msgs = (len(text) + CHUNK - 1) // CHUNK
    n_blocks = (len(text) + BLOCK - 1) // BLOCK
    with Work() as w:
        d = Daemon(w, model=make_model(w), args=[
            "--block-size", str(BLOCK), "--emit-hwm", "16", "--ingest-hwm", "8",
            "--linger-ms", "100"]).start()
        rss_start = d.rss_kb()
        pull = d.pull(hwm=4)
        push = d.push(hwm=4, sndtimeo=1500)
        # the consumer reads a few outputs, then stalls
        seq = 0
        got = []
        blocked_at = None
        while seq < n_msgs:
            try:
                push.send(ingest("slow", seq, text[seq * CHUNK:(seq + 1) * CHUNK],
                                 eof=(seq == n_msgs - 1)))
                seq += 1
            except zmq.Again:
                blocked_at = seq
                break
            while len(got) < 5 and pull.poll(0):
                got.append(unpack(pull.recv()))
        check(blocked_at is not None,
              "the producer never blocked: all %d messages taken while nobody read outputs" % n_msgs)
        check(blocked_at < n_msgs // 2, "the producer blocked only at message %d of %d"
              % (blocked_at, n_msgs))
        # stalled: memory flat, control still answered, outputs not dropped
        samples = []
        for _ in range(8):
            time.sleep(0.25)
            d.check_running()
            samples.append(d.rss_kb())
        st = d.call(cmd="status", timeout=5)
        check(st.get("ok"), "status while stalled: %r" % st)
        blocks_stalled = st["blocks_total"]
        check(blocks_stalled < n_blocks, "all blocks done while the consumer was stalled?")
        check(max(samples) - min(samples) < 4096, "RSS moved while stalled: %r kB" % samples)
        check(max(samples) < rss_start + 64 * 1024,
              "RSS %d kB while stalled (%d kB at start)" % (max(samples), rss_start))
        time.sleep(1.0)
        st2 = d.call(cmd="status")
        check(st2["blocks_total"] == blocks_stalled,
              "blocks kept being computed while nobody read (%d -> %d)" % (blocks_stalled,
                                                                          st2["blocks_total"]))
        # the consumer resumes; the producer finishes
        blocks, final = {}, None
        end = time.time() + 120

        def drain(timeout_ms):
            nonlocal final
            while pull.poll(timeout_ms):
                out = unpack(pull.recv())
                got.append(out)
                timeout_ms = 0
        while seq < n_msgs:
            check(time.time() < end, "producer still blocked after the consumer resumed")
            drain(0)
            try:
                push.send(ingest("slow", seq, text[seq * CHUNK:(seq + 1) * CHUNK],
                                 eof=(seq == n_msgs - 1)), zmq.NOBLOCK)
                seq += 1
            except zmq.Again:
                drain(20)
        while not got or got[-1]["type"] != "final":
            check(time.time() < end, "no final: %d outputs" % len(got))
            drain(500)
            d.check_running()
        for out in got:
            check(out["type"] in ("block", "final"), "unexpected output %r" % out)
            if out["type"] == "block":
                check(out["block"] not in blocks, "block %d twice" % out["block"])
                blocks[out["block"]] = out
            else:
                final = out
        check(final["blocks"] == n_blocks and final["tokens"] == len(text),
              "final %r, expected %d blocks / %d tokens" % ({k: final[k] for k in ("blocks", "tokens")},
                                                            n_blocks, len(text)))
        missing = [k for k in range(n_blocks) if k not in blocks]
        check(not missing, "%d blocks dropped, e.g. %r" % (len(missing), missing[:10]))
        for k in range(n_blocks):
            check(blocks[k]["tok_start"] == k * BLOCK, "block %d tok_start" % k)
        print("slow consumer: producer blocked at message %d of %d; RSS %d kB at start, %d-%d kB "
              "stalled; %d blocks all received" % (blocked_at, n_msgs, rss_start, min(samples),
                                                  max(samples), n_blocks), flush=True)
        push.close(0)
        pull.close(0)
        d.stop()


if __name__ == "__main__":
    run_cases([("slow consumer: producer blocked, RSS flat, nothing dropped", test_slow_consumer)])
