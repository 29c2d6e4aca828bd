#!/usr/bin/python3
"""test_daemon_curve.py — CURVE encryption and the per-role allow-lists.

The daemon runs with --curve-secret-key and one allow-list directory per
role (producer: ingest, consumer: emit, operator: control), keys made by
`rwkvd keygen`.  Checked: a plaintext client gets nothing and the daemon
stays healthy; a key in no list is refused on every socket; a producer key
cannot use the control socket and a consumer key cannot ingest; the right
keys carry a document end to end (Python client, rwkvd-send, rwkvd-sink);
a wrong server key fails clearly on the client side; refusals are logged
once per peer address and counted in rwkvd_auth_refused_total{role}; an
allow-list change takes effect on SIGHUP without a restart; a secret key
file readable by group or others, a key pair whose halves do not match and
an allow-list without a key pair all stop the daemon at start.
"""
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "support"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "clients", "python"))
import zmq  # noqa: E402

import rwkvd  # noqa: E402
from curve_harness import CurveDaemon, make_keys  # noqa: E402
from rwkvd_harness import (ASAN_BIN, REL_BIN, Daemon, TestFailure, Work, check,  # noqa: E402
                           free_tcp_port, pack, run_cases, tiny_text, _CTX)

BLOCK = 64
OPTS = {"outputs": ["embedding", "surprisal"], "pooling": "mean", "normalize": False}


class ClientDaemon(CurveDaemon):
    """CurveDaemon plus Python clients (clients/python/rwkvd.py) with any key."""

    def client(self, who, server=None, timeout=10.0):
        return rwkvd.Client(ingest=self.ingest_ep, emit=self.emit_ep, control=self.control_ep,
                            timeout=timeout, context=_CTX,
                            curve_server_key=(server or self.keys["server"]) + ".pub",
                            curve_key=self.keys[who])


def refused(fn, what, marker="refused this client's key"):
    try:
        fn()
    except rwkvd.RwkvdError as e:
        check(e.reason == "auth" and marker in str(e), "%s: %s" % (what, e))
        return
    raise TestFailure("%s: not refused" % what)


def metrics(port):
    body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10).read().decode()
    vals = {}
    for line in body.splitlines():
        if line.startswith("rwkvd_auth_refused_total{"):
            k, v = line.rsplit(" ", 1)
            vals[k[len("rwkvd_auth_refused_total"):]] = float(v)
    return vals


def wait_log(d, text, count=1, timeout=10.0):
    end = time.time() + timeout
    while d.log_text().count(text) < count:
        check(time.time() < end, "log never said %r %d times: %s" % (text, count, d.log_text()[-1500:]))
        time.sleep(0.05)


def tool(binary, name):
    return os.path.join(os.path.dirname(binary), name)


