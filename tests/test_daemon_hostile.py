#!/usr/bin/python3
"""test_daemon_hostile.py — hostile ingest messages against a live rwkvd.

One message per failure mode of PROTOCOL.md §3 and §9 (malformed msgpack,
wrong types, counts and lengths claiming gigabytes in a few bytes, invalid
UTF-8, unknown fields, bad keys, seq gaps beyond max_held_msgs, multi-frame
messages, ...) goes in through its own PUSH socket, in order; each must come
back as exactly one error output with the reason code the protocol names,
the doc and seq when they are readable, and a "refused" log line — while a
good document streams in parallel on another socket and must come out
byte-identical to the same document sent alone (and match the fixture's mean
surprisal).  A refused message consumes nothing: the documents it named
continue afterwards as if it had never been sent.  Messages above
--max-message-size are dropped by ZeroMQ (the sender is disconnected): the
daemon stays up and keeps serving.  RSS must stay small throughout.

Runs against the rel binary and the ASan+UBSan binary, so the sanitizers
watch the daemon's parsers on these inputs.
"""
import os
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "support"))
import msgpack
import zmq
from rwkvd_harness import (ASAN_BIN, REL_BIN, TINY, Daemon, TestFailure, Work, check,
                           fixture_f32, manifest, pack, run_cases, tiny_text, tolerance_abs,
                           unpack)

MAX_HELD = 4
MAX_TOKENS = 1000
ARGS = ["--block-size", "256", "--max-held-msgs", str(MAX_HELD), "--max-tokens-per-message",
        str(MAX_TOKENS), "--max-message-size", "64K", "--linger-ms", "100"]


def P(o):
    return msgpack.packb(o, use_bin_type=True)


def M(*pairs):
    """A map from already-packed (key, value) pairs, in order."""
    n = len(pairs)
    head = bytes([0x80 | n]) if n < 16 else b"\xde" + struct.pack(">H", n)
    return head + b"".join(k + v for k, v in pairs)


def F(key, value):
    return (P(key), P(value))


def rawstr(b):
    """A msgpack str holding arbitrary bytes (to send invalid UTF-8)."""
    n = len(b)
    if n < 32:
        return bytes([0xa0 | n]) + b
    return b"\xd9" + bytes([n]) + b


BASE = [F("v", 1), F("doc", "h"), F("seq", 0)]


def base(**over):
    d = {"v": 1, "doc": "h", "seq": 0}
    d.update(over)
    return P(d)


