#!/usr/bin/python3
"""bench_cluster.py — rwkvd workers on NATS JetStream (make bench).

1. Throughput with 1, 2 and 3 workers (one engine thread each) over the
   same documents, and one ZeroMQ daemon (one thread) on the same model and
   documents: tokens/s from the first message published/pushed to the last
   final output received.  NATS/ZeroMQ at one worker is the overhead of the
   cluster path (target >= 0.9).  On this 2-core machine a third worker
   shares a core with nats-server and the others, so 3 workers cannot beat 2
   here; the figure is printed as measured.  Models: the tiny fixture model
   (834K parameters, byte tokens) and a random model of the RWKV-7 0.1B shape
   (fewer tokens: it runs ~1k tokens/s here).
2. Failover: 2 workers, lease TTL 2 s; a worker is killed (kill -9) 5 times
   (restarted in between); time from the kill to the first of its
   partitions being acquired by the other (their logs).  Median; target
   under TTL + 2 s.
3. Rebalance: one worker holds all 16 partitions; a second starts; time
   until each holds <= 8.
Environment: BENCH_CLUSTER_DOCS (48), BENCH_CLUSTER_BYTES (4096 per doc),
BENCH_CLUSTER_BIG_TOKENS (2048 per 0.1B run, 0 = skip), BENCH_ROUNDS (2).
"""
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "support"))
sys.path.insert(0, os.path.dirname(HERE))
from nats_harness import (NatsServer, Sink, finals, leases, publish, stop_all_servers, worker)
from rwkvd_harness import (REL_BIN, RWKV_CLI, Daemon, Work, check, collect_docs, ingest,
                           tiny_model, tiny_text)

