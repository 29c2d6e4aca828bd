#!/usr/bin/python3
"""test_clients.py — rwkvd-send and rwkvd-sink, run as processes.

Each test starts the tools (build/$RWKVD_BUILD_FLAVOUR/bin, so the asan run
checks them under ASan + LeakSanitizer) on ipc:// endpoints in a fresh temp
directory — never fixed ports — against:
  - tests/support/fake_rwkvd.py, a protocol-v1 stand-in whose log shows every
    message it processed, acknowledged or held (sender tests);
  - a PUSH socket this test binds itself, sending hand-made outputs (sink
    tests: dedupe, --verify-identical, exact floats, raw files, --append);
  - the real daemon on the tiny fixture model, when daemon/main.c exists.
"""

import json
import os
import pty
import random
import signal
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "support"))
import msgpack  # noqa: E402
import zmq  # noqa: E402

from pyharness import (FIXTURES, check, control, daemon_expected, defer, read_log,  # noqa: E402
                       run, skip, start_daemon, start_fake, stop, summary, tmpdir, tool)


def send_tool(eps, *args, stdin=None, timeout=60):
    """Runs rwkvd-send to completion; (status, stderr lines)."""
    p = subprocess.run([tool("rwkvd-send"), "--ingest", eps["ingest"], "--control",
                        eps["control"]] + list(args), input=stdin, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    check(p.stdout == b"", "rwkvd-send wrote to stdout: %r" % p.stdout[:200])
    return p.returncode, p.stderr.decode("utf-8", "replace").splitlines()


def processed(logp, doc):
    """The fake's processed messages of doc, in order: [(seq, data, eof, opts)]."""
    return [(e["seq"], bytes.fromhex(e["data"]), e["eof"], e["opts"]) for e in read_log(logp)
            if e["ev"] == "processed" and e["doc"] == doc.encode().hex()]


def check_exactly_once(logp, doc, data, chunk):
    msgs = processed(logp, doc)
    seqs = [m[0] for m in msgs]
    n = max(1, -(-len(data) // chunk))
    check(seqs == list(range(n)), "processed seqs %s..., expected 0..%d once each"
          % (seqs[:10], n - 1))
    check(b"".join(m[1] for m in msgs) == data, "the fake saw different bytes")
    for s, piece, eof, _ in msgs:
        check(piece == data[s * chunk:(s + 1) * chunk], "seq %d does not carry its chunk" % s)
        check(eof == (s == n - 1), "eof on seq %d of %d" % (s, n))
    return msgs


def write_file(d, name, data):
    p = os.path.join(d, name)
    with open(p, "wb") as f:
        f.write(data)
    return p


def wait_quiet(logp, doc, at_least, timeout=30.0):
    """Waits until the fake processed >= at_least messages of doc and then
    nothing more for 0.5 s; returns how many it processed."""
    end = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while time.monotonic() < end:
        n = len(processed(logp, doc))
        if n != last:
            last, since = n, time.monotonic()
        elif n >= at_least and time.monotonic() - since > 0.5:
            return n
        time.sleep(0.05)
    raise AssertionError("fake did not settle (processed %d)" % last)


def wait_processed(logp, doc, n, timeout=30.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if len(processed(logp, doc)) >= n:
            return
        time.sleep(0.02)
    raise AssertionError("fake processed fewer than %d messages" % n)


# ---------------------------------------------------------------- rwkvd-send

def test_send_file_splits():
    d = tmpdir()
    _, eps, logp = start_fake(d)
    data = random.Random(1).randbytes(200 * 1024 + 123)
    path = write_file(d, "doc.bin", data)
    rc, err = send_tool(eps, "--chunk-size", "16K", "--timeout", "20", path)
    check(rc == 0, "status %d: %s" % (rc, err))
    check(err == [], "stderr not empty without a terminal: %s" % err)
    msgs = check_exactly_once(logp, path, data, 16384)
    check(all(m[3] is None for m in msgs), "opts sent without any option")
    r = control(eps["control"], "resume", doc=path)
    check(r["finished"] and r["tokens"] == len(data), "daemon state %r" % r)


def test_send_edges():
    d = tmpdir()
    _, eps, logp = start_fake(d)
    for name, size in (("empty", 0), ("one", 1), ("exact", 4 * 1000), ("plus1", 4 * 1000 + 1)):
        data = random.Random(size).randbytes(size)
        path = write_file(d, name, data)
        rc, err = send_tool(eps, "--chunk-size", "1000", "--doc", name, path, "-q")
        check(rc == 0, "%s: status %d: %s" % (name, rc, err))
        check_exactly_once(logp, name, data, 1000)


def test_send_opts_on_seq0():
    d = tmpdir()
    _, eps, logp = start_fake(d)
    data = b"x" * 5000
    path = write_file(d, "a.txt", data)
    rc, err = send_tool(eps, "--chunk-size", "1K", "--doc", "opts-doc", "--outputs",
                        "embedding,topk", "--pooling", "mean", "--no-normalize", "--topk", "7",
                        path)
    check(rc == 0, "status %d: %s" % (rc, err))
    msgs = check_exactly_once(logp, "opts-doc", data, 1024)
    check(msgs[0][3] == {"outputs": ["embedding", "topk"], "pooling": "mean",
                         "normalize": False, "topk": 7}, "opts %r" % (msgs[0][3],))
    check(all(m[3] is None for m in msgs[1:]), "opts after seq 0")
    rc, err = send_tool(eps, "--outputs", "", "--doc", "no-outputs", path)
    check(rc == 0, "status %d: %s" % (rc, err))
    check(processed(logp, "no-outputs")[0][3] == {"outputs": []}, "--outputs '' is not []")


def test_send_no_wait():
    d = tmpdir()
    _, eps, logp = start_fake(d, "--delay", "0.05")
    data = random.Random(9).randbytes(40 * 1000)
    path = write_file(d, "nw.bin", data)
    t = time.monotonic()
    rc, err = send_tool(eps, "--chunk-size", "1000", "--no-wait", path)
    took = time.monotonic() - t
    check(rc == 0 and err == [], "status %d: %s" % (rc, err))
    check(took < 1.2, "--no-wait waited %.2f s for a 2 s job" % took)
    wait_processed(logp, path, 40)
    check_exactly_once(logp, path, data, 1000)


def test_send_stdin():
    d = tmpdir()
    _, eps, logp = start_fake(d)
    data = random.Random(2).randbytes(10 * 1000 + 7)
    rc, err = send_tool(eps, "--doc", "from-stdin", "--chunk-size", "1000", "-", stdin=data)
    check(rc == 0, "status %d: %s" % (rc, err))
    check_exactly_once(logp, "from-stdin", data, 1000)
    # Exactly a multiple of the chunk size: eof must ride on the last full chunk.
    data = b"abcdefghij" * 300
    rc, err = send_tool(eps, "--doc", "stdin-exact", "--chunk-size", "1000", "-", stdin=data)
    check(rc == 0, "status %d: %s" % (rc, err))
    check_exactly_once(logp, "stdin-exact", data, 1000)


def kill_midway(d, eps, logp, doc, args, stdin_data=None, min_processed=40):
    """Starts rwkvd-send, SIGKILLs it once the fake has processed
    min_processed messages of doc, waits for the fake to settle; returns the
    number of messages the fake then has."""
    p = subprocess.Popen([tool("rwkvd-send"), "--ingest", eps["ingest"], "--control",
                          eps["control"], "-q"] + args,
                         stdin=subprocess.PIPE if stdin_data is not None else subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    defer(lambda: stop(p, signal.SIGKILL))
    if stdin_data is not None:
        import threading

        def feed():
            try:
                p.stdin.write(stdin_data)
                p.stdin.close()
            except (BrokenPipeError, ValueError):
                pass
        threading.Thread(target=feed, daemon=True).start()
    wait_processed(logp, doc, min_processed)
    p.kill()
    p.wait()
    return wait_quiet(logp, doc, min_processed)


def test_send_kill_and_resume():
    d = tmpdir()
    _, eps, logp = start_fake(d, "--delay", "0.004", "--hwm", "2")
    chunk = 4096
    data = random.Random(3).randbytes(chunk * 400 + 99)
    path = write_file(d, "big.bin", data)
    k = kill_midway(d, eps, logp, path, ["--chunk-size", str(chunk), path])
    check(0 < k < 401, "killed after %d of 401 messages: the test proves nothing" % k)
    r = control(eps["control"], "resume", doc=path)
    check(r["next_seq"] == k and not r["finished"], "fake state %r" % r)
    rc, err = send_tool(eps, "--chunk-size", str(chunk), path)
    check(rc == 0, "re-run: status %d: %s" % (rc, err))
    check(any("continuing from byte %d" % (k * chunk) in line for line in err),
          "re-run did not say where it continued: %s" % err)
    check_exactly_once(logp, path, data, chunk)
    acks = [e for e in read_log(logp) if e["ev"] == "ack"]
    check(acks == [], "the re-run re-sent %d messages the fake had" % len(acks))


def test_send_stdin_kill_and_resume():
    d = tmpdir()
    _, eps, logp = start_fake(d, "--delay", "0.004", "--hwm", "2")
    chunk = 4096
    data = random.Random(4).randbytes(chunk * 300 + 5)
    k = kill_midway(d, eps, logp, "s", ["--doc", "s", "--chunk-size", str(chunk), "-"],
                    stdin_data=data)
    check(0 < k < 301, "killed after %d of 301 messages" % k)
    rc, err = send_tool(eps, "--doc", "s", "--chunk-size", str(chunk), "-q", "-", stdin=data)
    check(rc == 0, "re-run: status %d: %s" % (rc, err))
    check_exactly_once(logp, "s", data, chunk)
    check(not any(e["ev"] == "ack" for e in read_log(logp)), "re-sent what the fake had")


def test_send_finished_doc():
    d = tmpdir()
    _, eps, logp = start_fake(d)
    path = write_file(d, "f.txt", b"hello world")
    rc, err = send_tool(eps, path)
    check(rc == 0, "status %d: %s" % (rc, err))
    before = len(read_log(logp))
    rc, err = send_tool(eps, path)
    check(rc == 0, "second run: status %d: %s" % (rc, err))
    check(len(err) == 1 and "already finished" in err[0], "stderr %s" % err)
    check(len(read_log(logp)) == before, "a finished document was sent again")
    rc, err = send_tool(eps, "-q", path)
    check(rc == 0 and err == [], "-q: status %d, stderr %s" % (rc, err))


def test_send_mismatch_detected():
    d = tmpdir()
    _, eps, logp = start_fake(d, "--delay", "0.004", "--hwm", "2")
    data = random.Random(5).randbytes(4096 * 200)
    path = write_file(d, "m.bin", data)
    k = kill_midway(d, eps, logp, path, ["--chunk-size", "4096", path], min_processed=20)
    # A smaller chunk size cannot explain the tokens the daemon has.
    rc, err = send_tool(eps, "--chunk-size", "1024", path)
    check(rc == 1, "smaller --chunk-size: status %d: %s" % (rc, err))
    check(len(err) == 1 and err[0].startswith("rwkvd-send: ") and "chunk-size" in err[0],
          "stderr %s" % err)
    # A file shorter than what the daemon already has.
    short = write_file(d, "short.bin", data[:4096 * (k - 1)])
    rc, err = send_tool(eps, "--chunk-size", "4096", "--doc", path, short)
    check(rc == 1 and len(err) == 1 and err[0].startswith("rwkvd-send: "),
          "short file: status %d: %s" % (rc, err))
    # The same on stdin.
    rc, err = send_tool(eps, "--chunk-size", "4096", "--doc", path, "-",
                        stdin=data[:4096 * (k - 1) + 10])
    check(rc == 1 and len(err) == 1 and "ended after" in err[0], "short stdin: %s" % err)
    check(len(processed(logp, path)) == k, "a refused re-run still sent something")


def test_send_dead_daemon():
    d = tmpdir()
    eps = {"ingest": "ipc://%s/nobody-in" % d, "control": "ipc://%s/nobody-ctl" % d}
    path = write_file(d, "x", b"data")
    t = time.monotonic()
    rc, err = send_tool(eps, "--timeout", "1", path)
    took = time.monotonic() - t
    check(rc == 1, "status %d" % rc)
    check(len(err) == 1 and err[0].startswith("rwkvd-send: ") and "no reply" in err[0],
          "stderr %s" % err)
    check(took < 10, "took %.1f s with --timeout 1" % took)


def test_send_bad_control_replies():
    """Hostile or broken control replies: one line, status 1, never a hang
    or a crash."""
    import threading
    d = tmpdir()
    path = write_file(d, "x", b"data")
    replies = [b"\xc1", b"\xdd\xff\xff\xff\xff", msgpack.packb([1, 2]),
               msgpack.packb({"v": 1, "ok": True, "id": 999999}),
               msgpack.packb({"v": 1, "ok": True, "id": 1, "known": False}),
               msgpack.packb({"v": 1, "ok": True, "id": 1, "known": False, "finished": False,
                              "next_seq": -1, "tokens": 0, "blocks": 0}),
               msgpack.packb({"v": 1, "ok": False, "reason": "unknown_cmd",
                              "message": "no\nsuch\x01"}),
               b"\x81" + b"\xa1k" * 40000]
    for i, reply in enumerate(replies):
        ep = "ipc://%s/ctl%d" % (d, i)
        router = zmq.Context.instance().socket(zmq.ROUTER)
        router.bind(ep)
        defer(lambda r=router: r.close(linger=0))

        def answer(r=router, reply=reply):
            if r.poll(10000):
                frames = r.recv_multipart()
                r.send_multipart(frames[:-1] + [reply])
        threading.Thread(target=answer, daemon=True).start()
        eps = {"ingest": "ipc://%s/in%d" % (d, i), "control": ep}
        rc, err = send_tool(eps, "--timeout", "1", path)
        check(rc == 1 and len(err) == 1 and err[0].startswith("rwkvd-send: "),
              "reply %d: status %d, %s" % (i, rc, err))


def test_send_stuck_daemon_times_out():
    # The fake answers control but holds every message (seq 0 never arrives
    # because another producer claimed the doc with tokens): no progress.
    d = tmpdir()
    _, eps, logp = start_fake(d)
    ctx = zmq.Context.instance()
    push = ctx.socket(zmq.PUSH)
    push.connect(eps["ingest"])
    push.send(msgpack.packb({"v": 1, "doc": "stuck", "seq": 0, "tokens": [1, 2, 3]}))
    push.close(linger=2000)
    wait_processed(logp, "stuck", 1)
    path = write_file(d, "s.txt", b"abc" * 1000)
    rc, err = send_tool(eps, "--doc", "stuck", "--timeout", "1.5", "--chunk-size", "3", "-q",
                        path)
    check(rc == 1 and len(err) == 1 and "no progress" in err[0], "status %d, %s" % (rc, err))


def test_send_daemon_restart():
    """The fake is killed mid-document and restarted from its last
    checkpoint: the sender notices (uptime and next_seq went back) and
    re-sends from the daemon's next_seq; a sink with --verify-identical sees
    every block once, the re-emitted ones byte-identical."""
    d = tmpdir()
    state = os.path.join(d, "state.json")
    fake_args = ("--delay", "0.003", "--hwm", "2", "--state", state, "--checkpoint-every", "25",
                 "--block-size", "512")
    fake, eps, logp = start_fake(d, *fake_args)
    out = os.path.join(d, "out.jsonl")
    sink = subprocess.Popen([tool("rwkvd-sink"), "--emit", eps["emit"], "--out", out,
                             "--until-final", "1", "--verify-identical", "--idle-timeout", "60"],
                            stderr=subprocess.PIPE)
    defer(lambda: stop(sink))
    chunk = 2048
    data = random.Random(6).randbytes(chunk * 500 + 1000)
    path = write_file(d, "r.bin", data)
    sender = subprocess.Popen([tool("rwkvd-send"), "--ingest", eps["ingest"], "--control",
                               eps["control"], "--chunk-size", str(chunk), "--timeout", "30",
                               path], stderr=subprocess.PIPE)
    defer(lambda: stop(sender, signal.SIGKILL))
    wait_processed(logp, path, 150)
    fake.kill()
    fake.wait()
    time.sleep(0.3)
    start_fake(d, *fake_args)
    _, err = sender.communicate(timeout=120)
    err = err.decode().splitlines()
    check(sender.returncode == 0, "sender status %d: %s" % (sender.returncode, err))
    check(any("restarted" in line for line in err), "restart not noticed: %s" % err)
    with open(state) as f:
        saved = json.load(f)[path.encode().hex()]
    check(bytes.fromhex(saved["data"]) == data and saved["finished"],
          "the restarted fake does not hold the document")
    _, serr = sink.communicate(timeout=60)
    check(sink.returncode == 0, "sink status %d: %s" % (sink.returncode, serr))
    recs = [json.loads(line) for line in open(out)]
    blocks = [r["block"] for r in recs if r["type"] == "block"]
    final = [r for r in recs if r["type"] == "final"]
    check(len(final) == 1 and final[0]["blocks"] == len(blocks), "final %s" % final[:1])
    check(blocks == list(range(len(blocks))), "blocks not 0..n-1 once each")
    check(b"duplicates dropped" in serr, "no sink summary")


def test_send_progress_on_terminal():
    d = tmpdir()
    _, eps, _ = start_fake(d, "--delay", "0.002")
    path = write_file(d, "p.bin", b"z" * (1000 * 300))
    master, slave = pty.openpty()
    p = subprocess.Popen([tool("rwkvd-send"), "--ingest", eps["ingest"], "--control",
                          eps["control"], "--chunk-size", "1000", path], stderr=slave,
                         stdout=subprocess.DEVNULL)
    os.close(slave)
    buf = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        buf += chunk
    p.wait(60)
    os.close(master)
    text = buf.decode("utf-8", "replace")
    check(p.returncode == 0, "status %d: %s" % (p.returncode, text[-300:]))
    check("\r" in text and "sent" in text and "tok/s" in text, "no progress line: %r"
          % text[-300:])
    check("292.969 KiB" in text or "293.0 KiB" in text, "total not shown: %r" % text[-300:])


# ---------------------------------------------------------------- rwkvd-sink

class Emitter:
    """A bound PUSH socket standing in for the daemon's emit side.  One per
    sink process: a PUSH keeps round-robining to a sink that just exited
    until it notices the disconnect, so reusing one would lose messages."""
    count = 0

    def __init__(self, d):
        Emitter.count += 1
        self.ep = "ipc://%s/emit-test-%d" % (d, Emitter.count)
        self.sock = zmq.Context.instance().socket(zmq.PUSH)
        self.sock.setsockopt(zmq.LINGER, 2000)
        self.sock.bind(self.ep)
        defer(lambda: self.sock.close(linger=0))

    def send(self, obj):
        raw = obj if isinstance(obj, bytes) else msgpack.packb(obj, use_bin_type=True)
        self.sock.send(raw)
        return raw


def sink(em, *args):
    p = subprocess.Popen([tool("rwkvd-sink"), "--emit", em.ep] + list(args),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    defer(lambda: stop(p))
    return p


def finish(p, timeout=30):
    out, err = p.communicate(timeout=timeout)
    return p.returncode, out, err.decode("utf-8", "replace").splitlines()


def f32bytes(vals):
    return struct.pack("<%df" % len(vals), *vals)


def block(doc, n, emb, surp=None, **extra):
    m = {"v": 1, "type": "block", "doc": doc, "block": n, "tok_start": n * 4,
         "tok_end": n * 4 + 4, "model": "ab" * 32, "dim": len(emb) // 4, "pooling": "last",
         "normalize": True, "precision": "bf16", "embedding": emb}
    if surp is not None:
        m["surprisal"] = surp
    m.update(extra)
    return m


def final(doc, blocks, emb=None, mean=1.25):
    return {"v": 1, "type": "final", "doc": doc, "tokens": blocks * 4, "blocks": blocks,
            "model": "ab" * 32, "dim": 4, "pooling": "last", "normalize": True,
            "precision": "mixed", "embedding": emb, "mean_surprisal": mean}


def tricky_floats(n, seed):
    """Finite float32 bit patterns of every kind: random bits, subnormals,
    extremes, -0.0, values with long decimal expansions."""
    r = random.Random(seed)
    fixed = [0.1, -0.0, 0.0, 1.0 / 3.0, 3.4028234663852886e38, -1.1754943508222875e-38,
             1.401298464324817e-45, 16777217.0, 1e-7, -123456.789]
    out = []
    for v in fixed:
        out.append(struct.pack("<f", v))
    while len(out) < n:
        b = struct.pack("<I", r.getrandbits(32))
        if (struct.unpack("<I", b)[0] >> 23) & 0xFF != 0xFF:   # finite only
            out.append(b)
    return b"".join(out[:n])


def test_sink_jsonl_roundtrip():
    d = tmpdir()
    em = Emitter(d)
    out = os.path.join(d, "o.jsonl")
    em = Emitter(d)
    p = sink(em, "--out", out, "--until-final", "1")
    emb = tricky_floats(300, 7)
    surp = struct.pack("<I", 0x7FC00000) + f32bytes([2.5, 0.001, 7.0])
    ids = struct.pack("<6I", 1, 2, 3, 4000000000, 5, 6)
    lps = f32bytes([-0.1, -0.2, -0.3, -1.5, -2.5, -3.5])
    logits = tricky_floats(256, 8)
    raws = [em.send(block("doc-é\"\\\n", 0, emb, surp, topk={"k": 2, "ids": ids,
                                                              "logprobs": lps},
                          logits_last=logits)),
            em.send({"v": 1, "type": "error", "doc": b"\xff\x00bin", "seq": 3,
                     "reason": "seq_gap", "message": "seq 3: waiting for 1", "expected_seq": 1}),
            em.send({"v": 1, "type": "ack", "doc": "doc-é\"\\\n", "seq": 0, "next_seq": 1,
                     "status": "duplicate"}),
            em.send(final("doc-é\"\\\n", 1, emb[:16], 1.0 / 3.0))]
    rc, _, err = finish(p)
    check(rc == 0, "status %d: %s" % (rc, err))
    lines = open(out).read().splitlines()
    check(len(lines) == 4, "%d lines" % len(lines))
    recs = [json.loads(line) for line in lines]
    b = recs[0]
    check(lines[0].startswith('{"type":"block","doc":"doc-\xe9\\"\\\\\\u000a","block":0,')
          or lines[0].startswith('{"type":"block","doc":"doc-é\\"\\\\\\u000a","block":0,'),
          "record prefix %r" % lines[0][:60])
    check(b["doc"] == "doc-é\"\\\n", "doc %r" % b["doc"])
    got = b"".join(struct.pack("<f", x) for x in b["embedding"])
    check(got == emb, "embedding does not round-trip bit-exactly")
    check(b["surprisal"][0] is None and f32bytes(b["surprisal"][1:]) == surp[4:],
          "surprisal %r" % b["surprisal"])
    check(b["topk"]["ids"] == [1, 2, 3, 4000000000, 5, 6] and
          f32bytes(b["topk"]["logprobs"]) == lps, "topk %r" % b["topk"])
    check(b"".join(struct.pack("<f", x) for x in b["logits_last"]) == logits, "logits_last")
    check(b["tok_start"] == 0 and b["model"] == "ab" * 32 and b["normalize"] is True
          and b["precision"] == "bf16", "fields")
    import hashlib  # noqa: F401  (msg_hash is ours: only its shape is checked)
    check(len(b["msg_hash"]) == 16 and int(b["msg_hash"], 16) >= 0, "msg_hash")
    e = recs[1]
    check(e["type"] == "error" and e["doc"] == {"hex": "ff0062696e"} and
          e["expected_seq"] == 1 and e["reason"] == "seq_gap", "error record %r" % e)
    check(recs[2]["type"] == "ack" and recs[2]["next_seq"] == 1, "ack record")
    f = recs[3]
    check(f["mean_surprisal"] == 1.0 / 3.0 and f32bytes(f["embedding"]) == emb[:16]
          and f["precision"] == "mixed", "final %r" % f)
    check(any("error output" in line and "seq_gap" in line and "expected_seq 1" in line
              for line in err), "error not on stderr: %s" % err)
    check(any(line.startswith("rwkvd-sink: ack:") for line in err), "ack not on stderr")
    del raws


def test_sink_stdout_and_nil_embedding():
    d = tmpdir()
    em = Emitter(d)
    p = sink(em, "--until-final", "1", "-q")
    em.send(final("empty", 0, None, None))
    rc, out, err = finish(p)
    check(rc == 0 and err == [], "status %d: %s" % (rc, err))
    rec = json.loads(out.decode())
    check(rec["embedding"] is None and rec["mean_surprisal"] is None and rec["blocks"] == 0,
          "record %r" % rec)


def test_sink_dedupe_and_verify():
    d = tmpdir()
    em = Emitter(d)
    out = os.path.join(d, "o.jsonl")
    em = Emitter(d)
    p = sink(em, "--out", out, "--until-final", "1", "--verify-identical")
    e0 = f32bytes([1, 2, 3, 4])
    for m in (block("a", 0, e0), block("a", 1, e0), block("a", 0, e0), block("b", 0, e0),
              block("a", 1, e0), final("a", 2)):
        em.send(m)
    rc, _, err = finish(p)
    check(rc == 0, "status %d: %s" % (rc, err))
    recs = [json.loads(line) for line in open(out)]
    keys = [(r["doc"], r.get("block")) for r in recs]
    check(keys == [("a", 0), ("a", 1), ("b", 0), ("a", None)], "records %s" % keys)
    check(any("2 duplicates dropped" in line for line in err), "summary %s" % err)
    # A re-emitted block whose bytes differ is an error under --verify-identical.
    out2 = os.path.join(d, "o2.jsonl")
    em = Emitter(d)
    p = sink(em, "--out", out2, "--until-final", "1", "--verify-identical")
    em.send(block("a", 0, e0))
    em.send(block("a", 0, f32bytes([1, 2, 3, 5])))
    em.send(final("a", 1))
    em.send(final("a", 1, mean=2.0))
    rc, _, err = finish(p)
    check(rc == 1, "status %d with a differing copy" % rc)
    bad = [line for line in err if "differs" in line]
    check(len(bad) == 1 and 'doc "a" block 0' in bad[0], "stderr %s" % err)
    recs = [json.loads(line) for line in open(out2)]
    check(len(recs) == 2 and recs[0]["embedding"] == [1, 2, 3, 4], "first copy not kept")
    # Without --verify-identical the differing copy is just a duplicate.
    em = Emitter(d)
    p = sink(em, "--out", out2, "--until-final", "1")
    em.send(block("a", 0, e0))
    em.send(block("a", 0, f32bytes([1, 2, 3, 5])))
    em.send(final("a", 1))
    rc, _, err = finish(p)
    check(rc == 0, "status %d without --verify-identical: %s" % (rc, err))


def test_sink_append_rebuilds_keys():
    d = tmpdir()
    em = Emitter(d)
    out = os.path.join(d, "o.jsonl")
    e0 = f32bytes([1, 2, 3, 4])
    docb = b"\xfe\xffbin"
    em = Emitter(d)
    p = sink(em, "--out", out, "--idle-timeout", "1")
    em.send(block("x", 0, e0))
    em.send(block("x", 1, e0))
    em.send(block(docb, 0, e0))
    rc, _, err = finish(p)
    check(rc == 0, "idle exit: status %d: %s" % (rc, err))
    with open(out, "a") as f:
        f.write('{"type":"block","doc":"x","block":2,"tok_st')   # a crash mid-line
    em = Emitter(d)
    p = sink(em, "--out", out, "--append", "--verify-identical", "--until-final", "1")
    em.send(block("x", 1, e0))          # already written: dropped, identical
    em.send(block(docb, 0, e0))         # bin doc id: dropped too
    em.send(block("x", 2, e0))          # the one cut off: written now
    em.send(final("x", 3))
    rc, _, err = finish(p)
    check(rc == 0, "status %d: %s" % (rc, err))
    check(any("cut-off last line" in line for line in err), "no note about the cut: %s" % err)
    lines = open(out).read().splitlines()
    recs = [json.loads(line) for line in lines]   # every line parses: the cut one is gone
    keys = [(r["doc"] if isinstance(r["doc"], str) else r["doc"]["hex"], r.get("block"))
            for r in recs]
    check(keys == [("x", 0), ("x", 1), ("feff62696e", 0), ("x", 2), ("x", None)],
          "records %s" % keys)
    # A restarted sink still catches a differing re-emission.
    em = Emitter(d)
    p = sink(em, "--out", out, "--append", "--verify-identical", "--idle-timeout", "1")
    em.send(block("x", 1, f32bytes([9, 9, 9, 9])))
    rc, _, err = finish(p)
    check(rc == 1 and any("differs" in line for line in err), "status %d: %s" % (rc, err))
    # Finals already in the file count for --until-final.
    em = Emitter(d)
    p = sink(em, "--out", out, "--append", "--until-final", "1", "--idle-timeout", "5")
    rc, _, err = finish(p)
    check(rc == 0, "until-final with a final on file: status %d: %s" % (rc, err))
    # A file that is not ours is refused rather than appended to.
    other = write_file(d, "other.jsonl", b'{"hello": 1}\n')
    em = Emitter(d)
    p = sink(em, "--out", other, "--append", "--idle-timeout", "1")
    rc, _, err = finish(p)
    check(rc == 1 and len(err) == 1 and "other.jsonl:1" in err[0], "foreign file: %s" % err)


def test_sink_raw():
    d = tmpdir()
    em = Emitter(d)
    raw = os.path.join(d, "raw")
    em = Emitter(d)
    p = sink(em, "--raw", raw, "--until-final", "2")
    emb = tricky_floats(8, 9)
    surp = struct.pack("<I", 0x7FC00000) + f32bytes([1.5, 2.5, 3.5])
    ids = struct.pack("<4I", 1, 2, 3, 4)
    lps = f32bytes([-1, -2, -3, -4])
    long_doc = "L" * 200
    em.send(block("r", 0, emb, surp, topk={"k": 1, "ids": ids, "logprobs": lps}))
    em.send({"v": 1, "type": "error", "doc": "r", "seq": 9, "reason": "bad_token",
             "message": "nope"})
    em.send(final("r", 1, emb))
    em.send(block(long_doc, 0, emb))
    em.send(final(long_doc, 1, None))
    rc, _, err = finish(p)
    check(rc == 0, "status %d: %s" % (rc, err))
    ddir = os.path.join(raw, b"r".hex())
    files = sorted(os.listdir(ddir))
    check(files == ["0.embedding.f32", "0.json", "0.surprisal.f32", "0.topk_ids.u32",
                    "0.topk_logprobs.f32", "final.embedding.f32", "final.json"],
          "files %s" % files)
    rd = lambda n: open(os.path.join(ddir, n), "rb").read()  # noqa: E731
    check(rd("0.embedding.f32") == emb and rd("0.surprisal.f32") == surp and
          rd("0.topk_ids.u32") == ids and rd("0.topk_logprobs.f32") == lps, "raw bytes")
    meta = json.loads(rd("0.json"))
    check(meta["embedding"] == {"file": "0.embedding.f32", "n": 8} and meta["tok_end"] == 4,
          "meta %r" % meta)
    check(any("bad_token" in line for line in err), "error not reported: %s" % err)
    dirs = [n for n in os.listdir(raw) if "~" in n]
    check(len(dirs) == 1 and dirs[0].startswith(b"L".hex() * 96) and len(dirs[0]) == 192 + 17,
          "long doc dir %s" % os.listdir(raw))
    # --append reloads the keys from the directory.
    em = Emitter(d)
    p = sink(em, "--raw", raw, "--append", "--verify-identical", "--idle-timeout", "1")
    em.send(block("r", 0, emb, surp, topk={"k": 1, "ids": ids, "logprobs": lps}))
    em.send(block(long_doc, 0, f32bytes([0, 0])))
    rc, _, err = finish(p)
    check(rc == 1, "differing re-emission not caught in raw mode: %s" % err)
    check(any("2 duplicates dropped" in line for line in err), "summary %s" % err)


def test_sink_idle_and_bad_messages():
    d = tmpdir()
    em = Emitter(d)
    p = sink(em, "--until-final", "2", "--idle-timeout", "0.5", "-q")
    em.send(final("one", 0))
    t = time.monotonic()
    rc, out, err = finish(p)
    check(rc == 1 and len(err) == 1 and "idle" in err[0] and "1 of 2" in err[0],
          "status %d: %s" % (rc, err))
    check(time.monotonic() - t < 10, "idle timeout too slow")
    # Undecodable outputs are reported and skipped; the status says so.
    em = Emitter(d)
    p = sink(em, "--until-final", "1", "-q")
    em.send(b"\xc1")
    em.send(b"\xdd\xff\xff\xff\xff")                     # array claiming 4G entries
    em.send(msgpack.packb([1, 2]))                      # not a map
    em.send(msgpack.packb({"v": 1, "type": "block", "doc": "z"}))   # no block number
    em.send(msgpack.packb({"v": 1, "type": "block", "doc": "z", "block": 0,
                           "embedding": b"abc"}))      # not whole floats
    em.send(final("z", 0))
    rc, out, err = finish(p)
    check(rc == 1, "status %d" % rc)
    check(len([line for line in err if "output" in line]) == 5, "stderr %s" % err)
    check(len(out.splitlines()) == 1, "stdout %r" % out)


def test_sink_signal_flushes():
    d = tmpdir()
    em = Emitter(d)
    out = os.path.join(d, "o.jsonl")
    em = Emitter(d)
    p = sink(em, "--out", out)
    em.send(block("s", 0, f32bytes([1])))
    end = time.monotonic() + 10
    while time.monotonic() < end and (not os.path.exists(out) or not os.path.getsize(out)):
        time.sleep(0.02)
    p.send_signal(signal.SIGTERM)
    rc, _, err = finish(p)
    check(rc == 0, "SIGTERM: status %d: %s" % (rc, err))
    check(len(open(out).read().splitlines()) == 1, "output lost")


# ---------------------------------------------------------------- arguments

def test_bad_arguments():
    d = tmpdir()
    f = write_file(d, "f", b"x")
    cases = {
        "rwkvd-send": [[], [f, f], ["--bogus", f], ["--chunk-size", "0", f],
                       ["--chunk-size", "2G", f], ["--chunk-size", "12Q", f],
                       ["--pooling", "max", f], ["--topk", "0", f], ["--topk", "65", f],
                       ["--outputs", "embedding,nope", f], ["--outputs", "topk,topk", f],
                       ["--timeout", "-1", f], ["--timeout", "abc", f], ["-"],
                       ["--doc", "", f], ["--doc", "x" * 257, f], [f, "--doc"]],
        "rwkvd-sink": [["extra"], ["--bogus"], ["--until-final", "0"],
                       ["--until-final", "-3"], ["--idle-timeout", "0"], ["--append"],
                       ["--out", "a", "--raw", "b"], ["--out", ""], ["--emit"]],
    }
    for prog, lists in cases.items():
        for args in lists:
            p = subprocess.run([tool(prog)] + args, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=30)
            err = p.stderr.decode().splitlines()
            check(p.returncode == 2, "%s %s: status %d" % (prog, args, p.returncode))
            check(len(err) == 1 and err[0].startswith(prog + ": "),
                  "%s %s: stderr %s" % (prog, args, err))
        p = subprocess.run([tool(prog), "--help"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30)
        check(p.returncode == 0 and b"usage:" in p.stdout and p.stderr == b"",
              "%s --help" % prog)
    # Failures at run time are one line too (status 1).
    rc, err = send_tool({"ingest": "ipc://%s/i" % d, "control": "ipc://%s/c" % d},
                        os.path.join(d, "missing"))
    check(rc == 1 and len(err) == 1 and "missing" in err[0], "missing file: %s" % err)
    rc, err = send_tool({"ingest": "ipc://%s/i" % d, "control": "ipc://%s/c" % d}, d)
    check(rc == 1 and len(err) == 1 and "directory" in err[0], "directory: %s" % err)
    p = subprocess.run([tool("rwkvd-sink"), "--emit", "ipc://%s/e" % d, "--out",
                        os.path.join(d, "no", "such", "dir")], stderr=subprocess.PIPE,
                       timeout=30)
    check(p.returncode == 1 and len(p.stderr.splitlines()) == 1, "unwritable --out")


# ---------------------------------------------------------------- the real daemon

def test_real_daemon_end_to_end():
    d = tmpdir()
    _, eps = start_daemon(d, "--block-size", "64")
    text = open(os.path.join(FIXTURES, "inputs", "gpl-3.first4096.bin"), "rb").read()
    path = write_file(d, "gpl.txt", text)
    out = os.path.join(d, "o.jsonl")
    s = subprocess.Popen([tool("rwkvd-sink"), "--emit", eps["emit"], "--out", out,
                          "--until-final", "2", "--verify-identical", "--idle-timeout", "120"],
                         stderr=subprocess.PIPE)
    defer(lambda: stop(s))
    rc, err = send_tool(eps, "--chunk-size", "1000", "--outputs", "embedding,surprisal,topk",
                        "--topk", "3", path, timeout=300)
    check(rc == 0, "send: status %d: %s" % (rc, err))
    # A second document, half of it sent by hand first: the tool continues.
    ctx = zmq.Context.instance()
    push = ctx.socket(zmq.PUSH)
    push.connect(eps["ingest"])
    for seq in range(2):
        push.send(msgpack.packb({"v": 1, "doc": "half", "seq": seq,
                                 "bytes": text[seq * 1000:(seq + 1) * 1000]}))
    push.close(linger=5000)
    end = time.monotonic() + 60
    while control(eps["control"], "resume", doc="half")["next_seq"] < 2:
        check(time.monotonic() < end, "daemon did not take the first messages")
        time.sleep(0.05)
    rc, err = send_tool(eps, "--chunk-size", "1000", "--doc", "half", path, timeout=300)
    check(rc == 0 and any("continuing from byte 2000" in line for line in err),
          "resume: status %d: %s" % (rc, err))
    _, serr = s.communicate(timeout=120)
    check(s.returncode == 0, "sink status %d: %s" % (s.returncode, serr))
    recs = [json.loads(line) for line in open(out)]
    for doc in (path, "half"):
        blocks = [r for r in recs if r["doc"] == doc and r["type"] == "block"]
        fin = [r for r in recs if r["doc"] == doc and r["type"] == "final"]
        check(len(blocks) == 64 and [b["block"] for b in blocks] == list(range(64)),
              "%s: %d blocks" % (doc, len(blocks)))
        check(len(fin) == 1 and fin[0]["tokens"] == 4096 and fin[0]["blocks"] == 64,
              "%s: final %r" % (doc, fin[:1]))
        check(len(blocks[0]["embedding"]) == fin[0]["dim"] and
              blocks[0]["surprisal"][0] is None and len(blocks[5]["surprisal"]) == 64,
              "%s: block fields" % doc)
    # Same input, same model: the two documents' outputs are identical.
    a = [r for r in recs if r["doc"] == path and r["type"] == "block"]
    b = [r for r in recs if r["doc"] == "half" and r["type"] == "block"]
    check(all(x["embedding"] == y["embedding"] for x, y in zip(a, b)),
          "split differently, the embeddings differ")


def selected(name):
    """Arguments are case filters (`make check T=test_clients ARGS=sink`)."""
    filters = [a for a in sys.argv[1:] if not a.startswith("-")]
    return not filters or any(f in name for f in filters)


def main():
    for t in (test_send_file_splits, test_send_edges, test_send_opts_on_seq0, test_send_no_wait,
              test_send_stdin,
              test_send_kill_and_resume, test_send_stdin_kill_and_resume,
              test_send_finished_doc, test_send_mismatch_detected, test_send_dead_daemon,
              test_send_bad_control_replies,
              test_send_stuck_daemon_times_out, test_send_daemon_restart,
              test_send_progress_on_terminal, test_sink_jsonl_roundtrip,
              test_sink_stdout_and_nil_embedding, test_sink_dedupe_and_verify,
              test_sink_append_rebuilds_keys, test_sink_raw, test_sink_idle_and_bad_messages,
              test_sink_signal_flushes, test_bad_arguments):
        if selected(t.__name__):
            run(t)
    if not selected("test_real_daemon_end_to_end"):
        pass
    elif daemon_expected():
        run(test_real_daemon_end_to_end)
    else:
        skip("test_real_daemon_end_to_end", "daemon/main.c is not in this tree yet")
    return summary()


if __name__ == "__main__":
    sys.exit(main())