# (name, message bytes or ("multipart", [frames]), reason, doc, seq): doc and seq are
# the message's own (None: absent or unreadable).  Every error output names
# exactly these (PROTOCOL.md §4.4: doc and seq "when readable"), also for a
# message refused before msgpack-c read it (too deep, too many, cut short):
# what precedes the fault is read straight from the bytes.
CASES = [
    ("byte 0xc1", b"\xc1", "malformed", None, None),
    ("empty message", b"", "malformed", None, None),
    ("map cut short", base(bytes=b"abc")[:-2], "malformed", "h", 0),
    ("trailing bytes", base(bytes=b"abc") + b"\x00", "malformed", "h", 0),
    ("5-byte array claiming 2^32-1 elements", b"\xdd\xff\xff\xff\xff", "malformed", None, None),
    ("5-byte map claiming 2^32-1 entries", b"\xdf\xff\xff\xff\xff", "malformed", None, None),
    ("tokens array claiming 2^32-1", M(*BASE, (P("tokens"), b"\xdd\xff\xff\xff\xff")), "malformed",
     "h", 0),
    ("bin claiming 4 GiB", M(*BASE, (P("bytes"), b"\xc6\xff\xff\xff\xffabc")), "malformed", "h", 0),
    ("str claiming 4 GiB", M(*BASE, (P("text"), b"\xdb\xff\xff\xff\xffabc")), "malformed", "h", 0),
    ("not a map", P([1, 2, 3]), "wrong_type", None, None),
    ("seq as str", base(seq="0", bytes=b""), "wrong_type", "h", None),
    ("v as float", P({"v": 1.0, "doc": "h", "seq": 0, "bytes": b""}), "wrong_type", "h", 0),
    ("eof as int", base(bytes=b"", eof=1), "wrong_type", "h", 0),
    ("doc as int", P({"v": 1, "doc": 7, "seq": 0, "bytes": b""}), "wrong_type", None, 0),
    ("bytes as str", base(bytes="abc"), "wrong_type", "h", 0),
    ("text: lone continuation", M(*BASE, (P("text"), rawstr(b"ab\x80cd"))), "bad_utf8", "h", 0),
    ("text: overlong", M(*BASE, (P("text"), rawstr(b"\xc0\xaf"))), "bad_utf8", "h", 0),
    ("text: surrogate", M(*BASE, (P("text"), rawstr(b"x\xed\xa0\x80"))), "bad_utf8", "h", 0),
    ("text: above U+10FFFF", M(*BASE, (P("text"), rawstr(b"\xf4\x90\x80\x80"))), "bad_utf8", "h", 0),
    ("text: cut at the end", M(*BASE, (P("text"), rawstr(b"abc\xe2\x82"))), "bad_utf8", "h", 0),
    ("unknown field EOF", base(bytes=b"", EOF=True), "unknown_field", "h", 0),
    ("unknown opts key", base(bytes=b"", opts={"foo": 1}), "unknown_field", "h", 0),
    ("bad version", P({"v": 3, "doc": "h", "seq": 0, "bytes": b""}), "bad_version", "h", 0),
    ("empty doc", P({"v": 1, "doc": "", "seq": 0, "bytes": b""}), "bad_doc", None, 0),
    ("257-byte doc", P({"v": 1, "doc": "x" * 257, "seq": 0, "bytes": b""}), "bad_doc", None, 0),
    ("negative seq", base(seq=-1, bytes=b""), "bad_seq", "h", None),
    ("seq 2^53", base(seq=2 ** 53, bytes=b""), "bad_seq", "h", None),
    ("two payloads", base(bytes=b"a", text="a"), "payload_conflict", "h", 0),
    ("no payload, no eof", base(), "no_payload", "h", 0),
    ("token id = vocab size", base(tokens=[1, 256]), "bad_token", "h", 0),
    ("negative token id", base(tokens=[1, -1]), "bad_token", "h", 0),
    ("token bin of 5 bytes", base(tokens=b"\0\0\0\0\0"), "bad_token", "h", 0),
    ("token bin id = vocab size", base(tokens=struct.pack("<2I", 5, 256)), "bad_token", "h", 0),
    ("pooling max", base(bytes=b"", opts={"pooling": "max"}), "bad_opts", "h", 0),
    ("topk 0", base(bytes=b"", opts={"topk": 0}), "bad_opts", "h", 0),
    ("topk 65", base(bytes=b"", opts={"topk": 65}), "bad_opts", "h", 0),
    ("output repeated", base(bytes=b"", opts={"outputs": ["topk", "topk"]}), "bad_opts", "h", 0),
    ("unknown output", base(bytes=b"", opts={"outputs": ["hidden"]}), "bad_opts", "h", 0),
    ("opts with seq 1", base(seq=1, bytes=b"", opts={"topk": 3}), "opts_not_first", "h", 1),
    ("nested too deep", base(bytes=b"", opts={"outputs": [["embedding"]]}), "too_deep", "h", 0),
    ("17 entries", M(*BASE, *[F("k%d" % i, i) for i in range(14)]), "too_many", "h", 0),
    ("tokens above max_tokens_per_message", base(tokens=[1] * (MAX_TOKENS + 1)), "too_many", "h", 0),
    ("ext type", M(*BASE, (P("bytes"), P(msgpack.ExtType(1, b"xyz")))), "unsupported_type", "h",
     0),
    ("timestamp", M(*BASE, (P("bytes"), b"\xd6\xff\x00\x00\x00\x01")), "unsupported_type", "h", 0),
    ("int key", M(*BASE, (P(1), P(2))), "bad_key", "h", 0),
    ("repeated key", M(*BASE, F("seq", 1)), "bad_key", "h", 0),
    ("33-byte key", M(*BASE, F("k" * 33, 1)), "bad_key", "h", 0),
    ("empty key", M(*BASE, F("", 1)), "bad_key", "h", 0),
    ("bin key", M(*BASE, F(b"eof", True)), "bad_key", "h", 0),
    ("missing seq", P({"v": 1, "doc": "h", "bytes": b""}), "missing_field", "h", None),
    ("missing doc", P({"v": 1, "seq": 0, "bytes": b""}), "missing_field", None, 0),
    ("missing v", P({"doc": "h", "seq": 0, "bytes": b""}), "missing_field", "h", 0),
    ("multi-frame", ("multipart", [base(bytes=b"a"), base(bytes=b"b")]), "malformed", "h", 0),
    # document-level refusals: payload kind, finished document, seq gap
    ("seq 0 of pk (bytes)", P({"v": 1, "doc": "pk", "seq": 0, "bytes": b"ab"}), None, None, None),
    ("tokens after bytes", P({"v": 1, "doc": "pk", "seq": 1, "tokens": [1]}), "payload_kind", "pk", 1),
    ("fin: seq 0 with eof", P({"v": 1, "doc": "fin", "seq": 0, "bytes": b"xyz", "eof": True}), None,
     None, None),
    ("fin: seq 1 after eof", P({"v": 1, "doc": "fin", "seq": 1, "bytes": b"z"}), "doc_finished", "fin", 1),
]
GAP_PARTS = [b"gap-%d;" % i for i in range(8)]


