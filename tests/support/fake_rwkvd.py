#!/usr/bin/python3
"""fake_rwkvd.py — a small stand-in for rwkvd (protocol v1, daemon/PROTOCOL.md)
for testing the clients without a model: same sockets, same message shapes,
same sequencing rules (next_seq, duplicates acknowledged, out-of-order
messages held up to 16, then seq_gap), a byte-level "tokenizer" (token =
byte), and made-up but deterministic outputs, so that a block computed again
after a restart is byte-identical to the first emission, as the real daemon
promises.

It is a test double for the CLIENT side: it checks the fields a client must
get right and refuses with the protocol's reason codes, but it is not a
second implementation of the daemon's decoder.

    fake_rwkvd.py --ingest EP --emit EP --control EP [--block-size N]
                  [--delay S] [--hwm N] [--state FILE] [--checkpoint-every N]
                  [--log FILE] [--dim N]

--state FILE emulates checkpoints: the documents are saved there every
--checkpoint-every processed messages, at eof and on `checkpoint`, and loaded
at start, so killing the process with SIGKILL loses exactly what came after
the last save (and the restarted fake re-emits those blocks).
--log FILE appends one JSON line per event: {"ev": "processed", "doc": hex,
"seq": n, "data": hex, "eof": bool, "opts": {...}|null}, "ack", "held",
"error" (with "reason"), "start".  Tests rebuild what the daemon saw from it.
--delay S sleeps S seconds after each processed message (a slow daemon);
--hwm N sets the ingest socket's receive high-water mark (backpressure).
"""

import argparse
import collections
import json
import math
import os
import struct
import sys
import time

import msgpack
import zmq

MODEL = "0123456789abcdef" * 4
VOCAB = 256
ALL_OUTPUTS = ("embedding", "logits_last", "topk", "surprisal")
INGEST_KEYS = {"v", "doc", "seq", "text", "bytes", "tokens", "eof", "opts"}
MAX_HELD = 16


class Refused(Exception):
    def __init__(self, reason, message, expected_seq=None):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.expected_seq = expected_seq


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


class Doc:
    def __init__(self, opts, block_size):
        self.opts = opts
        self.block_size = block_size
        self.next_seq = 0
        self.data = bytearray()   # every token (= byte) received
        self.blocks = 0
        self.finished = False
        self.kind = None          # "text" (text/bytes) or "tokens"
        self.held = {}

    def to_json(self):
        return {"opts": self.opts, "block_size": self.block_size, "next_seq": self.next_seq,
                "data": self.data.hex(), "blocks": self.blocks, "finished": self.finished,
                "kind": self.kind}

    @classmethod
    def from_json(cls, j):
        d = cls(j["opts"], j["block_size"])
        d.next_seq = j["next_seq"]
        d.data = bytearray.fromhex(j["data"])
        d.blocks = j["blocks"]
        d.finished = j["finished"]
        d.kind = j["kind"]
        return d


