#!/usr/bin/python3
"""test_cluster_nats.py — rwkvd as workers of a NATS JetStream cluster
(PROTOCOL.md §12), against real nats-server processes on free ports with
their stores in temp dirs.

- the partition function: rwkvd's (C, in rwkvd-nats pub) and the documented
  FNV-1a formula (Python here) both equal nats-server's own subject mapping
  {{partition(P,1)}};
- 3 workers x 200 documents of mixed sizes, random message splits: the
  union of the outputs in the output stream equals a single-worker ZeroMQ
  run byte for byte per (doc, block) and (doc, final), nothing missing;
- kill -9 of a worker mid-run, twice: its partitions move, everything
  completes, outputs identical (failover times printed);
- SIGSTOP of a worker past its lease, then SIGCONT: it gives up the
  partitions it lost, the others own them, outputs identical;
- a worker joining a running cluster gets its share (<= ceil(P/W) each);
- hostile messages through NATS get the same refusals as through ZeroMQ.

The tiny fixture model, 64-token blocks and lease TTLs of 2-3 s keep the
wall time modest; under ASan the document count is smaller (stated).
"""
import os
import random
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "support"))
from nats_harness import (NatsServer, Sink, by_key, cluster, free_port, leases, publish,
                          stop_all_servers, wait_finals, worker)
from rwkvd_harness import (ASAN_BIN, REL_BIN, Daemon, Work, check, collect_docs, ingest,
                           random_split, run_cases, tiny_text, unpack)

BLOCK = 64
ARGS = ["--block-size", str(BLOCK), "--linger-ms", "200"]


def fnv_partition(doc, p):
    h = 2166136261
    for c in doc.hex().encode():
        h = ((h ^ c) * 16777619) & 0xFFFFFFFF
    return h % p


def corpus(n_docs, seed=9):
    """[(doc, [ingest message bytes...])] of mixed sizes, random splits."""
    rng = random.Random(seed)
    text = tiny_text()
    docs = []
    for i in range(n_docs):
        size = rng.choice([0, 1, 40, 63, 64, 65, 200, 500, 900, 1500])
        start = rng.randrange(0, len(text) - size)
        data = text[start:start + size]
        parts = random_split(data, rng, rng.randint(0, 5)) if data else []
        opts = {"pooling": "mean"} if i % 3 == 0 else None
        doc = "doc-%03d" % i
        msgs = []
        if not parts:
            msgs.append(ingest(doc, 0, None, eof=True, opts=opts))
        for k, p in enumerate(parts):
            msgs.append(ingest(doc, k, p, eof=(k == len(parts) - 1),
                               opts=opts if k == 0 else None))
        docs.append((doc, msgs))
    return docs


def interleave(docs, seed=4):
    """All messages, documents interleaved at random, each document's in order."""
    rng = random.Random(seed)
    queues = [list(m) for _, m in docs]
    out = []
    while queues:
        q = rng.choice(queues)
        out.append(q.pop(0))
        if not q:
            queues.remove(q)
    return out


_REF = {}


def reference(binary, docs):
    """Outputs of one ZeroMQ daemon (same binary) for the corpus, by key."""
    key = (binary, len(docs))
    if key in _REF:
        return _REF[key]
    with Work() as work:
        d = Daemon(work, binary=binary, args=ARGS, tag="ref").start()
        push, pull = d.push(), d.pull()
        for m in interleave(docs):
            push.send(m)
        res = collect_docs(pull, [doc for doc, _ in docs], timeout=600, daemon=d)
        push.close(0)
        pull.close(0)
        d.stop()
    _REF[key] = {doc: r["raw"] for doc, r in res.items()}
    return _REF[key]


def compare(got, ref):
    for doc, want in ref.items():
        have = got.get(doc, {})
        missing = set(want) - set(have)
        extra = set(have) - set(want)
        check(not missing and not extra, "doc %r: missing %s, extra %s"
              % (doc, sorted(map(str, missing))[:5], sorted(map(str, extra))[:5]))
        for k in want:
            check(have[k] == want[k], "doc %r %r differs from the single-worker run" % (doc, k))


