#!/usr/bin/python3
"""test_python_client.py — clients/python/rwkvd.py against the fake daemon
(tests/support/fake_rwkvd.py, whose log shows exactly which messages
arrived) and against the real rwkvd on the tiny fixture model when
daemon/main.c is in the tree.  ipc:// endpoints in temp directories only.
"""

import array
import math
import os
import struct
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "support"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "clients", "python"))
import msgpack  # noqa: E402
import zmq  # noqa: E402

import rwkvd  # noqa: E402
from pyharness import (FIXTURES, check, daemon_expected, defer, read_log, run, skip,  # noqa: E402
                       start_daemon, start_fake, summary, tmpdir)

TEXT = None


def text():
    global TEXT
    if TEXT is None:
        with open(os.path.join(FIXTURES, "inputs", "gpl-3.first4096.bin"), "rb") as f:
            TEXT = f.read()
    return TEXT


def client(eps, **kw):
    c = rwkvd.Client(ingest=eps["ingest"], emit=eps["emit"], control=eps["control"], **kw)
    defer(c.close)
    return c


def fake():
    d = tmpdir()
    _, eps, logp = start_fake(d, "--block-size", "64")
    return eps, logp


def real():
    d = tmpdir()
    _, eps = start_daemon(d, "--block-size", "64")
    return eps, None


def processed(logp, doc):
    return [e for e in read_log(logp) if e["ev"] == "processed" and e["doc"] == doc.hex()]


def wait_next_seq(c, doc, n, timeout=60):
    end = time.monotonic() + timeout
    while c.resume(doc)["next_seq"] < n:
        check(time.monotonic() < end, "daemon did not reach next_seq %d" % n)
        time.sleep(0.02)


# ---------------------------------------------------------------- shared checks

def check_control(backend):
    eps, _ = backend()
    c = client(eps)
    h = c.health()
    check(h["ok"] and h["status"] == "ok" and isinstance(h["uptime_s"], float), "health %r" % h)
    s = c.status()
    check(isinstance(s["model"]["dim"], int) and s["model"]["vocab"] == 256, "status %r" % s)
    r = c.resume("nobody")
    check(r["known"] is False and r["next_seq"] == 0 and r["finished"] is False, "resume %r" % r)
    try:
        c.checkpoint("nobody")
        check(False, "checkpoint of an unknown doc did not raise")
    except rwkvd.RwkvdError as e:
        check(e.reason == "unknown_doc", "reason %r" % e.reason)
    check(c.drop("nobody")["dropped"] is False, "drop of an unknown doc")
    check(c.drop(b"\xff\xfe")["dropped"] is False, "drop of a bin doc id")
    try:
        c.resume("x" * 257)
        check(False, "a 257-byte doc id was accepted")
    except ValueError:
        pass


def check_document(backend):
    eps, _ = backend()
    c = client(eps)
    data = text()
    r = c.send_document("gpl", data, chunk_size=1000, opts={"outputs": ["embedding", "surprisal",
                                                                         "topk"], "topk": 2})
    check(r == {"first_seq": 0, "next_seq": 5, "sent": 5, "already_finished": False},
          "send_document returned %r" % r)
    outs = list(c.outputs(doc="gpl", timeout=60))
    blocks = [o for o in outs if o["type"] == "block"]
    fin = [o for o in outs if o["type"] == "final"]
    check(len(fin) == 1 and outs[-1] is fin[0], "iteration did not end at the final")
    check([b["block"] for b in blocks] == list(range(64)), "blocks %s" % [b["block"] for b in
                                                                            blocks][:10])
    b0 = blocks[0]
    dim = b0["dim"]
    check(isinstance(b0["embedding"], array.array) and b0["embedding"].typecode == "f" and
          len(b0["embedding"]) == dim, "embedding %r" % type(b0["embedding"]))
    check(math.isnan(b0["surprisal"][0]) and len(b0["surprisal"]) == 64 and
          not math.isnan(blocks[1]["surprisal"][0]), "surprisal")
    check(b0["topk"]["k"] == 2 and len(b0["topk"]["ids"]) == 128 and
          b0["topk"]["ids"].itemsize == 4 and len(b0["topk"]["logprobs"]) == 128, "topk")
    check(fin[0]["tokens"] == 4096 and fin[0]["blocks"] == 64, "final %r" % fin[0])
    again = c.send_document("gpl", data, chunk_size=1000)
    check(again["already_finished"] and again["sent"] == 0, "re-send %r" % again)
    check(list(c.outputs(doc="gpl", timeout=0.3)) == [], "outputs after the final")
    return blocks


