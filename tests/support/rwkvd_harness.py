"""rwkvd_harness.py — what the daemon end-to-end tests share: start a real
rwkvd process on ipc:// sockets in a private temp dir, talk to it (ingest
PUSH, emit PULL, control REQ), read its log, measure its RSS, and report
test cases as PASS:/FAIL: lines for tests/run-tests.sh.

Why this shape: every test starts its own daemon so no test depends on
another's leftovers, and every daemon started is remembered so the runner
kills it whatever happens (a test that raises must not leave a process
behind).  A daemon that dies on a signal, or whose stderr/log holds a
sanitizer report, fails the test that owns it: check_clean() is called when
a daemon is stopped, not only at the end.

Only the Python standard library plus python3-zmq and python3-msgpack
(Debian's /usr/bin/python3): no numpy, floats are compared with array('f').
"""
import array
import json
import math
import os
import signal
import shutil
import subprocess
import sys
import tempfile
import time
import traceback

import msgpack
import zmq

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REL_BIN = os.path.join(REPO, "build/rel/bin/rwkvd")
ASAN_BIN = os.path.join(REPO, "build/asan/bin/rwkvd")
RWKV_CLI = os.path.join(REPO, "build/rel/bin/rwkv")

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "SUMMARY: UndefinedBehaviorSanitizer", "AddressSanitizer:DEADLYSIGNAL")


class TestFailure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)


# ------------------------------------------------------------------ fixtures
def fixtures_dir():
    d = os.environ.get("RWKVD_FIXTURES") or os.path.join(REPO, "..", "shared", "fixtures")
    return os.path.abspath(d)


def fixture_path(rel):
    """Absolute path of a fixture; a missing fixture is a failure, never a skip."""
    p = os.path.join(fixtures_dir(), rel)
    if not os.path.isfile(p):
        raise TestFailure("fixture missing: %s (set RWKVD_FIXTURES)" % p)
    return p


def fixture_bytes(rel):
    with open(fixture_path(rel), "rb") as f:
        return f.read()


def fixture_f32(rel):
    a = array.array("f")
    a.frombytes(fixture_bytes(rel))
    if sys.byteorder != "little":
        a.byteswap()
    return a


def fixture_i32(rel):
    a = array.array("i")
    a.frombytes(fixture_bytes(rel))
    if sys.byteorder != "little":
        a.byteswap()
    return a


def manifest(model_dir):
    with open(fixture_path(model_dir + "/manifest.json")) as f:
        return json.load(f)


def manifest_file(man, name):
    for f in man["files"]:
        if f["file"] == name:
            return f
    raise TestFailure("manifest has no entry for %s" % name)


def tolerance_abs(man, name):
    """Absolute tolerance of a fixture file as its manifest states it:
    max x reference_std when the metric is relative to a std, else max."""
    t = manifest_file(man, name)["tolerance"]
    if "reference_std" in t:
        return t["max"] * t["reference_std"]
    return t["max"]


TINY = "tiny-rwkv-7v0-834K"


def tiny_model():
    return fixture_path("models/%s.safetensors" % TINY)


def tiny_text():
    return fixture_bytes("inputs/gpl-3.first4096.bin")


def f32(b):
    """bin of little-endian float32 -> array('f')."""
    a = array.array("f")
    a.frombytes(b)
    if sys.byteorder != "little":
        a.byteswap()
    return a


def max_abs_diff(a, b):
    check(len(a) == len(b), "length %d vs %d" % (len(a), len(b)))
    m = 0.0
    for x, y in zip(a, b):
        d = abs(x - y)
        if d != d:  # NaN
            return float("inf")
        if d > m:
            m = d
    return m


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def free_tcp_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ------------------------------------------------------------------ daemon
_LIVE = []          # every Daemon started and not yet reaped
_CTX = zmq.Context.instance()


