"""pyharness.py — the Python twin of tests/testutil.h, plus what the client
tests share: temp directories, ipc:// endpoints, the built binaries, the fake
daemon (fake_rwkvd.py) and the real one.

A test is a function; run(fn) prints "PASS: name" or "FAIL: name: where:
why" (tests/run-tests.sh counts those lines), skip() prints "SKIP: ...",
summary() returns the exit status.  check(cond, msg) fails the current test.
Tests run from the repository root with /usr/bin/python3 (Debian's Python,
which has python3-zmq and python3-msgpack).  RWKVD_BUILD_FLAVOUR (rel or
asan, default rel) picks build/<flavour>/bin.
"""

import faulthandler
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback

import msgpack
import zmq

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FLAVOUR = os.environ.get("RWKVD_BUILD_FLAVOUR", "rel")
BIN = os.path.join(ROOT, "build", FLAVOUR, "bin")
FAKE = os.path.join(ROOT, "tests", "support", "fake_rwkvd.py")
PYTHON = "/usr/bin/python3"
FIXTURES = os.environ.get("RWKVD_FIXTURES") or os.path.join(ROOT, "..", "shared", "fixtures")

_passed = 0
_failed = 0
_cleanups = []


class CheckFailed(Exception):
    pass


def check(cond, msg="check failed"):
    if not cond:
        raise CheckFailed(msg)


def defer(fn):
    """Registers fn to run when the current test ends (pass or fail)."""
    _cleanups.append(fn)


# A hung test must fail, not stall the run: after this many seconds the
# stacks are printed and the process exits non-zero (run-tests.sh then counts
# a failure).
TEST_LIMIT = float(os.environ.get("RWKVD_PY_TEST_LIMIT", "300"))


def run(fn):
    global _passed, _failed
    name = fn.__name__
    faulthandler.dump_traceback_later(TEST_LIMIT, exit=True)
    print("(running %s)" % name, flush=True)
    try:
        fn()
        print("PASS: %s" % name, flush=True)
        _passed += 1
    except Exception as e:  # any exception fails the test, with where it came from
        tb = traceback.extract_tb(e.__traceback__)
        where = "%s:%d" % (os.path.basename(tb[-1].filename), tb[-1].lineno) if tb else "?"
        for fr in reversed(tb):
            if os.path.basename(fr.filename).startswith("test_"):
                where = "%s:%d" % (os.path.basename(fr.filename), fr.lineno)
                break
        msg = str(e) if isinstance(e, CheckFailed) else "%s: %s" % (type(e).__name__, e)
        print("FAIL: %s: %s: %s" % (name, where, msg.replace("\n", " | ")[:2000]), flush=True)
        _failed += 1
    finally:
        faulthandler.cancel_dump_traceback_later()
        while _cleanups:
            try:
                _cleanups.pop()()
            except Exception as e:
                print("note: cleanup of %s: %s" % (name, e), flush=True)


def skip(name, why):
    print("SKIP: %s: %s" % (name, why), flush=True)


def summary():
    print("%d passed, %d failed" % (_passed, _failed), flush=True)
    return 1 if _failed else 0


def tmpdir():
    d = tempfile.mkdtemp(prefix="rwkvd-test-")
    defer(lambda: shutil.rmtree(d, ignore_errors=True))
    return d


def endpoints(d):
    return {"ingest": "ipc://%s/ingest" % d, "emit": "ipc://%s/emit" % d,
            "control": "ipc://%s/control" % d}


def tool(name):
    p = os.path.join(BIN, name)
    check(os.access(p, os.X_OK), "%s is not built (make %s)" % (p, os.path.relpath(p, ROOT)))
    return p


def stop(proc, sig=None):
    if proc.poll() is None:
        if sig is None:
            proc.terminate()
        else:
            proc.send_signal(sig)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def control(ep, cmd, timeout=5.0, **fields):
    """One control request on a fresh REQ socket; the reply map, or None on
    timeout."""
    s = zmq.Context.instance().socket(zmq.REQ)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(ep)
    try:
        s.send(msgpack.packb(dict({"v": 1, "cmd": cmd}, **fields), use_bin_type=True))
        if not s.poll(int(timeout * 1000)):
            return None
        return msgpack.unpackb(s.recv(), raw=False)
    finally:
        s.close()


def wait_ready(ep, proc, timeout=30.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        check(proc.poll() is None, "daemon exited with status %s" % proc.returncode)
        if control(ep, "health", timeout=0.5) is not None:
            return
    raise CheckFailed("daemon not answering health on %s" % ep)


def start_fake(d, *extra, log=True):
    """Starts fake_rwkvd.py on ipc endpoints in d; returns (proc, eps, log path)."""
    eps = endpoints(d)
    logp = os.path.join(d, "fake.log")
    args = [PYTHON, FAKE, "--ingest", eps["ingest"], "--emit", eps["emit"],
            "--control", eps["control"]] + list(extra)
    if log:
        args += ["--log", logp]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(d, "fake.err"), "a"))
    defer(lambda: stop(proc))
    wait_ready(eps["control"], proc)
    return proc, eps, logp


def daemon_expected():
    """True when the real daemon is part of this tree (daemon/main.c exists):
    then its binary must be built and the tests against it must run."""
    return os.path.exists(os.path.join(ROOT, "daemon", "main.c"))


def start_daemon(d, *extra):
    """Starts the real rwkvd on the tiny RWKV-7 fixture model."""
    eps = endpoints(d)
    model = os.path.join(FIXTURES, "models", "tiny-rwkv-7v0-834K.safetensors")
    check(os.path.exists(model), "fixture model missing: %s" % model)
    args = [tool("rwkvd"), "--model", model, "--ingest", eps["ingest"], "--emit", eps["emit"],
            "--control", eps["control"], "--state-dir", os.path.join(d, "state"),
            "--threads", "1"] + list(extra)
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(d, "rwkvd.err"), "a"))
    defer(lambda: stop(proc))
    wait_ready(eps["control"], proc, timeout=60.0)
    return proc, eps


def read_log(path):
    """The fake daemon's JSON-lines log; a last line still being written
    (no newline yet) is left for the next read."""
    import json
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    out = []
    for i, line in enumerate(lines[:-1]):   # lines[-1]: after the last newline
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except ValueError as e:
            raise CheckFailed("%s line %d: %s: %r" % (path, i + 1, e, line[:120]))
    return out