def check_resume(backend):
    eps, logp = backend()
    c = client(eps)
    # The consumer connects before anything is sent: rwkvd reads no ingest
    # while an output waits for a consumer (PROTOCOL.md backpressure), so
    # without one the daemon may stop after seq 0's first block and never
    # reach next_seq 3 (it did when the first batch ran before seq 1 was read).
    c._pull_socket()
    data = text()
    for seq in range(3):
        c.send({"doc": "half", "seq": seq, "bytes": data[seq * 512:(seq + 1) * 512]})
    wait_next_seq(c, "half", 3)
    r = c.send_document("half", data, chunk_size=512)
    check(r["first_seq"] == 3 and r["next_seq"] == 8 and r["sent"] == 5, "resumed %r" % r)
    c.send_document("whole", data, chunk_size=4096)
    got = {}
    for doc in ("half", "whole"):
        got[doc] = [o for o in c.outputs(doc=doc, timeout=60) if o["type"] == "block"]
    check(len(got["half"]) == 64 and
          all(a["embedding"] == b["embedding"] and a["surprisal"].tobytes() ==
              b["surprisal"].tobytes() for a, b in zip(got["half"], got["whole"])),
          "split differently, the outputs differ")
    if logp:
        msgs = processed(logp, b"half")
        check([m["seq"] for m in msgs] == list(range(8)), "seqs %s" % [m["seq"] for m in msgs])
        check(not any(e["ev"] == "ack" for e in read_log(logp)), "something was re-sent")
    # A larger chunk size than before cannot be what the daemon has.
    for seq in range(2):
        c.send({"doc": "chunky", "seq": seq, "bytes": data[seq * 2048:(seq + 1) * 2048]})
    wait_next_seq(c, "chunky", 2)
    try:
        c.send_document("chunky", data, chunk_size=512)
        check(False, "a chunk-size mismatch was not detected")
    except rwkvd.RwkvdError as e:
        check("chunk_size" in str(e), "message %s" % e)
    try:
        c.send_document("chunky", data[:3000], chunk_size=2048)
        check(False, "data shorter than what the daemon has was accepted")
    except rwkvd.RwkvdError:
        pass


# ---------------------------------------------------------------- against the fake

def test_control_fake():
    check_control(fake)


def test_document_fake():
    check_document(fake)


def test_resume_fake():
    check_resume(fake)


def test_str_and_iterables_fake():
    eps, logp = fake()
    c = client(eps)
    c.send_document("s", "héllo wörld", chunk_size=4)
    wait_next_seq(c, "s", 4)
    msgs = processed(logp, b"s")
    check(b"".join(bytes.fromhex(m["data"]) for m in msgs) == "héllo wörld".encode() and
          [m["eof"] for m in msgs] == [False, False, False, True], "str split %s" % msgs)
    c.send_document("it", iter(["ab", b"\xff\x00", "cd"]))
    wait_next_seq(c, "it", 3)
    msgs = processed(logp, b"it")
    check([bytes.fromhex(m["data"]) for m in msgs] == [b"ab", b"\xff\x00", b"cd"] and
          msgs[-1]["eof"], "iterable %s" % msgs)
    # An iterable is resumed by skipping the chunks the daemon has.
    c.send({"doc": "gen", "seq": 0, "text": "one"})
    wait_next_seq(c, "gen", 1)
    r = c.send_document("gen", (x for x in ["one", "two", "three"]))
    check(r["first_seq"] == 1 and r["sent"] == 2, "generator resume %r" % r)
    wait_next_seq(c, "gen", 3)
    check([bytes.fromhex(m["data"]) for m in processed(logp, b"gen")] == [b"one", b"two",
                                                                          b"three"], "gen")
    c.send_document("nothing", [])
    wait_next_seq(c, "nothing", 1)
    msgs = processed(logp, b"nothing")
    check(len(msgs) == 1 and msgs[0]["eof"] and msgs[0]["data"] == "", "empty %s" % msgs)
    fins = [o for o in c.outputs(timeout=2) if o["type"] == "final"]
    check(sorted(o["doc"] for o in fins) == ["gen", "it", "nothing", "s"], "finals %s" % fins)
    try:
        c.send_document("bad", [1, 2])
        check(False, "an int chunk was accepted")
    except TypeError:
        pass