N_DOCS = int(os.environ.get("BENCH_CLUSTER_DOCS", "48"))
DOC_BYTES = int(os.environ.get("BENCH_CLUSTER_BYTES", "4096"))
BIG_TOKENS = int(os.environ.get("BENCH_CLUSTER_BIG_TOKENS", "2048"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
BLOCK = 256
P = 16


def docs_for(n_docs, n_bytes):
    text = tiny_text()
    out = []
    for i in range(n_docs):
        data = (text * (n_bytes // len(text) + 2))[i * 37:i * 37 + n_bytes]
        parts = [data[k:k + 1024] for k in range(0, len(data), 1024)]
        msgs = [ingest("b%03d" % i, k, p, eof=(k == len(parts) - 1)) for k, p in enumerate(parts)]
        out.append(("b%03d" % i, msgs))
    return out


def zmq_run(model, docs, vocab_args):
    with Work() as work:
        d = Daemon(work, model=model, args=["--block-size", str(BLOCK)] + vocab_args,
                   tag="z").start()
        push, pull = d.push(), d.pull()
        t0 = time.time()
        for _, msgs in docs:
            for m in msgs:
                push.send(m)
        collect_docs(pull, [n for n, _ in docs], timeout=3600, daemon=d)
        dt = time.time() - t0
        push.close(0)
        pull.close(0)
        d.stop()
    return dt


def nats_run(model, docs, n_workers, vocab_args):
    with Work() as work:
        srv = NatsServer(work).start()
        try:
            ws = [worker(work, srv.url, "w%d" % i, os.path.join(work, "s"), REL_BIN, P, 10,
                         ["--block-size", str(BLOCK)] + vocab_args) for i in range(n_workers)]
            for w in ws:
                w.model = model
                w.start()
            deadline = time.time() + 60
            while True:  # settled: every partition held, none over its share
                held, nw = leases(srv.url)
                count = {}
                for who, _ in held.values():
                    count[who] = count.get(who, 0) + 1
                if len(held) == P and nw == n_workers and len(count) == n_workers and \
                        max(count.values()) <= -(-P // n_workers):
                    break
                check(time.time() < deadline, "workers did not settle: %r" % count)
                time.sleep(0.1)
            sink = Sink(work, srv.url, "bench").start()
            t0 = time.time()
            publish(srv.url, [m for _, msgs in docs for m in msgs], partitions=P)
            want = {n for n, _ in docs}
            while not want <= finals(sink.outputs()):
                check(time.time() - t0 < 3600, "bench run did not finish")
                time.sleep(0.05)
            dt = time.time() - t0
            for w in ws:
                w.stop()
            sink.stop()
        finally:
            stop_all_servers()
    return dt


def throughput(label, model, docs, n_tokens, vocab_args, worker_counts):
    # rounds alternate between the configurations and the best time of each
    # is kept: this machine is shared, and interference only ever slows down
    best = {}
    for _ in range(ROUNDS):
        t = zmq_run(model, docs, vocab_args)
        best["zmq"] = min(best.get("zmq", t), t)
        for n in worker_counts:
            t = nats_run(model, docs, n, vocab_args)
            best[n] = min(best.get(n, t), t)
    zt = best["zmq"]
    print("%s: %d documents, %d tokens, best of %d rounds" % (label, len(docs), n_tokens, ROUNDS),
          flush=True)
    print("  ZeroMQ, 1 daemon:   %8.0f tokens/s" % (n_tokens / zt), flush=True)
    base = None
    for n in worker_counts:
        t = best[n]
        tps = n_tokens / t
        if n == 1:
            base = tps
        print("  NATS, %d worker%s:    %8.0f tokens/s%s" % (
            n, "s" if n > 1 else " ", tps,
            "  (%.2f of ZeroMQ; target >= 0.9)" % (tps / (n_tokens / zt)) if n == 1 else
            "  (%.2fx one worker)" % (tps / base)), flush=True)


def failover():
    times = []
    with Work() as work:
        srv = NatsServer(work).start()
        try:
            ws = [worker(work, srv.url, "w%d" % i, os.path.join(work, "s"), REL_BIN, P, 2,
                         ["--block-size", str(BLOCK)]) for i in range(2)]
            for w in ws:
                w.start()
            for k in range(5):
                deadline = time.time() + 30
                while True:
                    held, _ = leases(srv.url)
                    mine = [p for p, (who, _) in held.items() if who == "w0"]
                    if len(held) == P and mine and len(mine) < P:
                        break
                    check(time.time() < deadline, "no balance before kill %d" % k)
                    time.sleep(0.1)
                keys = ["partition %d acquired (" % p for p in mine]
                before = ws[1].log_text().count("acquired (")
                t_kill = time.time()
                ws[0].kill9()
                while True:
                    lines = ws[1].log_text().splitlines()
                    got = [l for l in lines if any(key in l for key in keys)]
                    if ws[1].log_text().count("acquired (") > before and got:
                        times.append(time.time() - t_kill)
                        break
                    check(time.time() - t_kill < 30, "no failover after kill %d" % k)
                    time.sleep(0.01)
                ws[0].start()
            for w in ws:
                w.stop()
        finally:
            stop_all_servers()
    print("failover (kill -9 -> a partition of the victim acquired), lease TTL 2 s: median "
          "%.2f s over 5 kills (%s); target < 4 s" % (statistics.median(times),
                                                      ", ".join("%.2f" % t for t in times)),
          flush=True)


def rebalance():
    with Work() as work:
        srv = NatsServer(work).start()
        try:
            ws = [worker(work, srv.url, "w%d" % i, os.path.join(work, "s"), REL_BIN, P, 3,
                         ["--block-size", str(BLOCK)]) for i in range(2)]
            ws[0].start()
            while len(leases(srv.url)[0]) < P:
                time.sleep(0.05)
            t0 = time.time()
            ws[1].start()
            while True:
                held, _ = leases(srv.url)
                count = {}
                for who, _ in held.values():
                    count[who] = count.get(who, 0) + 1
                if len(held) == P and len(count) == 2 and max(count.values()) <= P // 2:
                    break
                check(time.time() - t0 < 60, "no rebalance in 60 s")
                time.sleep(0.02)
            print("rebalance: a second worker joined one holding %d partitions; %s each after "
                  "%.2f s (start of the process included; lease TTL 3 s)"
                  % (P, sorted(count.values()), time.time() - t0), flush=True)
            for w in ws:
                w.stop()
        finally:
            stop_all_servers()


def main():
    docs = docs_for(N_DOCS, DOC_BYTES)
    n_tok = N_DOCS * DOC_BYTES  # byte tokens
    throughput("tiny fixture model (834K)", tiny_model(), docs, n_tok, [], [1, 2, 3])
    if BIG_TOKENS > 0:
        with Work() as work:
            big = os.path.join(work, "big.safetensors")
            subprocess.run([RWKV_CLI, "mkmodel", "--shape", "L12-D768-H64-V65536", "--seed", "1",
                            "--dtype", "bf16", "-q", big], check=True)
            bdocs = docs_for(4, BIG_TOKENS // 4)
            throughput("random 0.1B-shaped model (L12-D768, byte input)", big, bdocs,
                       BIG_TOKENS, ["--vocab", "bytes"], [1, 2])
    failover()
    rebalance()


if __name__ == "__main__":
    main()