def curve_roles(binary):
    with Work() as work:
        keys, dirs = make_keys(binary, work)
        port = free_tcp_port()
        d = ClientDaemon(work, keys, dirs, binary=binary,
                         args=["--metrics-port", str(port), "--block-size", str(BLOCK)])
        d.start()
        check("CURVE on: 2 producer, 1 consumer, 2 operator keys allowed" in d.log_text(),
              "start-up line: %s" % d.log_text()[-800:])

        # the operator key works
        op = d.client("operator")
        check(op.health()["status"] == "ok", "operator health")
        check(op.status()["block_size"] == BLOCK, "operator status")

        # plaintext clients get nothing at all, and the daemon stays healthy
        req = _CTX.socket(zmq.REQ)
        req.setsockopt(zmq.LINGER, 0)
        req.connect(d.control_ep)
        req.send(pack({"v": 1, "cmd": "health"}))
        check(not req.poll(1500), "a plaintext control request was answered")
        req.close(0)
        push = _CTX.socket(zmq.PUSH)
        push.setsockopt(zmq.LINGER, 0)
        push.setsockopt(zmq.SNDTIMEO, 500)
        push.connect(d.ingest_ep)
        try:
            push.send(pack({"v": 1, "doc": "plain", "seq": 0, "bytes": b"x", "eof": True}))
        except zmq.Again:
            pass
        pull = _CTX.socket(zmq.PULL)
        pull.setsockopt(zmq.LINGER, 0)
        pull.connect(d.emit_ep)
        check(not pull.poll(1000), "a plaintext consumer received something")
        push.close(0)
        pull.close(0)
        r = op.resume("plain")
        check(r["known"] is False, "a plaintext producer's document reached the daemon: %r" % r)
        check(op.health()["status"] == "ok", "health after the plaintext clients")

        # a key in no list: refused on every socket
        before = metrics(port)
        s = d.client("stranger")
        refused(lambda: s.health(), "stranger on control")
        refused(lambda: s._push_socket(), "stranger on ingest")
        refused(lambda: s._pull_socket(), "stranger on emit")
        # a producer key on control, a consumer key on ingest, a producer on emit
        refused(lambda: d.client("producer").health(), "producer on control")
        refused(lambda: d.client("consumer")._push_socket(), "consumer on ingest")
        refused(lambda: d.client("producer")._pull_socket(), "producer on emit")
        after = metrics(port)
        for role, n in (("producer", 2), ("consumer", 2), ("operator", 2)):
            key = '{role="%s"}' % role
            check(after.get(key, 0) - before.get(key, 0) == n,
                  "rwkvd_auth_refused_total%s went %r -> %r, expected +%d"
                  % (key, before.get(key), after.get(key), n))
        # several refusals from one address, one log line per role
        refused(lambda: d.client("stranger").health(), "stranger on control again")
        log = d.log_text()
        check(log.count("CURVE: operator refused") == 1 and log.count("CURVE: producer refused") == 1
              and log.count("CURVE: consumer refused") == 1,
              "refusals not logged once per address and role: %s" % log[-1500:])

        # a wrong server key fails clearly on the client side
        refused(lambda: d.client("operator", server=keys["stranger"]).health(),
                "wrong server key", marker="broke off the CURVE handshake")

        # the right keys carry a document end to end
        text = tiny_text()[:700]
        prod = d.client("sender")
        prod.send_document("curved", text, chunk_size=300, opts=OPTS)
        cons = d.client("consumer")
        outs = list(cons.outputs(doc="curved", timeout=60))
        blocks = [o for o in outs if o["type"] == "block"]
        final = [o for o in outs if o["type"] == "final"]
        check(len(final) == 1 and final[0]["tokens"] == 700 and len(blocks) == final[0]["blocks"] == 11,
              "curved document: %r" % [(o["type"], o.get("block")) for o in outs])

        # rwkvd-send and rwkvd-sink with keys; and with a wrong server key
        doc = os.path.join(work, "doc.txt")
        with open(doc, "wb") as f:
            f.write(text)
        sink_out = os.path.join(work, "sink.jsonl")
        sink = subprocess.Popen([tool(binary, "rwkvd-sink"), "--emit", d.emit_ep, "--out", sink_out,
                                 "--until-final", "1", "--idle-timeout", "60", "-q",
                                 "--curve-server-key", keys["server"] + ".pub",
                                 "--curve-key", keys["consumer"]],
                                stderr=subprocess.PIPE)
        p = subprocess.run([tool(binary, "rwkvd-send"), "--ingest", d.ingest_ep, "--control",
                            d.control_ep, "--doc", "sent", "--chunk-size", "256", "-q",
                            "--outputs", "embedding", "--curve-server-key", keys["server"] + ".pub",
                            "--curve-key", keys["sender"], doc], capture_output=True, timeout=120)
        check(p.returncode == 0, "rwkvd-send with keys: %d %r" % (p.returncode, p.stderr))
        _, err = sink.communicate(timeout=120)
        check(sink.returncode == 0, "rwkvd-sink with keys: %d %r" % (sink.returncode, err))
        check('"type":"final"' in open(sink_out).read().replace(" ", ""), "sink wrote no final")
        p = subprocess.run([tool(binary, "rwkvd-send"), "--ingest", d.ingest_ep, "--control",
                            d.control_ep, "--doc", "never", "-q", "--timeout", "5",
                            "--curve-server-key", keys["stranger"] + ".pub",
                            "--curve-key", keys["sender"], doc], capture_output=True, timeout=60)
        err = p.stderr.decode()
        check(p.returncode == 1 and "broke off the CURVE handshake" in err and err.count("\n") == 1,
              "rwkvd-send with a wrong server key: %d %r" % (p.returncode, err))
        p = subprocess.run([tool(binary, "rwkvd-sink"), "--emit", d.emit_ep, "--idle-timeout", "5",
                            "--curve-server-key", keys["server"] + ".pub",
                            "--curve-key", keys["producer"]], capture_output=True, timeout=60)
        err = p.stderr.decode()
        check(p.returncode == 1 and "refused this client's key" in err,
              "rwkvd-sink with a producer key: %d %r" % (p.returncode, err))

        # SIGHUP: the stranger joins the operators, then leaves again
        added = os.path.join(dirs["operators"], "stranger.pub")
        shutil.copy(keys["stranger"] + ".pub", added)
        d.proc.send_signal(signal.SIGHUP)
        wait_log(d, "CURVE allow-lists reloaded: 2 producer, 1 consumer, 3 operator")
        check(d.client("stranger").health()["status"] == "ok", "stranger after being allowed")
        os.unlink(added)
        d.proc.send_signal(signal.SIGHUP)
        wait_log(d, "CURVE allow-lists reloaded: 2 producer, 1 consumer, 2 operator")
        refused(lambda: d.client("stranger").health(), "stranger after removal")
        # a bad file in a list: the reload is refused as a whole, the lists stay
        with open(os.path.join(dirs["operators"], "bad.pub"), "w") as f:
            f.write("not a key\n")
        d.proc.send_signal(signal.SIGHUP)
        wait_log(d, "CURVE allow-lists not reloaded")
        check(op.health()["status"] == "ok", "operator after a refused reload")
        op.close()
        d.stop()


