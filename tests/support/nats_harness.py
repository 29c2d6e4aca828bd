"""nats_harness.py — real nats-server processes for the cluster tests
(PROTOCOL.md §12): one server or a 3-node cluster with JetStream, on free
ports, its store in the test's temp dir, stopped at the end whatever
happens; rwkvd workers in cluster mode; and the rwkvd-nats pipe (pub, sub,
leases) to publish documents and read outputs.

There is no Python NATS library in Debian, so everything on the NATS side
goes through the C binaries: rwkvd-nats speaks the mapping exactly as a
producer or consumer in any language would.
"""
import os
import signal
import socket
import struct
import subprocess
import sys
import time

from rwkvd_harness import REPO, Daemon, TestFailure, check, unpack

sys.path.insert(0, os.path.join(REPO, "clients", "python"))
import rwkvd_nats  # noqa: E402

NATS_SERVER = "/usr/sbin/nats-server"
# the pipe of the flavour under test (make check FLAVOUR=asan: sanitized too)
NATS_TOOL = os.path.join(REPO, "build/%s/bin/rwkvd-nats"
                         % os.environ.get("RWKVD_BUILD_FLAVOUR", "rel"))
if not os.access(NATS_TOOL, os.X_OK):
    NATS_TOOL = os.path.join(REPO, "build/rel/bin/rwkvd-nats")