class Daemon:
    """One rwkvd process on ipc:// endpoints under `work` (a temp dir)."""

    def __init__(self, work, state_dir=None, model=None, binary=None, args=(), tag="d", threads=1):
        self.work = work
        self.state_dir = state_dir or os.path.join(work, "state")
        self.model = model or tiny_model()
        self.binary = binary or REL_BIN
        check(os.access(self.binary, os.X_OK), "daemon binary missing: %s (make it)" % self.binary)
        self.args = list(args)
        self.threads = threads
        self.tag = tag
        self.ingest_ep = "ipc://%s/%s-ingest" % (work, tag)
        self.emit_ep = "ipc://%s/%s-emit" % (work, tag)
        self.control_ep = "ipc://%s/%s-control" % (work, tag)
        self.log_file = os.path.join(work, "%s.log" % tag)
        self.proc = None
        self.starts = 0
        self._ctl = None
        self._emit_pull = None
        self.stderr_files = []

    # -- life cycle
    def start(self, timeout=30.0, extra=()):
        check(self.proc is None, "daemon already running")
        self.starts += 1
        err_path = os.path.join(self.work, "%s.stderr.%d" % (self.tag, self.starts))
        self.stderr_files.append(err_path)
        cmd = [self.binary, "--model", self.model, "--ingest", self.ingest_ep,
               "--emit", self.emit_ep, "--control", self.control_ep,
               "--state-dir", self.state_dir, "--log-file", self.log_file,
               "--threads", str(self.threads)] + self.args + list(extra)
        env = dict(os.environ)
        env.pop("NOTIFY_SOCKET", None)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        env.setdefault("OPENBLAS_NUM_THREADS", "1")
        with open(err_path, "wb") as ef:
            self.proc = subprocess.Popen(cmd, stdout=ef, stderr=ef, env=env,
                                         stdin=subprocess.DEVNULL)
        _LIVE.append(self)
        deadline = time.time() + timeout
        while True:
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self.proc = None
                raise TestFailure("daemon exited with %s at start: %s" % (rc, self.stderr_tail()))
            try:
                r = self.ctl({"cmd": "health"}, timeout=0.5)
                if r.get("ok"):
                    return self
            except TimeoutError:
                pass
            if time.time() > deadline:
                raise TestFailure("daemon not ready after %.0f s: %s" % (timeout, self.stderr_tail()))

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill9(self):
        """SIGKILL and reap.  Returns nothing; a crash before the kill fails."""
        check(self.proc is not None, "no daemon to kill")
        rc = self.proc.poll()
        if rc is not None:
            self._reaped()
            raise TestFailure("daemon had died by itself (status %s): %s" % (rc, self.stderr_tail()))
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self._reaped()

    def stop(self, timeout=60.0):
        """SIGTERM, wait, check the exit status is 0 and no sanitizer spoke."""
        check(self.proc is not None, "no daemon to stop")
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self._reaped()
            raise TestFailure("daemon did not stop within %.0f s of SIGTERM" % timeout)
        self._reaped()
        self.check_clean()
        check(rc == 0, "daemon exited with status %s after SIGTERM: %s" % (rc, self.stderr_tail()))
        return rc

    def _reaped(self):
        self.proc = None
        if self._emit_pull is not None:
            self._emit_pull.close(0)
            self._emit_pull = None
        if self in _LIVE:
            _LIVE.remove(self)
        if self._ctl is not None:
            self._ctl.close(0)
            self._ctl = None

    def check_running(self):
        check(self.proc is not None, "daemon not started")
        rc = self.proc.poll()
        if rc is not None:
            self._reaped()
            raise TestFailure("daemon died (status %s): %s" % (rc, self.stderr_tail()))

    # -- output of the process
    def stderr_text(self):
        out = []
        for p in self.stderr_files:
            try:
                with open(p, "rb") as f:
                    out.append(f.read().decode("utf-8", "replace"))
            except OSError:
                pass
        return "".join(out)

    def stderr_tail(self, n=1500):
        return self.stderr_text()[-n:] or "(no stderr)"

    def log_text(self):
        try:
            with open(self.log_file, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def check_clean(self):
        text = self.stderr_text() + self.log_text()
        for mark in SANITIZER_MARKS:
            i = text.find(mark)
            if i >= 0:
                raise TestFailure("sanitizer report from the daemon: %s" % text[max(0, i - 200):i + 1500])

    def rss_kb(self):
        return rss_kb(self.proc.pid)

    # -- sockets
    def push(self, hwm=None, sndtimeo=None):
        s = _CTX.socket(zmq.PUSH)
        s.setsockopt(zmq.LINGER, 0)
        if hwm is not None:
            s.setsockopt(zmq.SNDHWM, hwm)
        if sndtimeo is not None:
            s.setsockopt(zmq.SNDTIMEO, sndtimeo)
        s.connect(self.ingest_ep)
        return s

    def emit_pull(self):
        """One PULL socket kept for this daemon process's life (closed when
        it stops).  Sequential run_doc calls share it: a PULL closed after
        each document stays a peer of the daemon's PUSH until the daemon
        notices, and PUSH deals messages round-robin over its peers, so the
        next document's outputs would alternate into the dead socket."""
        if self._emit_pull is None:
            self._emit_pull = self.pull()
        return self._emit_pull

    def pull(self, hwm=None):
        s = _CTX.socket(zmq.PULL)
        s.setsockopt(zmq.LINGER, 0)
        if hwm is not None:
            s.setsockopt(zmq.RCVHWM, hwm)
        s.connect(self.emit_ep)
        return s

    def ctl(self, req, timeout=10.0):
        """One control request (v added); returns the reply map (str keys).
        Raises TimeoutError when no reply comes."""
        if self._ctl is None:
            self._ctl = _CTX.socket(zmq.REQ)
            self._ctl.setsockopt(zmq.LINGER, 0)
            self._ctl.connect(self.control_ep)
        msg = {"v": 1}
        msg.update(req)
        self._ctl.send(msgpack.packb(msg))
        if not self._ctl.poll(int(timeout * 1000)):
            self._ctl.close(0)
            self._ctl = None
            raise TimeoutError("no control reply to %r" % (req,))
        return unpack(self._ctl.recv())

    def call(self, timeout=10.0, **req):
        return self.ctl(req, timeout)


def unpack(b):
    return msgpack.unpackb(b, raw=False, strict_map_key=False)


def pack(obj):
    return msgpack.packb(obj, use_bin_type=True)


def ingest(doc, seq, payload=None, kind="bytes", eof=False, opts=None, v=1):
    m = {"v": v, "doc": doc, "seq": seq}
    if payload is not None:
        m[kind] = payload
    if eof:
        m["eof"] = True
    if opts is not None:
        m["opts"] = opts
    return pack(m)


def recv_until(pull, pred, timeout=60.0, daemon=None, keep=None):
    """Receives outputs (decoded) until pred(out) is true; returns the list
    of every output received (raw bytes kept in keep if given)."""
    got = []
    deadline = time.time() + timeout
    while True:
        left = deadline - time.time()
        if left <= 0:
            raise TestFailure("timed out after %.0f s waiting for outputs (%d received; last %r)"
                              % (timeout, len(got), got[-1] if got else None))
        if not pull.poll(int(min(left, 1.0) * 1000)):
            if daemon is not None:
                daemon.check_running()
            continue
        raw = pull.recv()
        out = unpack(raw)
        if keep is not None:
            keep.append(raw)
        got.append(out)
        if pred(out):
            return got


def collect_docs(pull, docs, timeout=60.0, daemon=None):
    """Receives until every doc in `docs` has its final message.  Returns
    {doc: {"blocks": {n: out}, "final": out, "raw": {n|"final"|("segments", n): bytes},
    "segments": {n: out}, "errors": [...]}}; a duplicate block or segments
    message must be byte-identical."""
    want = set(docs)
    res = {d: {"blocks": {}, "final": None, "raw": {}, "segments": {}, "errors": []}
           for d in docs}
    deadline = time.time() + timeout
    while want:
        left = deadline - time.time()
        if left <= 0:
            raise TestFailure("timed out waiting for the final of %d documents (e.g. %r)"
                              % (len(want), sorted(want)[:3]))
        if not pull.poll(int(min(left, 1.0) * 1000)):
            if daemon is not None:
                daemon.check_running()
            continue
        raw = pull.recv()
        out = unpack(raw)
        d = out.get("doc")
        if d not in res:
            raise TestFailure("output for an unexpected document: %r" % (out,))
        r = res[d]
        t = out["type"]
        if t == "block":
            k = out["block"]
            if k in r["raw"]:
                check(r["raw"][k] == raw, "doc %r block %d sent twice with different bytes" % (d, k))
            r["blocks"][k] = out
            r["raw"][k] = raw
        elif t == "segments":
            k = ("segments", out["block"])
            if k in r["raw"]:
                check(r["raw"][k] == raw, "doc %r segments after block %d sent twice with "
                      "different bytes" % (d, k[1]))
            r["segments"][out["block"]] = out
            r["raw"][k] = raw
        elif t == "final":
            r["final"] = out
            r["raw"]["final"] = raw
            want.discard(d)
        elif t == "error":
            r["errors"].append(out)
            raise TestFailure("unexpected error output: %r" % (out,))
    return res


# ------------------------------------------------------------------ runner
class Work:
    """A private temp dir, removed at the end unless RWKVD_KEEP_TMP is set."""

    def __enter__(self):
        self.path = tempfile.mkdtemp(prefix="rwkvd-test-")
        return self.path

    def __exit__(self, *exc):
        for d in list(_LIVE):
            if d.proc is not None and d.proc.poll() is None:
                d.proc.kill()
                d.proc.wait()
            d._reaped()
        if not os.environ.get("RWKVD_KEEP_TMP"):
            shutil.rmtree(self.path, ignore_errors=True)
        return False


def reap_all():
    """Kills every daemon still running (after a test, whatever happened).
    Returns the sanitizer complaint of any of them, or None."""
    problem = None
    for d in list(_LIVE):
        if d.proc is not None and d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait()
        d._reaped()
        try:
            d.check_clean()
        except TestFailure as e:
            problem = str(e)
    return problem


def run_cases(cases):
    """cases: list of (name, fn) or (name, fn, flavour) with flavour "rel"
    (the default) or "asan": the daemon binary the case runs.  When
    RWKVD_BUILD_FLAVOUR is set (tests/run-tests.sh runs each Python test once
    per flavour, py: and py-asan:), only that flavour's cases run; unset (by
    hand), all of them.  Command-line arguments are case filters (`make check
    T=test_x ARGS=name`): only cases whose name contains one of them run.
    Prints PASS:/FAIL: per case, exits 1 when any failed."""
    want = os.environ.get("RWKVD_BUILD_FLAVOUR")
    filters = [a for a in sys.argv[1:] if not a.startswith("-")]
    if filters:
        cases = [c for c in cases if any(f in c[0] for f in filters)]
        if not cases:
            print("SKIP: %s: no case name contains %s" % (os.path.basename(sys.argv[0]),
                                                       " or ".join(filters)), flush=True)
            sys.exit(0)
    failed = 0
    if want and not any((c[2] if len(c) > 2 else "rel") == want for c in cases):
        # said, so that an empty run never reads as a pass
        print("SKIP: %s: no case runs on the %s daemon; these run on rel only (too slow "
              "under sanitizers): %s" % (os.path.basename(sys.argv[0]), want,
                                         "; ".join(c[0] for c in cases)), flush=True)
    for case in cases:
        name, fn = case[0], case[1]
        flavour = case[2] if len(case) > 2 else "rel"
        if want and flavour != want:
            continue
        t0 = time.time()
        try:
            fn()
            problem = reap_all()
            if problem:
                raise TestFailure(problem)
            print("PASS: %s (%.1f s)" % (name, time.time() - t0), flush=True)
        except Exception as e:  # any exception is this case's failure
            reap_all()
            why = str(e).replace("\n", " | ")
            if not isinstance(e, TestFailure):
                why = "%s: %s" % (type(e).__name__, why)
                traceback.print_exc()
            print("FAIL: %s: %s" % (name, why[:4000]), flush=True)
            failed += 1
    sys.exit(1 if failed else 0)


def chunks_at(data, cuts):
    """Splits data at the sorted byte positions `cuts`."""
    out, prev = [], 0
    for c in list(cuts) + [len(data)]:
        out.append(data[prev:c])
        prev = c
    return out


def random_split(data, rng, n):
    cuts = sorted(set(rng.randrange(0, len(data) + 1) for _ in range(n)))
    return chunks_at(data, cuts)


def send_doc(push, doc, parts, kind="bytes", opts=None, start_seq=0, v=1):
    """Sends parts as seq start_seq.. with eof on the last (an extra empty
    eof message when parts is empty); v is the protocol version named."""
    if not parts:
        push.send(ingest(doc, start_seq, None, eof=True, opts=opts, v=v))
        return
    for i, p in enumerate(parts):
        seq = start_seq + i
        push.send(ingest(doc, seq, p, kind=kind, eof=(i == len(parts) - 1),
                         opts=opts if seq == 0 else None, v=v))


def run_doc(d, doc, parts, opts=None, kind="bytes", timeout=120.0, v=1):
    """Sends one whole document (send_doc) to daemon d and returns its
    collect_docs entry."""
    push, pull = d.push(), d.emit_pull()
    try:
        send_doc(push, doc, parts, kind=kind, opts=opts, v=v)
        return collect_docs(pull, [doc], timeout=timeout, daemon=d)[doc]
    finally:
        push.close(0)


def interrupted_run(d, doc, parts, n_first, min_blocks, opts=None, timeout=120.0):
    """The document stopped half-way and finished by a new process: sends
    parts[:n_first] (no eof), waits for min_blocks block outputs, SIGTERMs d
    (everything is checkpointed), starts it again on the same state
    directory, requires `resume` to name seq n_first, sends the rest with
    eof.  Returns every output received, keyed like collect_docs' "raw" (a
    block sent twice must be byte-identical).  d is stopped at the end."""
    push, pull = d.push(), d.pull()
    for i, p in enumerate(parts[:n_first]):
        push.send(ingest(doc, i, p, opts=opts if i == 0 else None))
    seen = {}
    while len(seen) < min_blocks:
        check(pull.poll(60000), "%r: only %d of %d blocks before the stop"
              % (doc, len(seen), min_blocks))
        raw = pull.recv()
        seen[unpack(raw)["block"]] = raw
    push.close(0)
    pull.close(0)
    d.stop()
    d.start()
    rs = d.call(cmd="resume", doc=doc)
    check(rs["known"] and rs["next_seq"] == n_first, "%r: resume after SIGTERM %r" % (doc, rs))
    push, pull = d.push(), d.pull()
    send_doc(push, doc, parts[n_first:], start_seq=n_first)
    rest = collect_docs(pull, [doc], timeout=timeout, daemon=d)[doc]
    push.close(0)
    pull.close(0)
    d.stop()
    for key, raw in rest["raw"].items():
        check(key not in seen or seen[key] == raw, "%r: block %r sent twice with different bytes"
              % (doc, key))
        seen[key] = raw
    return seen


def strip_doc(raw_map):
    """Outputs keyed like collect_docs' "raw", decoded and without their doc
    id, so that two documents' outputs compare."""
    out = {}
    for k, v in raw_map.items():
        m = unpack(v)
        m.pop("doc")
        out[k] = m
    return out


def without_inc(raw):
    """An output's bytes with its `inc` entry (PROTOCOL.md §8.4) cut out, so
    that outputs of two incarnations of one document id compare byte for
    byte.  `inc` is the entry right after `doc` when present."""
    m = unpack(raw)
    if "inc" not in m:
        return raw
    key = b"\xa3inc"
    at = raw.index(key)
    v = raw[at + 4]
    width = 1 if v <= 0x7f else 1 + {0xcc: 1, 0xcd: 2, 0xce: 4, 0xcf: 8}[v]
    head = raw[0]
    check(0x81 <= head <= 0x8f, "output map header 0x%02x" % head)  # our outputs have < 16 fields
    out = bytes([head - 1]) + raw[1:at] + raw[at + 4 + width:]
    n = unpack(out)
    check("inc" not in n and len(n) == len(m) - 1, "without_inc: %r" % n)
    return out


def isnan(x):
    return x != x or math.isnan(x)
