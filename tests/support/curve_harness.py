"""curve_harness.py — a CURVE-secured rwkvd for the tests and benchmarks:
key pairs made by `rwkvd keygen`, one allow-list directory per role, and a
Daemon whose sockets (push, pull, control, the start-up health check) use
the keys of the role each socket needs.

Keys: server (the daemon's), producer, consumer, operator, sender
(producer + operator: what rwkvd-send needs), stranger (in no list).
"""
import os
import shutil
import subprocess

import msgpack
import zmq

from rwkvd_harness import Daemon, check, unpack, _CTX


def keygen(binary, out):
    p = subprocess.run([binary, "keygen", out], capture_output=True)
    check(p.returncode == 0, "keygen %s: %r" % (out, p.stderr))
    return out


def make_keys(binary, work):
    """{name: key pair path} and {role dir name: path}; NAME.pub beside each."""
    k = {}
    for name in ("server", "producer", "consumer", "operator", "sender", "stranger"):
        k[name] = keygen(binary, os.path.join(work, name + ".key"))
    dirs = {}
    for role, members in (("producers", ("producer", "sender")), ("consumers", ("consumer",)),
                          ("operators", ("operator", "sender"))):
        d = os.path.join(work, role)
        os.mkdir(d)
        for m in members:
            shutil.copy(k[m] + ".pub", os.path.join(d, m + ".pub"))
        dirs[role] = d
    return k, dirs


def read_pair(path):
    lines = open(path, "rb").read().split(b"\n")
    return lines[0], (lines[1] if len(lines) > 1 and lines[1] else None)


class CurveDaemon(Daemon):
    """A Daemon run with --curve-secret-key and the three allow-lists; its
    push/pull/ctl use the producer/consumer/operator keys."""

    def __init__(self, work, keys, dirs, **kw):
        self.keys = keys
        args = ["--curve-secret-key", keys["server"], "--curve-producers", dirs["producers"],
                "--curve-consumers", dirs["consumers"], "--curve-operators", dirs["operators"]]
        super().__init__(work, args=args + list(kw.pop("args", ())), **kw)

    def secure(self, s, who):
        s.curve_serverkey = read_pair(self.keys["server"] + ".pub")[0]
        s.curve_publickey, s.curve_secretkey = read_pair(self.keys[who])
        return s

    def push(self, hwm=None, sndtimeo=None):
        s = self.secure(_CTX.socket(zmq.PUSH), "producer")
        s.setsockopt(zmq.LINGER, 0)
        if hwm is not None:
            s.setsockopt(zmq.SNDHWM, hwm)
        if sndtimeo is not None:
            s.setsockopt(zmq.SNDTIMEO, sndtimeo)
        s.connect(self.ingest_ep)
        return s

    def pull(self, hwm=None):
        s = self.secure(_CTX.socket(zmq.PULL), "consumer")
        s.setsockopt(zmq.LINGER, 0)
        if hwm is not None:
            s.setsockopt(zmq.RCVHWM, hwm)
        s.connect(self.emit_ep)
        return s

    def ctl(self, req, timeout=10.0):
        if self._ctl is None:
            self._ctl = self.secure(_CTX.socket(zmq.REQ), "operator")
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
