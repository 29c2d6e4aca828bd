"""rwkvd — a small Python client for the rwkvd daemon (wire protocol v1).

The protocol is written down in daemon/PROTOCOL.md; this module is a thin,
dependency-light layer over it (pyzmq and msgpack — Debian's python3-zmq and
python3-msgpack; numpy is NOT needed: vectors come back as ``array.array``).

    import rwkvd
    with rwkvd.Client(ingest="ipc:///run/rwkvd/ingest", emit="ipc:///run/rwkvd/emit",
                      control="ipc:///run/rwkvd/control") as c:
        c.send_document("doc-42", open("book.txt", "rb").read(),
                        opts={"outputs": ["embedding", "surprisal"], "pooling": "mean"})
        for out in c.outputs(doc="doc-42", timeout=60):
            if out["type"] == "block":   # every block and final names model and precision
                print(out["block"], out["precision"], out["embedding"][:4])
            elif out["type"] == "final":
                print("mean surprisal", out.get("mean_surprisal"), "in", out["precision"])
            elif out["type"] == "error":
                print(out["reason"], out["message"])

Three sockets, as in PROTOCOL.md §1: a PUSH to the ingest endpoint (documents
in), a PULL from the emit endpoint (outputs out; connect ONE consumer per
daemon, ZeroMQ round-robins between several), and a REQ to the control
endpoint (status/resume/checkpoint/drop/health).  Sockets are made when first
needed, so a producer-only client never connects to the emit endpoint.

Resuming: ``send_document`` asks ``resume`` first and sends only the messages
the daemon does not have yet.  Message seq k always carries the same bytes
(chunk k of the data), so calling it again with the same data and chunk size
after a crash — of this process or of the daemon — continues exactly.

Outputs are at-least-once (a daemon restart re-emits the blocks after its last
checkpoint); ``outputs`` drops repeats by (doc, inc, block) and (doc, inc,
"final"), ``inc`` being the document's incarnation (absent = 0; it grows each
time the id is dropped and reused, PROTOCOL.md §8.4).

CURVE: for a daemon run with ``--curve-secret-key``, pass
``curve_server_key`` (the daemon's public key file) and ``curve_key`` (this
client's key pair file from ``rwkvd keygen``, mode 0600); its public key
must be in the allow-list of every role used (producer: send, consumer:
outputs, operator: control requests).  A refused key or a wrong server key
raises RwkvdError when the socket is made, instead of a silent hang.

A Client is not thread safe (ZeroMQ sockets belong to one thread).  Run with
/usr/bin/python3 on Debian (the system Python has the two modules).
"""

import array
import os
import stat
import sys
import time

import msgpack
import zmq

__all__ = ["Client", "RwkvdError", "RwkvdTimeout", "decode_output", "load_curve_key",
           "DEFAULT_INGEST", "DEFAULT_EMIT", "DEFAULT_CONTROL", "DEFAULT_CHUNK_SIZE"]

DEFAULT_INGEST = "tcp://127.0.0.1:5555"
DEFAULT_EMIT = "tcp://127.0.0.1:5556"
DEFAULT_CONTROL = "tcp://127.0.0.1:5557"
DEFAULT_CHUNK_SIZE = 64 * 1024   # the same default as rwkvd-send
PROTOCOL_VERSION = 1
# opts.task (EmbeddingRWKV models) is a v2 field (PROTOCOL.md §3.4)
PROTOCOL_VERSION_TASK = 2
DOC_MAX = 256

_F32_FIELDS = ("embedding", "logits_last", "surprisal")


class RwkvdError(Exception):
    """The daemon refused a request, or its answer cannot be used.

    ``reason`` is the machine-readable code of PROTOCOL.md §7 when the daemon
    gave one (e.g. ``"unknown_doc"``), else ``None``; ``reply`` is the whole
    reply map when there was one.
    """

    def __init__(self, message, reason=None, reply=None):
        super().__init__(message)
        self.reason = reason
        self.reply = reply


class RwkvdTimeout(RwkvdError):
    """No answer (or no room to send) within the timeout: the daemon is down,
    stuck, or slower than the timeout allows."""