def embedding(data, end, dim, pooling, normalize):
    """Deterministic made-up vector for the document's first `end` tokens
    (from the last 64 of them, so it costs O(1) per block): includes values
    whose printing is delicate (0.1, a subnormal, -0.0, 1/3, large
    magnitudes)."""
    h = 1469598103934665603 ^ end
    for b in data[max(0, end - 64):end]:
        h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    v = []
    for i in range(dim):
        h = (h * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF
        v.append(((h >> 33) / 2.0 ** 31 - 0.5) * (10.0 ** ((i % 7) - 3)))
    if dim >= 4:
        v[0], v[1], v[2], v[3] = 0.1, 1e-42, -0.0, 1.0 / 3.0
    if pooling == "mean":
        v = [x * 0.5 for x in v]
    if normalize:
        n = math.sqrt(sum(x * x for x in v)) or 1.0
        v = [x / n for x in v]
    return struct.pack("<%df" % dim, *v)


def surprisal(data, i):
    return float("nan") if i == 0 else f32(data[i] / 10.0 + 0.123456789)


class Fake:
    def __init__(self, args):
        self.args = args
        self.t0 = time.monotonic()
        self.docs = {}
        self.processed_since_save = 0
        self.counts = {"messages": 0, "tokens": 0, "blocks": 0}
        ctx = zmq.Context.instance()
        self.ingest = ctx.socket(zmq.PULL)
        self.ingest.setsockopt(zmq.RCVHWM, args.hwm)
        self.ingest.bind(args.ingest)
        self.outq = collections.deque()
        self.emit = ctx.socket(zmq.PUSH)
        self.emit.setsockopt(zmq.LINGER, 2000)
        self.emit.bind(args.emit)
        self.control = ctx.socket(zmq.ROUTER)
        self.control.bind(args.control)
        self.log_fd = (os.open(args.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                       if args.log else None)
        if args.state and os.path.exists(args.state):
            with open(args.state) as f:
                j = json.load(f)
            self.docs = {bytes.fromhex(k): Doc.from_json(v) for k, v in j.items()}
        self.log(ev="start", pid=os.getpid())

    # ---------------------------------------------------------------- utils
    def log(self, **ev):
        if self.log_fd is not None:
            # one write(2) per line on an O_APPEND file: a reader (or a
            # SIGKILL) never sees half a line followed by another line
            os.write(self.log_fd, (json.dumps(ev) + "\n").encode())

    def save(self):
        if not self.args.state:
            return
        tmp = self.args.state + ".tmp"
        with open(tmp, "w") as f:
            json.dump({k.hex(): d.to_json() for k, d in self.docs.items()}, f)
        os.replace(tmp, self.args.state)
        self.processed_since_save = 0

    def send(self, out):
        """Queues an output: a PUSH socket with no consumer connected would
        block, and the fake must keep answering control meanwhile."""
        self.outq.append(msgpack.packb(out, use_bin_type=True))
        self.flush()

    def flush(self):
        while self.outq:
            try:
                self.emit.send(self.outq[0], zmq.NOBLOCK)
            except zmq.Again:
                return
            self.outq.popleft()

    @staticmethod
    def doc_wire(doc):
        try:
            return doc.decode("utf-8")
        except UnicodeDecodeError:
            return doc

    def head(self, typ, doc, d):
        return {"v": 1, "type": typ, "doc": self.doc_wire(doc)}

    def model4(self, out, d):
        """The fields every block and final names (PROTOCOL.md §4.1)."""
        out["model"] = MODEL
        out["dim"] = self.args.dim
        out["pooling"] = d.opts["pooling"]
        out["normalize"] = d.opts["normalize"]
        out["precision"] = "fp32"

    # ---------------------------------------------------------------- outputs
    def emit_block(self, doc, d, t0, t1):
        out = self.head("block", doc, d)
        out["block"] = d.blocks
        out["tok_start"] = t0
        out["tok_end"] = t1
        self.model4(out, d)
        outs = d.opts["outputs"]
        if "embedding" in outs:
            out["embedding"] = embedding(d.data, t1, self.args.dim, d.opts["pooling"],
                                         d.opts["normalize"])
        if "logits_last" in outs:
            out["logits_last"] = struct.pack("<%df" % VOCAB, *[
                f32((d.data[t1 - 1] * 31 + j) % 251 / 25.0 - 5.0) for j in range(VOCAB)])
        if "topk" in outs:
            k = d.opts["topk"]
            ids, lps = [], []
            for i in range(t0, t1):
                for r in range(k):
                    ids.append((d.data[i] + r) % VOCAB)
                    lps.append(f32(-0.5 - r - i % 3 / 10.0))
            out["topk"] = {"k": k, "ids": struct.pack("<%dI" % len(ids), *ids),
                           "logprobs": struct.pack("<%df" % len(lps), *lps)}
        if "surprisal" in outs:
            out["surprisal"] = struct.pack("<%df" % (t1 - t0),
                                           *[surprisal(d.data, i) for i in range(t0, t1)])
        self.send(out)
        d.blocks += 1
        self.counts["blocks"] += 1

    def emit_final(self, doc, d):
        out = self.head("final", doc, d)
        n = len(d.data)
        out["tokens"] = n
        out["blocks"] = d.blocks
        self.model4(out, d)
        if "embedding" in d.opts["outputs"]:
            out["embedding"] = embedding(d.data, n, self.args.dim, d.opts["pooling"],
                                         d.opts["normalize"]) if n else None
        if "surprisal" in d.opts["outputs"]:
            out["mean_surprisal"] = (sum(surprisal(d.data, i) for i in range(1, n)) / (n - 1)
                                     if n >= 2 else None)
        self.send(out)

    def error(self, doc, seq, reason, message, expected_seq=None):
        out = {"v": 1, "type": "error", "doc": self.doc_wire(doc) if doc else None,
               "seq": seq, "reason": reason, "message": message}
        if expected_seq is not None:
            out["expected_seq"] = expected_seq
        self.send(out)
        self.log(ev="error", doc=doc.hex() if doc else None, seq=seq, reason=reason)

    # ---------------------------------------------------------------- ingest
    def parse(self, raw):
        try:
            m = msgpack.unpackb(raw, raw=False)
        except Exception as e:
            raise Refused("malformed", "ingest message: %s" % e)
        if not isinstance(m, dict):
            raise Refused("wrong_type", "ingest message: not a map")
        for k in m:
            if k not in INGEST_KEYS:
                raise Refused("unknown_field", "ingest message: field %r" % k)
        for k in ("v", "doc", "seq"):
            if k not in m:
                raise Refused("missing_field", "ingest message: no %r" % k)
        if m["v"] != 1:
            raise Refused("bad_version", "ingest message: v %r" % m["v"])
        doc = m["doc"].encode("utf-8") if isinstance(m["doc"], str) else m["doc"]
        if not isinstance(doc, bytes) or not 1 <= len(doc) <= 256:
            raise Refused("bad_doc", "ingest message: bad doc")
        seq = m["seq"]
        if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq < 2 ** 53:
            raise Refused("bad_seq", "ingest message: bad seq")
        payloads = [k for k in ("text", "bytes", "tokens") if k in m]
        if len(payloads) > 1:
            raise Refused("payload_conflict", "ingest message: several payloads")
        eof = m.get("eof", False)
        if not isinstance(eof, bool):
            raise Refused("wrong_type", "ingest message: eof not a bool")
        if not payloads and not eof:
            raise Refused("no_payload", "ingest message: no payload")
        opts = m.get("opts")
        if opts is not None and seq != 0:
            raise Refused("opts_not_first", "ingest message: opts with seq %d" % seq)
        full = {"outputs": ["embedding", "surprisal"], "pooling": "last", "normalize": True,
                "topk": 5}
        if opts is not None:
            if not isinstance(opts, dict) or set(opts) - set(full):
                raise Refused("unknown_field", "ingest message: bad opts keys")
            outs = opts.get("outputs", full["outputs"])
            if (not isinstance(outs, list) or any(o not in ALL_OUTPUTS for o in outs)
                    or len(set(outs)) != len(outs)):
                raise Refused("bad_opts", "ingest message: bad outputs")
            if opts.get("pooling", "last") not in ("last", "mean"):
                raise Refused("bad_opts", "ingest message: bad pooling")
            if not isinstance(opts.get("normalize", True), bool):
                raise Refused("wrong_type", "ingest message: normalize")
            k = opts.get("topk", 5)
            if not isinstance(k, int) or not 1 <= k <= 64:
                raise Refused("bad_opts", "ingest message: bad topk")
            full.update(opts)
        if "text" in m:
            if not isinstance(m["text"], str):
                raise Refused("wrong_type", "ingest message: text not a str")
            kind, data = "text", m["text"].encode("utf-8")
        elif "bytes" in m:
            if not isinstance(m["bytes"], bytes):
                raise Refused("wrong_type", "ingest message: bytes not a bin")
            kind, data = "text", m["bytes"]
        elif "tokens" in m:
            t = m["tokens"]
            ids = list(struct.unpack("<%dI" % (len(t) // 4), t)) if isinstance(t, bytes) else t
            if any(not isinstance(i, int) or not 0 <= i < VOCAB for i in ids):
                raise Refused("bad_token", "ingest message: bad token")
            kind, data = "tokens", bytes(ids)
        else:
            kind, data = None, b""
        return doc, seq, eof, full, opts, kind, data

    def handle_ingest(self, raw):
        try:
            doc, seq, eof, full, opts, kind, data = self.parse(raw)
        except Refused as r:
            self.error(None, None, r.reason, r.message)
            return
        d = self.docs.get(doc)
        if d is None:
            d = Doc(full, self.args.block_size)
            self.docs[doc] = d
        if seq < d.next_seq:
            self.send({"v": 1, "type": "ack", "doc": self.doc_wire(doc), "seq": seq,
                       "next_seq": d.next_seq, "status": "duplicate"})
            self.log(ev="ack", doc=doc.hex(), seq=seq)
            return
        if d.finished:
            self.error(doc, seq, "doc_finished", "document already finished")
            return
        if seq > d.next_seq:
            if len(d.held) >= MAX_HELD and seq not in d.held:
                self.error(doc, seq, "seq_gap", "seq %d beyond %d" % (seq, d.next_seq),
                           expected_seq=d.next_seq)
                return
            d.held[seq] = (eof, opts, kind, data)
            self.log(ev="held", doc=doc.hex(), seq=seq)
            return
        self.process(doc, d, seq, eof, opts, kind, data)
        while d.next_seq in d.held and not d.finished:
            s = d.next_seq
            self.process(doc, d, s, *d.held.pop(s))

    def process(self, doc, d, seq, eof, opts, kind, data):
        if kind is not None:
            if d.kind is not None and d.kind != kind:
                self.error(doc, seq, "payload_kind", "tokens mixed with text")
                return
            d.kind = kind
        if seq == 0 and opts is not None:
            d.opts.update(opts)
        d.data += data
        d.next_seq = seq + 1
        self.counts["messages"] += 1
        self.counts["tokens"] += len(data)
        self.log(ev="processed", doc=doc.hex(), seq=seq, data=data.hex(), eof=eof, opts=opts)
        bs = d.block_size
        t = d.blocks * bs
        while t + bs <= len(d.data):
            self.emit_block(doc, d, t, t + bs)
            t += bs
        if eof:
            if t < len(d.data):
                self.emit_block(doc, d, t, len(d.data))
            d.finished = True
            d.held.clear()
            self.emit_final(doc, d)
        self.processed_since_save += 1
        if eof or (self.args.checkpoint_every and
                   self.processed_since_save >= self.args.checkpoint_every):
            self.save()
        if self.args.delay:
            time.sleep(self.args.delay)

    # ---------------------------------------------------------------- control
    def handle_control(self, frames):
        envelope, raw = frames[:-1], frames[-1]
        try:
            req = msgpack.unpackb(raw, raw=False)
        except Exception:
            req = None
        reply = {"v": 1}
        if not isinstance(req, dict) or "cmd" not in req:
            reply.update(ok=False, reason="malformed", message="bad request")
        else:
            cmd = req["cmd"]
            reply["ok"] = True
            reply["cmd"] = cmd
            if "id" in req:
                reply["id"] = req["id"]
            doc = req.get("doc")
            if isinstance(doc, str):
                doc = doc.encode("utf-8")
            if cmd == "health":
                reply.update(status="ok", uptime_s=time.monotonic() - self.t0)
            elif cmd == "status":
                reply.update(model={"sha256": MODEL, "path": "fake", "generation": "fake",
                                    "n_layer": 1, "dim": self.args.dim, "vocab": VOCAB,
                                    "state_floats": 1, "tokenizer": "bytes"},
                             device="cpu", block_size=self.args.block_size,
                             uptime_s=time.monotonic() - self.t0,
                             docs={"active": len(self.docs), "on_disk": 0,
                                   "max_active": 1000, "finished_total": 0},
                             queues={"held": 0, "ingest": 0, "emit": 0},
                             messages_total=self.counts["messages"],
                             tokens_total=self.counts["tokens"],
                             blocks_total=self.counts["blocks"], tokens_per_s=0.0,
                             checkpoints={"total": 0, "failures_total": 0, "seconds_sum": 0.0},
                             rejected={})
            elif cmd == "resume" and doc:
                d = self.docs.get(doc)
                reply.update(doc=req["doc"], known=d is not None,
                             where="memory" if d else "none",
                             next_seq=d.next_seq if d else 0,
                             tokens=len(d.data) if d else 0, blocks=d.blocks if d else 0,
                             finished=d.finished if d else False)
            elif cmd == "checkpoint":
                if doc and doc not in self.docs:
                    reply.update(ok=False, reason="unknown_doc", message="no such document")
                else:
                    self.save()
                    reply.update(written=1 if doc else len(self.docs), failed=0, seconds=0.0)
            elif cmd == "drop" and doc:
                reply.update(doc=req["doc"], dropped=self.docs.pop(doc, None) is not None)
                self.save()
            elif cmd in ("resume", "drop"):
                reply.update(ok=False, reason="missing_field", message="doc is required")
            else:
                reply.update(ok=False, reason="unknown_cmd", message="unknown cmd")
        self.control.send_multipart(envelope + [msgpack.packb(reply, use_bin_type=True)])

    def run(self):
        poller = zmq.Poller()
        poller.register(self.ingest, zmq.POLLIN)
        poller.register(self.control, zmq.POLLIN)
        while True:
            if self.outq:
                poller.register(self.emit, zmq.POLLOUT)
            elif self.emit in dict(poller.sockets):
                poller.unregister(self.emit)
            ready = dict(poller.poll())
            if self.emit in ready:
                self.flush()
            if self.control in ready:
                while True:
                    try:
                        self.handle_control(self.control.recv_multipart(zmq.NOBLOCK))
                    except zmq.Again:
                        break
            if self.ingest in ready:
                self.handle_ingest(self.ingest.recv())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ingest", required=True)
    ap.add_argument("--emit", required=True)
    ap.add_argument("--control", required=True)
    ap.add_argument("--block-size", type=int, default=256)
    ap.add_argument("--dim", type=int, default=8)
    ap.add_argument("--delay", type=float, default=0.0)
    ap.add_argument("--hwm", type=int, default=1000)
    ap.add_argument("--state")
    ap.add_argument("--checkpoint-every", type=int, default=0)
    ap.add_argument("--log")
    args = ap.parse_args()
    try:
        Fake(args).run()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