def test_outputs_dedupe_and_pending():
    d = tmpdir()
    ep = "ipc://%s/emit" % d
    push = zmq.Context.instance().socket(zmq.PUSH)
    push.bind(ep)
    defer(lambda: push.close(linger=0))
    c = rwkvd.Client(emit=ep, control="ipc://%s/none" % d, timeout=0.5)
    defer(c.close)
    check(c.recv_output(timeout=0) is None, "an output from nowhere")  # connects the PULL

    def blk(doc, n, v):
        return msgpack.packb({"v": 1, "type": "block", "doc": doc, "block": n,
                              "embedding": struct.pack("<2f", v, -v)})

    for m in (blk("A", 0, 1), blk("B", 0, 2), blk("A", 0, 1), blk("B", 1, 3),
              msgpack.packb({"v": 1, "type": "final", "doc": "B", "blocks": 2}),
              msgpack.packb({"v": 1, "type": "ack", "doc": "A", "seq": 0, "next_seq": 1,
                             "status": "duplicate"}),
              blk("A", 1, 4), msgpack.packb({"v": 1, "type": "final", "doc": "A", "blocks": 2}),
              blk("B", 1, 3)):
        push.send(m)
    b = [(o["type"], o.get("block")) for o in c.outputs(doc="B", timeout=5)]
    check(b == [("block", 0), ("block", 1), ("final", None)], "B: %s" % b)
    a = [(o["type"], o.get("block")) for o in c.outputs(doc=b"A", timeout=5)]
    check(a == [("block", 0), ("ack", None), ("block", 1), ("final", None)], "A: %s" % a)
    rest = list(c.outputs(timeout=0.5))
    check(rest == [], "the repeated B block came through: %s" % rest)
    push.send(blk("A", 0, 1))
    raw = list(c.outputs(timeout=2, dedupe=False))
    check(len(raw) == 1 and list(raw[0]["embedding"]) == [1.0, -1.0], "dedupe=False %s" % raw)
    try:
        rwkvd.decode_output(b"\xc1")
        check(False, "garbage decoded")
    except rwkvd.RwkvdError:
        pass
    try:
        rwkvd.decode_output(msgpack.packb({"type": "block", "embedding": b"abc"}))
        check(False, "a 3-byte vector decoded")
    except rwkvd.RwkvdError:
        pass


def test_control_timeout_and_recovery():
    d = tmpdir()
    eps = {"ingest": "ipc://%s/ingest" % d, "emit": "ipc://%s/emit" % d,
           "control": "ipc://%s/control" % d}
    c = client(eps, timeout=0.3)
    t = time.monotonic()
    try:
        c.health()
        check(False, "no daemon, yet health answered")
    except rwkvd.RwkvdTimeout:
        pass
    check(time.monotonic() - t < 3, "timeout took %.1f s" % (time.monotonic() - t))
    # The REQ socket that timed out is replaced: the next request works once
    # a daemon is there (the stale request is never taken as its answer).
    start_fake(d)
    c.timeout = 5
    check(c.health()["status"] == "ok", "no recovery after a timeout")
    check(c.resume("x")["known"] is False, "second request after recovery")


# ---------------------------------------------------------------- against rwkvd

def test_control_real():
    check_control(real)


def test_document_real():
    check_document(real)


def test_resume_real():
    check_resume(real)


def selected(name):
    """Arguments are case filters (`make check T=test_python_client ARGS=fake`)."""
    filters = [a for a in sys.argv[1:] if not a.startswith("-")]
    return not filters or any(f in name for f in filters)


def main():
    for t in (test_control_fake, test_document_fake, test_resume_fake,
              test_str_and_iterables_fake, test_outputs_dedupe_and_pending,
              test_control_timeout_and_recovery):
        if selected(t.__name__):
            run(t)
    for t in (test_control_real, test_document_real, test_resume_real):
        if not selected(t.__name__):
            continue
        if daemon_expected():
            run(t)
        else:
            skip(t.__name__, "daemon/main.c is not in this tree yet")
    return summary()


if __name__ == "__main__":
    sys.exit(main())