_Z85 = set(b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#")


def load_curve_key(path, need_secret=False):
    """Reads a CURVE key file (the daemon's format, core/curve_key.h): line 1
    the 40-character Z85 public key, line 2 (key pair files) the Z85 secret
    key, nothing else.  Returns ``(public_z85, secret_z85 or None)`` as bytes.
    Raises RwkvdError naming the file: bad format, a secret key in a file
    that group or others may access, or no secret when ``need_secret``."""
    with open(path, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise RwkvdError("key file %s: not a regular file" % path)
        data = f.read(4097)
    if len(data) > 4096:
        raise RwkvdError("key file %s: over 4096 bytes" % path)
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    lines = [ln[:-1] if ln.endswith(b"\r") else ln for ln in lines]
    if not 1 <= len(lines) <= 2:
        raise RwkvdError("key file %s: %d lines, expected 1 (public key) or 2 (key pair)"
                         % (path, len(lines)))
    for i, ln in enumerate(lines):
        if len(ln) != 40 or not set(ln) <= _Z85:
            raise RwkvdError("key file %s: line %d is not a 40-character Z85 key" % (path, i + 1))
    secret = lines[1] if len(lines) == 2 else None
    if secret is not None and st.st_mode & 0o077:
        raise RwkvdError("key file %s: holds a secret key but its mode %04o lets others than "
                         "its owner at it (chmod 600 it)" % (path, st.st_mode & 0o7777))
    if need_secret and secret is None:
        raise RwkvdError("key file %s: no secret key line (a key pair file has two lines)" % path)
    return lines[0], secret


def _doc_bytes(doc):
    """A document id as bytes (identity is the bytes: "abc" == b"abc")."""
    if isinstance(doc, str):
        b = doc.encode("utf-8")
    elif isinstance(doc, (bytes, bytearray, memoryview)):
        b = bytes(doc)
    else:
        raise TypeError("doc must be str or bytes, not %s" % type(doc).__name__)
    if not 1 <= len(b) <= DOC_MAX:
        raise ValueError("doc id must be 1..%d bytes, got %d" % (DOC_MAX, len(b)))
    return b


def _vector(data, typecode):
    """A bin of little-endian 4-byte values -> array(typecode)."""
    if len(data) % 4:
        raise RwkvdError("vector of %d bytes is not a whole number of 4-byte values"
                         % len(data))
    a = array.array(typecode)
    if a.itemsize != 4:  # 'I' is 4 bytes on every platform Debian runs on
        a = array.array("L" if typecode == "I" else typecode)
    a.frombytes(data)
    if sys.byteorder != "little":
        a.byteswap()
    return a


def decode_output(raw):
    """Decodes one emit message (msgpack bytes) into a dict.

    Vectors become ``array.array``: ``embedding``, ``logits_last`` and
    ``surprisal`` of float32 (``'f'``; surprisal's first element of a document
    is NaN), ``topk["ids"]`` of uint32 (``'I'``) and ``topk["logprobs"]`` of
    float32.  ``doc`` stays a str, or bytes when the id is not UTF-8.
    Raises RwkvdError when the message is not a map with a str ``type``.
    """
    try:
        out = msgpack.unpackb(raw, raw=False)
    except Exception as e:  # msgpack raises several types for bad input
        raise RwkvdError("output cannot be decoded: %s" % e) from e
    if not isinstance(out, dict) or not isinstance(out.get("type"), str):
        raise RwkvdError("output is not a map with a str 'type'")
    for key in _F32_FIELDS:
        if isinstance(out.get(key), bytes):
            out[key] = _vector(out[key], "f")
    topk = out.get("topk")
    if isinstance(topk, dict):
        if isinstance(topk.get("ids"), bytes):
            topk["ids"] = _vector(topk["ids"], "I")
        if isinstance(topk.get("logprobs"), bytes):
            topk["logprobs"] = _vector(topk["logprobs"], "f")
    return out


class Client:
    """One connection to an rwkvd daemon.

    ``ingest``, ``emit``, ``control`` are ZeroMQ endpoints (the daemon binds,
    the client connects).  ``timeout`` (seconds) bounds every control request
    and every send (a PUSH blocks while the daemon applies backpressure); None
    waits forever.  ``context`` is a zmq.Context to share (default: the
    process-wide instance).  ``curve_server_key`` and ``curve_key`` (file
    paths, both or neither) turn CURVE on (see the module text).
    """

    def __init__(self, ingest=DEFAULT_INGEST, emit=DEFAULT_EMIT, control=DEFAULT_CONTROL,
                 timeout=10.0, context=None, curve_server_key=None, curve_key=None):
        self.ingest_endpoint = ingest
        self.emit_endpoint = emit
        self.control_endpoint = control
        self.timeout = timeout
        self._ctx = context or zmq.Context.instance()
        self._push = None
        self._pull = None
        self._req = None
        self._next_id = 1
        self._pending = []   # outputs read while waiting for another doc
        self._seen = set()   # (doc bytes, inc, block number or "final") already yielded
        self._curve = None
        if (curve_server_key is None) != (curve_key is None):
            raise ValueError("curve_server_key and curve_key go together")
        if curve_key is not None:
            if not zmq.has("curve"):
                raise RwkvdError("this pyzmq's libzmq is built without CURVE")
            server, _ = load_curve_key(curve_server_key)
            public, secret = load_curve_key(curve_key, need_secret=True)
            self._curve = (server, public, secret)

    # ------------------------------------------------------------ plumbing
    def _ms(self, seconds):
        return -1 if seconds is None else max(0, int(seconds * 1000))

    def _connect(self, s, endpoint, what):
        """Connects s; with CURVE, waits up to 3 s for the handshake's verdict
        (none heard: the daemon is not up yet and ZeroMQ keeps trying)."""
        if self._curve is None:
            s.connect(endpoint)
            return
        s.curve_serverkey, s.curve_publickey, s.curve_secretkey = self._curve
        from zmq.utils.monitor import recv_monitor_message
        mon = s.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_HANDSHAKE_FAILED_AUTH
                                   | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                                   | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)
        try:
            s.connect(endpoint)
            end = time.monotonic() + 3.0
            while True:
                left = end - time.monotonic()
                if left <= 0 or not mon.poll(int(left * 1000)):
                    return
                ev = recv_monitor_message(mon)
                if ev["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                    return
                s.close(linger=0)
                if ev["event"] == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                    raise RwkvdError("%s %s: the daemon refused this client's key (ZAP status %s): "
                                     "it is not in the allow-list of this socket's role"
                                     % (what, endpoint, ev["value"]), reason="auth")
                raise RwkvdError("%s %s: the daemon broke off the CURVE handshake: is "
                                 "curve_server_key the daemon's public key, and does the daemon "
                                 "run with --curve-secret-key?" % (what, endpoint), reason="auth")
        finally:
            if not s.closed:
                s.disable_monitor()
            mon.close(linger=0)

    def _push_socket(self):
        if self._push is None:
            s = self._ctx.socket(zmq.PUSH)
            s.setsockopt(zmq.LINGER, self._ms(self.timeout))
            s.setsockopt(zmq.SNDTIMEO, self._ms(self.timeout))
            self._connect(s, self.ingest_endpoint, "ingest")
            self._push = s
        return self._push

    def _pull_socket(self):
        if self._pull is None:
            s = self._ctx.socket(zmq.PULL)
            s.setsockopt(zmq.LINGER, 0)
            self._connect(s, self.emit_endpoint, "emit")
            self._pull = s
        return self._pull

    def _drop_req(self):
        if self._req is not None:
            self._req.close(linger=0)
            self._req = None

    def close(self):
        """Closes the sockets.  Queued ingest messages get up to ``timeout``
        seconds to leave (ZeroMQ linger); the client can be used again."""
        if self._push is not None:
            self._push.close()
            self._push = None
        if self._pull is not None:
            self._pull.close(linger=0)
            self._pull = None
        self._drop_req()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # ------------------------------------------------------------ control
    def request(self, cmd, doc=None, timeout=None):
        """Sends one control request and returns the reply map.

        Raises RwkvdTimeout when no reply comes within ``timeout`` (default:
        the client's); the REQ socket is then thrown away and remade, since a
        REQ socket that timed out cannot send again.  Raises RwkvdError with
        ``reason`` set when the daemon answers ``ok: false``.
        """
        timeout = self.timeout if timeout is None else timeout
        req = {"v": PROTOCOL_VERSION, "cmd": cmd, "id": self._next_id}
        self._next_id += 1
        if doc is not None:
            _doc_bytes(doc)  # type and length check
            req["doc"] = bytes(doc) if isinstance(doc, (bytearray, memoryview)) else doc
        if self._req is None:
            s = self._ctx.socket(zmq.REQ)
            s.setsockopt(zmq.LINGER, 0)
            self._connect(s, self.control_endpoint, "control")
            self._req = s
        try:
            self._req.send(msgpack.packb(req, use_bin_type=True), flags=zmq.NOBLOCK)
        except zmq.ZMQError as e:
            self._drop_req()
            raise RwkvdTimeout("control %s: request not accepted: %s"
                               % (self.control_endpoint, e)) from e
        if not self._req.poll(self._ms(timeout), zmq.POLLIN):
            self._drop_req()
            raise RwkvdTimeout("control %s: no reply to %r within %s s"
                               % (self.control_endpoint, cmd, timeout))
        frames = self._req.recv_multipart()
        if len(frames) != 1:
            self._drop_req()
            raise RwkvdError("control reply has %d frames, expected 1" % len(frames))
        try:
            reply = msgpack.unpackb(frames[0], raw=False)
        except Exception as e:
            raise RwkvdError("control reply cannot be decoded: %s" % e) from e
        if not isinstance(reply, dict) or not isinstance(reply.get("ok"), bool):
            raise RwkvdError("control reply is not a map with a bool 'ok'")
        if not reply["ok"]:
            raise RwkvdError("rwkvd refused %r: %s: %s"
                             % (cmd, reply.get("reason"), reply.get("message")),
                             reason=reply.get("reason"), reply=reply)
        if reply.get("id") != req["id"]:
            raise RwkvdError("control reply id %r, expected %r" % (reply.get("id"), req["id"]),
                             reply=reply)
        return reply

    def health(self, timeout=None):
        """``{"status": "ok"|"degraded"|"stopping", "uptime_s": float, ...}``"""
        return self.request("health", timeout=timeout)

    def status(self, timeout=None):
        """The daemon's figures: model, queues, totals, rejections (§6.2)."""
        return self.request("status", timeout=timeout)

    def resume(self, doc, timeout=None):
        """Where a document stands: ``known``, ``where``, ``next_seq`` (the seq
        to send next), ``tokens``, ``blocks``, ``finished``."""
        return self.request("resume", doc=doc, timeout=timeout)

    def checkpoint(self, doc=None, timeout=None):
        """Checkpoints one document (or every active one): ``written``,
        ``failed``, ``seconds``.  RwkvdError(reason="unknown_doc") for a
        document that does not exist."""
        return self.request("checkpoint", doc=doc, timeout=timeout)

    def drop(self, doc, timeout=None):
        """Forgets a document entirely (memory, held messages, checkpoints);
        ``dropped`` says whether anything existed.  Idempotent."""
        return self.request("drop", doc=doc, timeout=timeout)

    # ------------------------------------------------------------ ingest
    def send(self, msg):
        """Sends one raw ingest message (a dict; ``v`` is added when absent).
        Raises RwkvdTimeout when the daemon does not take it in time."""
        if "v" not in msg:
            msg = dict(msg, v=PROTOCOL_VERSION)
        try:
            self._push_socket().send(msgpack.packb(msg, use_bin_type=True))
        except zmq.Again as e:
            raise RwkvdTimeout("ingest %s: message not accepted within %s s (daemon down or "
                               "overloaded?)" % (self.ingest_endpoint, self.timeout)) from e

    def send_document(self, doc, data, chunk_size=DEFAULT_CHUNK_SIZE, opts=None, resume=True):
        """Sends a whole document; returns a dict ``{"first_seq", "next_seq",
        "sent", "already_finished"}`` (``sent`` = messages sent now).

        ``data`` is bytes, a str (sent as its UTF-8 bytes), or an iterable of
        chunks — bytes (sent as ``bytes``) or str (sent as ``text``; each must
        be whole characters) — one message per chunk.  bytes and str are cut
        into ``chunk_size``-byte messages: message k carries bytes
        [k*chunk_size, (k+1)*chunk_size), so use the same chunk size on every
        attempt of one document.  ``opts`` (PROTOCOL.md §3.2) go on seq 0.

        With ``resume`` (the default) the daemon is asked first, and messages
        it already has are skipped (a finished document sends nothing).  The
        last message carries ``eof``.  Raises RwkvdError when the daemon's
        state cannot come from this data (it has more messages than the data
        makes, or more tokens than the skipped bytes could give — a different
        chunk size), RwkvdTimeout when the daemon does not answer or accept.

        Returning means every message was handed to ZeroMQ, not that the
        daemon processed it: poll ``resume(doc)`` for ``finished``, or read
        the final output.
        """
        _doc_bytes(doc)  # type and length check
        if isinstance(doc, (bytearray, memoryview)):
            doc = bytes(doc)
        start = tokens = 0
        if resume:
            r = self.resume(doc)
            if r.get("finished"):
                return {"first_seq": r["next_seq"], "next_seq": r["next_seq"], "sent": 0,
                        "already_finished": True}
            start = r["next_seq"]
            tokens = r.get("tokens", 0)
        if isinstance(data, str):
            data = data.encode("utf-8")
        if isinstance(data, (bytes, bytearray, memoryview)):
            data = memoryview(data).cast("B")
            if chunk_size < 1:
                raise ValueError("chunk_size must be at least 1")
            if start and tokens > start * chunk_size:
                raise RwkvdError("%r: the daemon has %d tokens after %d messages, more than "
                                 "%d-byte chunks can give: was it sent with a larger "
                                 "chunk_size?" % (doc, tokens, start, chunk_size))
            if start * chunk_size > len(data):
                raise RwkvdError("%r: the daemon already has %d messages of %d bytes, more "
                                 "than the %d bytes given: different data or chunk_size?"
                                 % (doc, start, chunk_size, len(data)))
            chunks = (bytes(data[i:i + chunk_size])
                      for i in range(start * chunk_size, max(len(data), 1), chunk_size))
            if start * chunk_size == len(data):
                chunks = iter([b""])   # everything but eof was sent: an empty eof message
            skip = 0
        else:
            chunks = iter(data)
            skip = start
        for _ in range(skip):
            if next(chunks, None) is None:
                raise RwkvdError("%r: the daemon already has %d messages, more than the "
                                 "chunks given" % (doc, start))
        seq = start
        sent = 0
        cur = next(chunks, None)
        if cur is None:
            cur = b""
        while cur is not None:
            nxt = next(chunks, None)   # one chunk of look-ahead: eof goes on the last
            msg = {"v": PROTOCOL_VERSION_TASK if opts and "task" in opts else PROTOCOL_VERSION,
                   "doc": doc, "seq": seq}
            if isinstance(cur, str):
                msg["text"] = cur
            elif isinstance(cur, (bytes, bytearray, memoryview)):
                msg["bytes"] = bytes(cur)
            else:
                raise TypeError("chunk %d is %s, not bytes or str" % (seq, type(cur).__name__))
            if nxt is None:
                msg["eof"] = True
            if seq == 0 and opts:
                msg["opts"] = dict(opts)
            self.send(msg)
            seq += 1
            sent += 1
            cur = nxt
        return {"first_seq": start, "next_seq": seq, "sent": sent, "already_finished": False}

    # ------------------------------------------------------------ emit
    def recv_output(self, timeout=None):
        """The next output message (decoded, NOT deduplicated), or None when
        nothing arrives within ``timeout`` seconds (None: wait forever)."""
        if self._pending:
            return self._pending.pop(0)
        pull = self._pull_socket()
        if not pull.poll(self._ms(timeout), zmq.POLLIN):
            return None
        return decode_output(pull.recv())

    def outputs(self, doc=None, timeout=None, dedupe=True):
        """Iterates over outputs as decoded dicts (see decode_output).

        ``doc``: only that document's outputs; the iteration ends after its
        final (or an error output that ends it: engine, checkpoint_bad,
        other_model).  Outputs of other documents read meanwhile are kept and
        returned by later calls.  ``timeout``: stop after that many seconds
        without an output (None: never).  ``dedupe``: skip a block or final
        output already yielded by this client (key (doc, inc, block) or
        (doc, inc, "final")), as the at-least-once contract expects.  Errors and
        acks are yielded as they come.
        """
        want = None if doc is None else _doc_bytes(doc)
        kept = []
        try:
            while True:
                out = self.recv_output(timeout=timeout)
                if out is None:
                    return
                d = out.get("doc")
                key_doc = _doc_bytes(d) if isinstance(d, (str, bytes)) and d else None
                if want is not None and key_doc != want:
                    kept.append(out)
                    continue
                t = out["type"]
                if dedupe and t in ("block", "final") and key_doc is not None:
                    key = (key_doc, out.get("inc", 0),
                           out.get("block") if t == "block" else "final")
                    if key in self._seen:
                        continue
                    self._seen.add(key)
                yield out
                if want is not None and (t == "final" or (
                        t == "error" and out.get("reason") in
                        ("engine", "checkpoint_bad", "other_model"))):
                    return
        finally:
            self._pending.extend(kept)