_SERVERS = []


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class NatsServer:
    """One nats-server with JetStream; `routes` joins it to a cluster."""

    def __init__(self, work, name="n1", cluster_port=None, routes=(), mapping_partitions=None):
        check(os.access(NATS_SERVER, os.X_OK), "nats-server missing: %s (make deps)" % NATS_SERVER)
        self.work = work
        self.name = name
        self.port = free_port()
        self.store = os.path.join(work, "nats-%s" % name)
        self.conf = os.path.join(work, "nats-%s.conf" % name)
        self.log = os.path.join(work, "nats-%s.log" % name)
        lines = ["server_name: %s" % name, "listen: 127.0.0.1:%d" % self.port,
                 "jetstream { store_dir: %s }" % self.store]
        if cluster_port:
            lines.append("cluster { name: rwkvd-test, listen: 127.0.0.1:%d, routes: [%s] }"
                         % (cluster_port, ", ".join("nats-route://127.0.0.1:%d" % r
                                                    for r in routes)))
        if mapping_partitions:
            lines.append('mappings = { "rwkvd.doc.*": "rwkvd.in.{{partition(%d,1)}}.{{wildcard(1)}}" }'
                         % mapping_partitions)
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.proc = None

    @property
    def url(self):
        return "nats://127.0.0.1:%d" % self.port

    def start(self, wait=True):
        with open(self.log, "ab") as lf:
            self.proc = subprocess.Popen([NATS_SERVER, "-c", self.conf], stdout=lf, stderr=lf,
                                         stdin=subprocess.DEVNULL)
        _SERVERS.append(self)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=20.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise TestFailure("nats-server exited: %s" % self.log_tail())
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.5) as s:
                    if s.recv(4096).startswith(b"INFO"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise TestFailure("nats-server not ready: %s" % self.log_tail())

    def stop(self, sig=signal.SIGTERM):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self in _SERVERS:
            _SERVERS.remove(self)

    def log_tail(self, n=1500):
        try:
            with open(self.log, "rb") as f:
                return f.read()[-n:].decode("utf-8", "replace")
        except OSError:
            return "(no log)"


def stop_all_servers():
    for s in list(_SERVERS):
        s.stop(signal.SIGKILL)


def cluster(work, n=3):
    """n nats-servers routed to each other; returns the list (started)."""
    cports = [free_port() for _ in range(n)]
    servers = [NatsServer(work, "n%d" % (i + 1), cports[i], [p for p in cports if p != cports[i]])
               for i in range(n)]
    for s in servers:
        s.start(wait=False)
    for s in servers:
        s.wait_ready()
    return servers


# ------------------------------------------------------------------ workers
def worker(work, url, name, state_dir, binary, partitions, ttl, extra=()):
    """An rwkvd in cluster mode (not started).  Its ingest/emit endpoints
    are never bound; control stays on ipc:// under work."""
    args = ["--nats", url, "--worker-id", name, "--partitions", str(partitions),
            "--lease-ttl", str(ttl)] + list(extra)
    return Daemon(work, state_dir=state_dir, binary=binary, args=args, tag=name)


# ------------------------------------------------------------------ rwkvd-nats
frames = rwkvd_nats.frames


def unframe(data):
    out, i = [], 0
    while i + 4 <= len(data):
        n = struct.unpack_from("<I", data, i)[0]
        if i + 4 + n > len(data):
            break  # a frame cut by a kill of the reader
        out.append(data[i + 4:i + 4 + n])
        i += 4 + n
    return out


def publish(url, msgs, partitions=None, timeout=120.0, msg_ids=True):
    """Publishes raw msgpack ingest maps through rwkvd-nats pub (msg_ids:
    with Nats-Msg-Id <hex>:<seq>, so the server drops a repeated seq)."""
    cmd = [NATS_TOOL, "pub", "--nats", url] + ([] if msg_ids else ["--no-msg-id"])
    if partitions:
        cmd += ["--partitions", str(partitions)]
    r = subprocess.run(cmd, input=frames(msgs), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout)
    check(r.returncode == 0, "rwkvd-nats pub: status %d: %s" % (r.returncode, r.stderr[-800:]))


class Sink:
    """rwkvd-nats sub in the background, writing frames to a file."""

    def __init__(self, work, url, durable):
        self.path = os.path.join(work, "sink-%s.bin" % durable)
        self.err = os.path.join(work, "sink-%s.err" % durable)
        self.cmd = [NATS_TOOL, "sub", "--nats", url, "--durable", durable]
        self.proc = None

    def start(self):
        with open(self.path, "ab") as out, open(self.err, "ab") as err:
            self.proc = subprocess.Popen(self.cmd, stdout=out, stderr=err,
                                         stdin=subprocess.DEVNULL)
        return self

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def raws(self):
        with open(self.path, "rb") as f:
            return unframe(f.read())

    def outputs(self):
        return [(unpack(r), r) for r in self.raws()]


def by_key(outputs, docs, errors_ok=False):
    """{doc: {block|"final": raw}} with every duplicate byte-identical."""
    res = {d: {} for d in docs}
    for out, raw in outputs:
        t = out["type"]
        if t == "error":
            if errors_ok:
                continue
            raise TestFailure("unexpected error output: %r" % (out,))
        d = out["doc"]
        check(d in res, "output for an unexpected document %r" % (d,))
        k = out["block"] if t == "block" else "final"
        if k in res[d]:
            check(res[d][k] == raw, "doc %r %s re-emitted with different bytes" % (d, k))
        res[d][k] = raw
    return res


def finals(outputs):
    return {o["doc"] for o, _ in outputs if o["type"] == "final"}


# A worker whose outputs the server refused (a stream without a leader while
# a node of a replicated cluster dies) exits with this status at once,
# without checkpoints or acks, so that its documents are redone; the systemd
# unit restarts it (Restart=on-failure), and so does wait_finals.
EXIT_OUTPUTS_REFUSED = 3


def wait_finals(sink, docs, timeout, workers=(), servers=(), max_restarts=3):
    """Until every doc has a final in the sink's file.  A worker that exits
    with EXIT_OUTPUTS_REFUSED is started again, as its supervisor would (at
    most max_restarts times in all); any other death fails."""
    want = set(docs)
    deadline = time.time() + timeout
    restarts = 0
    while True:
        got = finals(sink.outputs())
        if want <= got:
            return
        for w in workers:
            if w.proc is None:
                continue
            rc = w.proc.poll()
            if rc == EXIT_OUTPUTS_REFUSED and restarts < max_restarts:
                restarts += 1
                print("worker %s exited %d (outputs refused by the server); restarted as "
                      "systemd would" % (w.tag, rc), flush=True)
                w._reaped()
                w.start()
                continue
            w.check_running()
        if time.time() > deadline:
            raise TestFailure("timed out: %d of %d documents finished (missing e.g. %r)"
                              % (len(want & got), len(want), sorted(want - got)[:3]))
        time.sleep(0.2)


def leases(url):
    """{partition: (worker, revision)}, and the live worker count (the Python
    client's reading of `rwkvd-nats leases`)."""
    return rwkvd_nats.NatsClient(url, tool=NATS_TOOL).leases()