def gap_msg(seq, eof=False):
    m = {"v": 1, "doc": "gap", "seq": seq, "bytes": GAP_PARTS[seq]}
    if eof:
        m["eof"] = True
    return P(m)


# seq 0, then 2..MAX_HELD+1 held, then MAX_HELD+2 refused, then 1 fills the gap
CASES += [("gap: seq 0", gap_msg(0), None, None, None)]
CASES += [("gap: seq %d held" % s, gap_msg(s), None, None, None) for s in range(2, MAX_HELD + 2)]
CASES += [("gap: seq %d beyond max_held" % (MAX_HELD + 2), gap_msg(MAX_HELD + 2), "seq_gap", "gap",
           MAX_HELD + 2)]
CASES += [("gap: seq 1 fills the gap", gap_msg(1), None, None, None)]
CASES += [("gap: seq %d again, eof" % (MAX_HELD + 2), gap_msg(MAX_HELD + 2, eof=True), None, None, None)]
# the document "h" every refusal above named: nothing was consumed
CASES += [("h: the real seq 0", P({"v": 1, "doc": "h", "seq": 0, "bytes": b"hello", "eof": True}),
           None, None, None)]


def hostile(binary):
    text = tiny_text()
    man = manifest(TINY)
    sur = fixture_f32(TINY + "/surprisal.f32")
    tol = tolerance_abs(man, "surprisal.f32")
    fixture_mean = sum(sur) / len(sur)
    with Work() as w:
        d = Daemon(w, binary=binary, args=ARGS).start()
        pull = d.pull()
        good = d.push()
        bad = d.push()
        # the good document alone first: the reference
        parts = [text[i * 4096 // 16:(i + 1) * 4096 // 16] for i in range(16)]
        for i, p in enumerate(parts):
            good.send(P({"v": 1, "doc": "ref", "seq": i, "bytes": p, "eof": i == 15}))
        ref = []
        while True:
            check(pull.poll(60000), "no output for the reference document")
            raw = pull.recv()
            out = unpack(raw)
            check(out["type"] in ("block", "final"), "reference: %r" % out)
            ref.append(out)
            if out["type"] == "final":
                break
        check(abs(ref[-1]["mean_surprisal"] - fixture_mean) <= tol, "reference mean surprisal %r vs %r"
              % (ref[-1]["mean_surprisal"], fixture_mean))
        rss0 = d.rss_kb()

        # hostile messages, one good part after each
        gi = 0
        for i, (name, m, *_rest) in enumerate(CASES):
            if isinstance(m, tuple):
                bad.send_multipart(m[1])
            else:
                bad.send(m)
            if i % 4 == 0 and gi < len(parts):
                good.send(P({"v": 1, "doc": "good", "seq": gi, "bytes": parts[gi], "eof": gi == 15}))
                gi += 1
        while gi < len(parts):
            good.send(P({"v": 1, "doc": "good", "seq": gi, "bytes": parts[gi], "eof": gi == 15}))
            gi += 1

        want = [(n, r, doc, seq) for n, _m, r, doc, seq in CASES if r is not None]
        errors, outs, finals = [], [], {}
        end = time.time() + 120
        while len(errors) < len(want) or not {"good", "gap", "h", "fin"} <= set(finals):
            check(time.time() < end, "timed out: %d of %d errors, finals %r; last errors %r"
                  % (len(errors), len(want), sorted(finals), errors[-3:]))
            if not pull.poll(500):
                d.check_running()
                continue
            out = unpack(pull.recv())
            if out["type"] == "error":
                errors.append(out)
            elif out["type"] == "final":
                finals[out["doc"]] = out
                if out["doc"] == "good":
                    outs.append(out)
            elif out["type"] == "block" and out["doc"] == "good":
                outs.append(out)
        time.sleep(0.3)
        while pull.poll(100):
            out = unpack(pull.recv())
            check(out["type"] != "error", "an extra error output: %r" % out)
        problems = []
        for (name, reason, doc, seq), e in zip(want, errors):
            got = (e.get("reason"), e.get("doc"), e.get("seq"))
            ok = got == (reason, doc, seq)
            if not ok:
                problems.append("%s: got %r, expected %r (%s)" % (name, got, (reason, doc, seq),
                                                                  e.get("message")))
            msg = e.get("message", "")
            if not msg or any(ord(c) < 0x20 or ord(c) > 0x7e for c in msg):
                problems.append("%s: message not one printable line: %r" % (name, msg))
            if reason == "bad_utf8" and "offset" not in msg:
                problems.append("%s: bad_utf8 without the offset: %r" % (name, msg))
            if reason == "seq_gap" and e.get("expected_seq") != 1:
                problems.append("%s: expected_seq %r" % (name, e.get("expected_seq")))
        check(not problems, "; ".join(problems))
        # the good document, streamed beside all that, equals the reference
        for a, b in zip(outs, ref):
            a = dict(a)
            b = dict(b)
            a.pop("doc")
            b.pop("doc")
            check(a == b, "good document output %s %r differs from the reference"
                  % (a["type"], a.get("block")))
        check(len(outs) == len(ref), "good document: %d outputs, reference %d" % (len(outs), len(ref)))
        g = finals["gap"]
        check(g["tokens"] == sum(len(p) for p in GAP_PARTS[:MAX_HELD + 3]),
              "gap document: %r tokens" % g["tokens"])
        check(finals["h"]["tokens"] == 5, "document h consumed a refused message: %r" % finals["h"])
        # every refusal is logged and counted
        log = d.log_text()
        st = d.call(cmd="status")
        refused = [l for l in log.splitlines() if " refused: " in l]
        counted = {r: 0 for _n, r, _d, _s in want}
        for _n, r, _d, _s in want:
            counted[r] += 1
        for r, c in counted.items():
            logged = sum(1 for l in refused if ": %s: " % r in l)
            check(logged == c, "%d log lines for %s, %d refused" % (logged, r, c))
            check(st["rejected"][r] == c, "rejected[%s] = %r, %d refused" % (r, st["rejected"][r], c))

        # messages above --max-message-size: ZeroMQ drops them and the sender
        big = d.push()
        big.send(P({"v": 1, "doc": "big", "seq": 0, "bytes": b"x" * (100 * 1024), "eof": True}))
        time.sleep(0.5)
        good.send(P({"v": 1, "doc": "after", "seq": 0, "bytes": b"still here", "eof": True}))
        end = time.time() + 30
        seen = []
        while True:
            check(time.time() < end, "no output after the oversize message: %r" % seen)
            if pull.poll(500):
                out = unpack(pull.recv())
                seen.append(out)
                if out["type"] == "final" and out["doc"] == "after":
                    break
        check(not any(o.get("doc") == "big" and o["type"] != "error" for o in seen),
              "an oversize message was processed: %r" % seen)
        check(not any(o["type"] == "error" and o["reason"] != "too_large" for o in seen),
              "unexpected error for the oversize message: %r" % seen)
        rss1 = d.rss_kb()
        check(rss1 - rss0 < 64 * 1024,
              "RSS %d kB after the hostile messages (%d kB before)" % (rss1, rss0))
        print("hostile: %d refusals checked, RSS %d -> %d kB" % (len(want), rss0, rss1), flush=True)
        for s in (pull, good, bad, big):
            s.close(0)
        d.stop()


if __name__ == "__main__":
    run_cases([
        ("hostile ingest messages (rel)", lambda: hostile(REL_BIN), "rel"),
        ("hostile ingest messages (asan)", lambda: hostile(ASAN_BIN), "asan"),
    ])
