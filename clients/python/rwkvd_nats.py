"""rwkvd_nats — the Python side of rwkvd's NATS JetStream mapping
(daemon/PROTOCOL.md §12): documents into the RWKVD_IN stream, outputs out of
RWKVD_OUT through a durable consumer, and the lease table.

Debian has no Python NATS library, so this module speaks NATS through the
`rwkvd-nats` program (frames of [u32 little-endian length][msgpack map] on
its stdin/stdout); the message bodies are built and read here exactly as
for ZeroMQ (module rwkvd).

    import rwkvd_nats
    c = rwkvd_nats.NatsClient("nats://127.0.0.1:4222")
    c.send_document("doc-42", open("book.txt", "rb").read(), opts={"pooling": "mean"})
    for out in c.outputs(durable="mine", until_final=1, idle_timeout=60):
        print(out["type"], out.get("block"))

Publishing is idempotent per (doc, seq) within the server's duplicate
window (Nats-Msg-Id), and workers ignore seqs they already have, so sending
a document again after a crash is always safe.  `outputs` acks what it has
read (the consumer keeps its place across runs of this process) and drops
repeats by (doc, block) and (doc, "final").
"""
import shutil
import struct
import subprocess

import msgpack

import rwkvd

__all__ = ["NatsClient", "partition", "DEFAULT_TOOL"]

DEFAULT_TOOL = "rwkvd-nats"


def partition(doc, partitions):
    """FNV-1a 32 of the lower-case hex of the doc id, modulo partitions
    (PROTOCOL.md §12.1; nats-server's own {{partition(P,1)}})."""
    h = 2166136261
    for c in rwkvd._doc_bytes(doc).hex().encode():
        h = ((h ^ c) * 16777619) & 0xFFFFFFFF
    return h % partitions


def frames(msgs):
    """The pipe format of rwkvd-nats: [u32 LE length][msgpack map], repeated."""
    return b"".join(struct.pack("<I", len(m)) + m for m in msgs)


class NatsClient:
    """A producer/consumer of one cluster; `url` may list servers with commas."""

    def __init__(self, url, tool=None):
        self.url = url
        self.tool = tool or shutil.which(DEFAULT_TOOL) or DEFAULT_TOOL

    def publish(self, msgs, timeout=600):
        """Publishes encoded ingest messages (msgpack bytes) and waits until
        the server stored every one."""
        r = subprocess.run([self.tool, "pub", "--nats", self.url], input=frames(msgs),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        if r.returncode != 0:
            raise rwkvd.RwkvdError("rwkvd-nats pub: %s" % r.stderr.decode("utf-8", "replace"))

    @staticmethod
    def messages(doc, data, chunk_size=rwkvd.DEFAULT_CHUNK_SIZE, opts=None):
        """The ingest messages of one document: seq k = bytes
        [k*chunk_size, (k+1)*chunk_size), eof on the last, opts on seq 0."""
        doc_id = rwkvd._doc_bytes(doc)
        doc_out = doc if isinstance(doc, str) else doc_id
        if isinstance(data, str):
            data = data.encode("utf-8")
        data = bytes(data)
        if chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")
        parts = [data[k:k + chunk_size] for k in range(0, len(data), chunk_size)] or [b""]
        out = []
        for seq, part in enumerate(parts):
            m = {"v": rwkvd.PROTOCOL_VERSION, "doc": doc_out, "seq": seq, "bytes": part}
            if seq == len(parts) - 1:
                m["eof"] = True
            if seq == 0 and opts:
                m["opts"] = opts
            out.append(msgpack.packb(m, use_bin_type=True))
        return out

    def send_document(self, doc, data, chunk_size=rwkvd.DEFAULT_CHUNK_SIZE, opts=None):
        """Publishes a whole document; returns the number of messages."""
        msgs = self.messages(doc, data, chunk_size, opts)
        self.publish(msgs)
        return len(msgs)

    def outputs(self, durable, until_final=None, idle_timeout=30.0, dedupe=True):
        """Yields decoded outputs (rwkvd.decode_output) read through the
        durable consumer `durable`, until `until_final` distinct final
        outputs (or idle_timeout seconds without any)."""
        cmd = [self.tool, "sub", "--nats", self.url, "--durable", durable,
               "--idle-timeout", str(idle_timeout)]
        if until_final:
            cmd += ["--until-final", str(until_final)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        seen = set()
        try:
            while True:
                head = proc.stdout.read(4)
                if len(head) < 4:
                    break
                raw = proc.stdout.read(struct.unpack("<I", head)[0])
                out = rwkvd.decode_output(raw)
                if dedupe and out["type"] in ("block", "final"):
                    key = (out["doc"], out["block"] if out["type"] == "block" else "final")
                    if key in seen:
                        continue
                    seen.add(key)
                yield out
        finally:
            if proc.poll() is None:
                proc.terminate()
            proc.wait()
        if proc.returncode not in (0, -15):
            raise rwkvd.RwkvdTimeout("rwkvd-nats sub: %s"
                                     % proc.stderr.read().decode("utf-8", "replace"))

    def leases(self):
        """{partition: (worker id, lease revision)} and the live worker count."""
        r = subprocess.run([self.tool, "leases", "--nats", self.url], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60)
        if r.returncode != 0:
            raise rwkvd.RwkvdError("rwkvd-nats leases: %s" % r.stderr.decode("utf-8", "replace"))
        held, workers = {}, 0
        for line in r.stdout.decode().splitlines():
            f = line.split()
            if f[0] == "workers":
                workers = int(f[1])
            elif f[0].startswith("p."):
                held[int(f[0][2:])] = (f[1], int(f[2]))
        return held, workers