def curve_start_refusals(binary):
    with Work() as work:
        keys, dirs = make_keys(binary, work)
        model = Daemon(work, binary=binary).model

        def start(*args):
            p = subprocess.run([binary, "--model", model, "--state-dir", os.path.join(work, "st"),
                                "--ingest", "ipc://%s/i" % work, "--emit", "ipc://%s/e" % work,
                                "--control", "ipc://%s/c" % work] + list(args),
                               capture_output=True, timeout=20)
            return p.returncode, p.stderr.decode()

        for mode in (0o644, 0o640, 0o604, 0o620):
            os.chmod(keys["server"], mode)
            rc, err = start("--curve-secret-key", keys["server"])
            check(rc != 0 and "chmod 600" in err and keys["server"] in err,
                  "secret key mode %o: %d %r" % (mode, rc, err))
        os.chmod(keys["server"], 0o600)
        # halves of two different pairs
        mixed = os.path.join(work, "mixed.key")
        with open(mixed, "w") as f:
            f.write(open(keys["server"]).read().split("\n")[0] + "\n" +
                    open(keys["stranger"]).read().split("\n")[1] + "\n")
        os.chmod(mixed, 0o600)
        rc, err = start("--curve-secret-key", mixed)
        check(rc != 0 and "does not belong" in err, "mismatched pair: %d %r" % (rc, err))
        # a public key file is not a key pair
        rc, err = start("--curve-secret-key", keys["server"] + ".pub")
        check(rc != 0 and "no secret key line" in err, "public file as pair: %d %r" % (rc, err))
        # an allow-list without the daemon's key pair
        rc, err = start("--curve-operators", dirs["operators"])
        check(rc != 0 and "--curve-secret-key" in err, "list without pair: %d %r" % (rc, err))
        # a bad file in an allow-list
        with open(os.path.join(dirs["producers"], "bad.pub"), "w") as f:
            f.write("x" * 39 + "~\n")  # 40 characters, the last outside Z85
        rc, err = start("--curve-secret-key", keys["server"], "--curve-producers", dirs["producers"])
        check(rc != 0 and "bad.pub: offset 39" in err and "Z85" in err, "bad allow-list file: %d %r" % (rc, err))

        # keygen: modes, and it never overwrites
        st = os.stat(keys["operator"])
        check(st.st_mode & 0o777 == 0o600, "keygen pair mode %o" % (st.st_mode & 0o777))
        check(os.stat(keys["operator"] + ".pub").st_mode & 0o777 == 0o644, "keygen .pub mode")
        lines = open(keys["operator"]).read().split("\n")
        check(len(lines) == 3 and lines[2] == "" and len(lines[0]) == 40 and len(lines[1]) == 40
              and open(keys["operator"] + ".pub").read() == lines[0] + "\n", "keygen files %r" % lines)
        p = subprocess.run([binary, "keygen", keys["operator"]], capture_output=True)
        check(p.returncode == 1 and b"exists" in p.stderr, "keygen over an existing key: %r" % p.stderr)
        check(open(keys["operator"]).read().split("\n") == lines, "keygen changed an existing key")


if __name__ == "__main__":
    run_cases([
        ("CURVE roles, refusals, clients, SIGHUP reload (rel)", lambda: curve_roles(REL_BIN), "rel"),
        ("CURVE roles, refusals, clients, SIGHUP reload (asan)", lambda: curve_roles(ASAN_BIN), "asan"),
        ("CURVE start-up refusals, keygen (rel)", lambda: curve_start_refusals(REL_BIN), "rel"),
        ("CURVE start-up refusals, keygen (asan)", lambda: curve_start_refusals(ASAN_BIN), "asan"),
    ])