def log_times(w, word):
    """Monotonic-free: wall times (epoch s) of log lines containing word."""
    out = []
    for line in w.log_text().splitlines():
        if word in line:
            ts = line.split(" ", 1)[0]
            try:
                t = time.mktime(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
                out.append(t + float("0" + ts[19:23]))
            except ValueError:
                pass
    return out


def run_cluster(binary, n_docs, n_workers, partitions=16, ttl=3, disturb=None, timeout=600,
                nodes=1):
    docs = corpus(n_docs)
    ref = reference(binary, docs)
    with Work() as work:
        if nodes == 1:
            srv = NatsServer(work).start()
            url, extra = srv.url, []
        else:  # replicated streams, buckets and consumers on every node
            srv = cluster(work, nodes)
            url, extra = ",".join(s.url for s in srv), ["--nats-replicas", str(nodes)]
        try:
            state = os.path.join(work, "shared-state")
            ws = [worker(work, url, "w%d" % (i + 1), state, binary, partitions, ttl,
                         ARGS + extra) for i in range(n_workers)]
            for w in ws:
                w.start()
            sink = Sink(work, url, "test-sink").start()
            publish(url, interleave(docs), partitions=partitions)
            if disturb:
                disturb(ws, sink, [d for d, _ in docs], srv)
            live = [w for w in ws if w.proc is not None]
            wait_finals(sink, [d for d, _ in docs], timeout, workers=live)
            time.sleep(0.5)  # late duplicates, if any, must be identical too
            got = by_key(sink.outputs(), [d for d, _ in docs])
            compare(got, ref)
            for w in ws:
                if w.proc is not None:
                    w.stop()
            sink.stop()
            return ws, got
        finally:
            stop_all_servers()


def progress(sink):
    return sum(1 for o, _ in sink.outputs() if o["type"] == "final")


def wait_progress(sink, n, timeout=300):
    deadline = time.time() + timeout
    while progress(sink) < n:
        check(time.time() < deadline, "no progress: %d finals" % progress(sink))
        time.sleep(0.1)


# ------------------------------------------------------------------ cases
def partition_function():
    """rwkvd-nats (the C function), the documented formula and nats-server's
    mapping put every doc id in the same partition."""
    P = 16
    rng = random.Random(3)
    ids = [b"abcd", b"doc-1", b"\x00", bytes(range(256))] + \
          [bytes(rng.randrange(256) for _ in range(rng.randint(1, 40))) for _ in range(60)]
    check([fnv_partition(d, P) for d in ids[:3]] == [9, 2, 13],
          "the PROTOCOL.md §12.1 examples")
    with Work() as work:
        srv = NatsServer(work, mapping_partitions=P).start()
        try:
            s = socket.create_connection(("127.0.0.1", srv.port), 5)
            s.recv(4096)
            s.sendall(b'CONNECT {"verbose":false}\r\nSUB rwkvd.in.> 1\r\nPING\r\n')
            for d in ids:  # server-side partitioning
                s.sendall(b"PUB rwkvd.doc.%s 0\r\n\r\n" % d.hex().encode())
            # client-side partitioning (C): published with JetStream, also seen here
            publish(srv.url, [ingest(d, 0, b"x") for d in ids], partitions=P)
            s.sendall(b"PING\r\n")
            buf = b""
            deadline = time.time() + 20
            while buf.count(b"MSG ") < 2 * len(ids):
                check(time.time() < deadline, "only %d messages seen" % buf.count(b"MSG "))
                buf += s.recv(65536)
            s.close()
            subjects = [line.split()[1].decode() for line in buf.split(b"\r\n")
                        if line.startswith(b"MSG ")]
            server_side, client_side = subjects[:len(ids)], subjects[len(ids):]
            for d, a, b in zip(ids, server_side, client_side):
                want = "rwkvd.in.%d.%s" % (fnv_partition(d, P), d.hex())
                check(a == want, "nats-server mapped %r to %s, formula says %s" % (d, a, want))
                check(b == want, "rwkvd-nats published %r on %s, formula says %s" % (d, b, want))
        finally:
            stop_all_servers()
    print("partition: %d doc ids, C = formula = nats-server partition(%d,1)" % (len(ids), P),
          flush=True)


def three_workers(binary, n_docs):
    t0 = time.time()
    ws, got = run_cluster(binary, n_docs, 3)
    print("3 workers, %d documents, %d outputs identical to one ZeroMQ daemon (%.1f s)"
          % (n_docs, sum(len(v) for v in got.values()), time.time() - t0), flush=True)


def kills(binary=REL_BIN, n_docs=200):
    fail_times = []

    def disturb(ws, sink, docs, srv):
        for victim, at in ((ws[0], len(docs) // 4), (ws[1], len(docs) // 2)):
            wait_progress(sink, at)
            others = [w for w in ws if w is not victim and w.proc is not None]
            held, _ = leases(srv.url)
            theirs = ["partition %d acquired (" % p for p, (who, _) in held.items()
                      if who == victim.tag]
            check(theirs, "%s holds no partition before the kill: %r" % (victim.tag, held))
            t_kill = time.time()
            victim.kill9()
            deadline = time.time() + 30
            while True:  # failover: kill -> another worker owns a partition of the victim
                got = [t for w in others for p in theirs for t in log_times(w, p)
                       if t >= t_kill]
                if got:
                    fail_times.append(min(got) - t_kill)
                    break
                check(time.time() < deadline, "no worker took over within 30 s")
                time.sleep(0.05)
            victim.start()  # and it comes back, as a supervisor would restart it

    run_cluster(binary, n_docs, 3, ttl=2, disturb=disturb)
    print("kill -9 twice: outputs identical; failover (kill -> partition acquired) %s s, "
          "lease TTL 2 s" % ", ".join("%.2f" % t for t in fail_times), flush=True)
    if binary == REL_BIN:  # a sanitized build is too slow for the target
        check(all(t < 2 + 2 for t in fail_times), "failover slower than TTL + 2 s: %r"
              % fail_times)


def stop_cont(binary=REL_BIN, n_docs=120):
    ttl = 2

    def disturb(ws, sink, docs, srv):
        a, b = ws
        wait_progress(sink, len(docs) // 5)
        os.kill(a.pid, signal.SIGSTOP)
        try:
            deadline = time.time() + 30
            while True:  # b owns every partition once a's leases expired
                held, _ = leases(srv.url)
                if len(held) == 8 and all(v[0] == "w2" for v in held.values()):
                    break
                check(time.time() < deadline, "w2 did not take w1's partitions: %r" % held)
                time.sleep(0.2)
        finally:
            os.kill(a.pid, signal.SIGCONT)
        deadline = time.time() + 20
        while "lost (not renewed in time" not in a.log_text():
            check(time.time() < deadline, "w1 did not notice that it lost its leases")
            time.sleep(0.1)
        held, _ = leases(srv.url)
        # what w1 holds now it acquired after it gave the old leases up
        lost_at = log_times(a, "lost (not renewed")
        for p, (who, _) in held.items():
            if who == "w1":
                check(any(t >= min(lost_at) for t in log_times(a, "partition %d acquired (" % p)),
                      "w1 holds partition %d without acquiring it again" % p)

    run_cluster(binary, n_docs, 2, partitions=8, ttl=ttl, disturb=disturb)
    print("SIGSTOP past the lease: partitions given up and taken over; outputs identical",
          flush=True)


def server_restart():
    def disturb(ws, sink, docs, srv):
        wait_progress(sink, len(docs) // 4)
        srv.stop()           # SIGTERM: a clean restart of a single-node setup
        time.sleep(3.0)      # longer than the leases: the workers lose them
        srv.start()          # same port, same store

    t0 = time.time()
    run_cluster(REL_BIN, 100, 2, partitions=8, ttl=2, disturb=disturb)
    print("nats-server restarted mid-run: workers reconnected, outputs identical (%.1f s)"
          % (time.time() - t0), flush=True)


def node_kill():
    def disturb(ws, sink, docs, servers):
        wait_progress(sink, len(docs) // 4)
        servers[0].stop(signal.SIGKILL)  # one of three nodes dies for good

    t0 = time.time()
    run_cluster(REL_BIN, 100, 2, partitions=8, ttl=3, disturb=disturb, nodes=3)
    print("3-node cluster, one node killed mid-run: nothing lost, outputs identical (%.1f s)"
          % (time.time() - t0), flush=True)


def joining():
    P, ttl = 8, 2
    with Work() as work:
        srv = NatsServer(work).start()
        try:
            state = os.path.join(work, "state")
            mport = free_port()
            ws = [worker(work, srv.url, "w%d" % (i + 1), state, REL_BIN, P, ttl,
                         ARGS + (["--metrics-port", str(mport)] if i == 0 else []))
                  for i in range(3)]
            ws[0].start()
            deadline = time.time() + 20
            while len(leases(srv.url)[0]) < P:
                check(time.time() < deadline, "one worker did not take all %d partitions" % P)
                time.sleep(0.2)
            t_join = time.time()
            ws[1].start()
            ws[2].start()
            share = -(-P // 3)
            deadline = time.time() + 30
            while True:
                held, nw = leases(srv.url)
                count = {}
                for who, _ in held.values():
                    count[who] = count.get(who, 0) + 1
                if nw == 3 and len(held) == P and len(count) == 3 and \
                        max(count.values()) <= share:
                    break
                check(time.time() < deadline, "no balance after 30 s: %r" % count)
                time.sleep(0.2)
            print("join: 2 workers joined 1; settled to %s (<= %d each) in %.1f s"
                  % (sorted(count.values()), share, time.time() - t_join), flush=True)
            # status and /metrics report the same partitions as the lease bucket
            held, _ = leases(srv.url)
            for w in ws:
                c = w.call(cmd="status")["cluster"]
                mine = sorted(p for p, (who, _) in held.items() if who == w.tag)
                check(c["worker"] == w.tag and c["partitions"] == P and c["workers"] == 3,
                      "status of %s: %r" % (w.tag, c))
                check(sorted(l["partition"] for l in c["leases"]) == mine and
                      c["owned"] == len(mine), "status of %s: %r, bucket %r" % (w.tag, c, mine))
            import urllib.request
            body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % mport, timeout=10) \
                .read().decode()
            n0 = sum(1 for who, _ in held.values() if who == "w1")
            check("rwkvd_cluster_partitions_owned %d\n" % n0 in body,
                  "metrics of w1: %s" % [l for l in body.splitlines() if "cluster" in l][:12])
            for w in ws:
                w.stop()
        finally:
            stop_all_servers()


def clients():
    """rwkvd-send --nats and rwkvd-sink --nats --durable give the same JSON
    Lines as the same clients over ZeroMQ; a sink stopped half-way and
    started again under the same durable name with --append completes the
    file with nothing lost and nothing twice."""
    bindir = os.path.dirname(REL_BIN)
    send, sink = os.path.join(bindir, "rwkvd-send"), os.path.join(bindir, "rwkvd-sink")
    text = tiny_text()
    with Work() as work:
        files = []
        for name, data in (("A", text[:1500]), ("B", text[1000:3600])):
            path = os.path.join(work, name + ".txt")
            with open(path, "wb") as f:
                f.write(data)
            files.append((name, path))
        d = Daemon(work, args=ARGS, tag="zmq").start()
        zout = os.path.join(work, "z.jsonl")
        zs = subprocess.Popen([sink, "--emit", d.emit_ep, "--out", zout, "--until-final", "2",
                               "--idle-timeout", "120", "-q"])
        for name, path in files:
            r = subprocess.run([send, path, "--doc", name, "--ingest", d.ingest_ep, "--control",
                                d.control_ep, "--chunk-size", "700", "-q"], timeout=120)
            check(r.returncode == 0, "rwkvd-send over ZeroMQ: status %d" % r.returncode)
        check(zs.wait(120) == 0, "rwkvd-sink over ZeroMQ failed")
        d.stop()
        srv = NatsServer(work).start()
        try:
            w = worker(work, srv.url, "w1", os.path.join(work, "ns"), REL_BIN, 4, 3, ARGS).start()
            nout = os.path.join(work, "n.jsonl")
            base = [sink, "--nats", srv.url, "--durable", "s1", "--out", nout, "-q",
                    "--idle-timeout", "120"]
            for k, (name, path) in enumerate(files):
                r = subprocess.run([send, path, "--doc", name, "--nats", srv.url, "--chunk-size",
                                    "700", "-q"], timeout=120)
                check(r.returncode == 0, "rwkvd-send --nats: status %d" % r.returncode)
                # the sink stops after each document and comes back: its durable
                # consumer resumes after what it acked
                r = subprocess.run(base + ["--until-final", str(k + 1)] +
                                   (["--append"] if k else []), timeout=150)
                check(r.returncode == 0, "rwkvd-sink --nats run %d: status %d" % (k, r.returncode))
            w.stop()
        finally:
            stop_all_servers()

        def lines(path):
            with open(path) as f:
                return sorted(l for l in f if '"type":"block"' in l or '"type":"final"' in l)
        zl, nl = lines(zout), lines(nout)
        check(len(zl) > 10, "only %d outputs over ZeroMQ" % len(zl))
        check(zl == nl, "JSON Lines differ: %d over ZeroMQ, %d over NATS" % (len(zl), len(nl)))
    print("clients: rwkvd-send/rwkvd-sink --nats == ZeroMQ (%d outputs; sink resumed by its "
          "durable consumer)" % len(zl), flush=True)


def python_client():
    """clients/python/rwkvd_nats.py: the same outputs as rwkvd.Client over
    ZeroMQ, its partition() = the server's, its lease table."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                    "clients", "python"))
    import rwkvd
    import rwkvd_nats
    from nats_harness import NATS_TOOL
    check([rwkvd_nats.partition(d, 16) for d in (b"abcd", "doc-1", b"\x00")] == [9, 2, 13],
          "rwkvd_nats.partition: the PROTOCOL.md examples")
    text = tiny_text()
    docs = {"py-a": text[:900], b"py-\xffb": text[500:2000]}
    opts = {"pooling": "mean", "outputs": ["embedding", "surprisal", "topk"], "topk": 3}
    with Work() as work:
        d = Daemon(work, args=ARGS, tag="zmq").start()
        want = {}
        with rwkvd.Client(ingest=d.ingest_ep, emit=d.emit_ep, control=d.control_ep) as c:
            for doc, data in docs.items():
                c.send_document(doc, data, chunk_size=333, opts=opts)
            for out in c.outputs(timeout=120):
                key = (out["doc"], out.get("block", "final"))
                want[key] = out
                if sum(1 for k in want if k[1] == "final") == len(docs):
                    break
        d.stop()
        srv = NatsServer(work).start()
        try:
            w = worker(work, srv.url, "w1", os.path.join(work, "ns"), REL_BIN, 4, 3, ARGS).start()
            nc = rwkvd_nats.NatsClient(srv.url, tool=NATS_TOOL)
            for doc, data in docs.items():
                nc.send_document(doc, data, chunk_size=333, opts=opts)
            got = {(o["doc"], o.get("block", "final")): o
                   for o in nc.outputs("py", until_final=len(docs), idle_timeout=120)}
            held, nw = nc.leases()
            check(nw == 1 and len(held) == 4 and all(v[0] == "w1" for v in held.values()),
                  "leases: %r" % held)
            w.stop()
        finally:
            stop_all_servers()
    check(len(want) > 5 and want.keys() == got.keys(), "keys differ: %r vs %r"
          % (sorted(map(str, want))[:4], sorted(map(str, got))[:4]))
    for k in want:
        check(repr(want[k]) == repr(got[k]), "%r differs between ZeroMQ and NATS" % (k,))
    print("python client over NATS: %d outputs identical to rwkvd.Client over ZeroMQ"
          % len(want), flush=True)


def hostile(binary):
    """The refusal cases of test_daemon_hostile through NATS and through
    ZeroMQ: the same error outputs (reason, doc, seq, message)."""
    import test_daemon_hostile as th
    msgs = [c[1] for c in th.CASES if not isinstance(c[1], tuple)]
    args = th.ARGS
    with Work() as work:
        d = Daemon(work, binary=binary, args=args, tag="zmq").start()
        push, pull = d.push(), d.pull()
        for m in msgs:
            push.send(m)
        push.send(ingest("after", 0, b"x", eof=True))
        zmq_out = []
        while True:
            check(pull.poll(30000), "ZeroMQ daemon: no output")
            o = unpack(pull.recv())
            if o["type"] == "final" and o["doc"] == "after":
                break
            if o.get("doc") != "after":
                zmq_out.append(o)
        push.close(0)
        pull.close(0)
        d.stop()
        srv = NatsServer(work).start()
        try:
            w = worker(work, srv.url, "w1", os.path.join(work, "nstate"), binary, 1, 3,
                       args)
            w.start()
            sink = Sink(work, srv.url, "h").start()
            # no msg ids: many hostile messages repeat (doc "h", seq 0)
            publish(srv.url, msgs + [ingest("after", 0, b"x", eof=True)], partitions=1,
                    msg_ids=False)
            wait_finals(sink, ["after"], 120, workers=[w])
            nats_out = [o for o, _ in sink.outputs() if not (o.get("doc") == "after")]
            w.stop()
            sink.stop()
        finally:
            stop_all_servers()

    def errors(outs):
        return sorted(repr((o.get("reason"), o.get("doc"), o.get("seq"), o.get("message")))
                      for o in outs if o["type"] == "error")
    ez, en = errors(zmq_out), errors(nats_out)
    check(len(ez) >= 40, "only %d refusals through ZeroMQ" % len(ez))
    check(ez == en, "refusals differ: only ZeroMQ %r; only NATS %r"
          % (sorted(set(ez) - set(en))[:3], sorted(set(en) - set(ez))[:3]))
    # everything else (blocks, finals of the valid documents) is identical too
    rz = set(repr(o) for o in zmq_out if o["type"] in ("block", "final"))
    rn = set(repr(o) for o in nats_out if o["type"] in ("block", "final"))
    check(rz == rn, "block/final outputs differ between ZeroMQ and NATS: only ZeroMQ %s; "
          "only NATS %s" % (sorted(rz - rn)[:2], sorted(rn - rz)[:2]))
    print("hostile: %d refusals identical through NATS and ZeroMQ" % len(ez), flush=True)


if __name__ == "__main__":
    run_cases([
        ("partition function = nats-server partition(P,1)", partition_function, "rel"),
        ("3 workers x 200 docs == one ZeroMQ daemon (rel)", lambda: three_workers(REL_BIN, 200),
         "rel"),
        ("3 workers x 40 docs == one ZeroMQ daemon (asan)", lambda: three_workers(ASAN_BIN, 40),
         "asan"),
        ("kill -9 of a worker mid-run, twice", kills, "rel"),
        ("kill -9 of a worker mid-run, twice (asan, 40 docs)", lambda: kills(ASAN_BIN, 40),
         "asan"),
        ("SIGSTOP past the lease, SIGCONT", stop_cont, "rel"),
        ("SIGSTOP past the lease, SIGCONT (asan, 40 docs)", lambda: stop_cont(ASAN_BIN, 40),
         "asan"),
        ("a joining worker gets its share", joining, "rel"),
        ("nats-server restart mid-run", server_restart, "rel"),
        ("3-node cluster, one node killed", node_kill, "rel"),
        ("rwkvd-send/rwkvd-sink --nats", clients, "rel"),
        ("python client over NATS", python_client, "rel"),
        ("hostile input through NATS (rel)", lambda: hostile(REL_BIN), "rel"),
        ("hostile input through NATS (asan)", lambda: hostile(ASAN_BIN), "asan"),
    ])
