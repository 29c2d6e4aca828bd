#!/usr/bin/python3
"""bench_embeddings.py — POST /v1/embeddings against the engine (make bench).

Model: a random EmbeddingRWKV of BENCH_EMBED_SHAPE (default the 0.1B shape
L12-D768-H64-V65536): `rwkv mkmodel` writes the RWKV-7 body, which is
renamed under "rwkv.", its LM head dropped and three random task heads
added (the EmbeddingRWKV checkpoint layout).  Inputs: BENCH_EMBED_TEXTS
(default 256) short texts of 16-64 World tokens cut from the GPL-3 fixture.

1. Throughput: the texts over HTTP from 16 concurrent clients, 16 texts per
   request (the daemon's worker batches across requests), as tokens/s and
   embeddings/s, against the engine's raw tokens/s on the same ids
   (`rwkv embed --ids-in` of them all as one sequence, blocks of 512: the
   engine's best case).  Target: HTTP >= 0.8 of the engine.
2. Latency of one-text requests at 1 and at 16 concurrent clients: p50, p99.

Both run with BENCH_THREADS engine threads (default one per CPU), the same
for engine and daemon; the engine figure is the best of BENCH_ROUNDS (3).
"""
import json
import os
import random
import re
import struct
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "support"))
from rwkvd_harness import (RWKV_CLI, Daemon, Work, check, fixture_bytes, fixture_path,
                           free_tcp_port)

SHAPE = os.environ.get("BENCH_EMBED_SHAPE", "L12-D768-H64-V65536")
N_TEXTS = int(os.environ.get("BENCH_EMBED_TEXTS", "256"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
THREADS = int(os.environ.get("BENCH_THREADS", "0")) or os.cpu_count()
VOCAB = "tokenizer/rwkv_vocab_v20230424.txt"
CLIENTS = 16
PER_REQUEST = 16


def make_embedding_model(work):
    """An EmbeddingRWKV safetensors from a random RWKV-7 of SHAPE."""
    body = os.path.join(work, "body.safetensors")
    subprocess.run([RWKV_CLI, "mkmodel", "--shape", SHAPE, "--seed", "1", "--dtype", "bf16",
                    "-q", body], check=True)
    with open(body, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n))
        base = 8 + n
        hdr.pop("__metadata__", None)
        C = hdr["emb.weight"]["shape"][1]
        rng = random.Random(1)
        out_hdr, parts, off = {}, [], 0
        for k, v in sorted(hdr.items(), key=lambda kv: kv[1]["data_offsets"][0]):
            if k == "head.weight":
                continue
            s, e = v["data_offsets"]
            out_hdr["rwkv." + k] = {"dtype": v["dtype"], "shape": v["shape"],
                                    "data_offsets": [off, off + e - s]}
            parts.append(("file", base + s, e - s))
            off += e - s
        for h in ("cls", "sts", "retr"):
            for name, shape in (("fc1.weight", [C, C]), ("fc2.weight", [C, C]),
                                ("norm.weight", [C]), ("norm.bias", [C])):
                cnt = shape[0] * (shape[1] if len(shape) > 1 else 1)
                if name == "norm.weight":
                    vals = [1.0] * cnt
                elif name == "norm.bias":
                    vals = [0.0] * cnt
                else:
                    sd = (1.0 / C) ** 0.5
                    vals = [rng.gauss(0, sd) for _ in range(cnt)]
                raw = struct.pack("<%df" % cnt, *vals)
                out_hdr["head.%s_head.%s" % (h, name)] = {"dtype": "F32", "shape": shape,
                                                          "data_offsets": [off, off + len(raw)]}
                parts.append(("bytes", raw))
                off += len(raw)
        j = json.dumps(out_hdr, separators=(",", ":")).encode()
        j += b" " * ((8 - len(j) % 8) % 8)
        path = os.path.join(work, "embedding.safetensors")
        with open(path, "wb") as o:
            o.write(struct.pack("<Q", len(j)) + j)
            for p in parts:
                if p[0] == "bytes":
                    o.write(p[1])
                else:
                    f.seek(p[1])
                    left = p[2]
                    while left:
                        b = f.read(min(left, 1 << 24))
                        o.write(b)
                        left -= len(b)
    os.unlink(body)
    return path


def short_texts(work):
    """N_TEXTS texts of 16-64 tokens (EOS excluded), with their ids."""
    src = fixture_bytes("embedding-rwkv/inputs/long_doc.txt").decode()
    words = src.split()
    rng = random.Random(3)
    texts = []
    for _ in range(N_TEXTS):
        k = rng.randrange(0, len(words) - 60)
        texts.append(" ".join(words[k:k + rng.randrange(10, 40)]))
    ids = []
    vocab = fixture_path(VOCAB)
    for t in texts:
        r = subprocess.run([RWKV_CLI, "tokenize", "--vocab", vocab, "-"], input=t.encode(),
                           capture_output=True, check=True)
        ids.append([int(x) for x in r.stdout.split()])
    keep = [(t, i) for t, i in zip(texts, ids) if 16 <= len(i) <= 64]
    check(len(keep) >= N_TEXTS // 2, "only %d texts of 16..64 tokens" % len(keep))
    return [k[0] for k in keep], [k[1] for k in keep]


def engine_tokens_per_s(work, model, ids):
    path = os.path.join(work, "all.i32")
    flat = [t for seq in ids for t in seq + [65535]]
    with open(path, "wb") as f:
        f.write(struct.pack("<%di" % len(flat), *flat))
    best = 0.0
    for _ in range(ROUNDS):
        r = subprocess.run([RWKV_CLI, "embed", "--model", model, "--ids-in", path, "-b", "512",
                            "-t", str(THREADS), "--out-embedding", os.path.join(work, "e.f32")],
                           capture_output=True, text=True, check=True)
        m = re.search(r"(\d+) tokens, ([0-9.]+) s", r.stderr)
        check(m and int(m.group(1)) == len(flat), "rwkv embed said %r" % r.stderr)
        best = max(best, int(m.group(1)) / float(m.group(2)))
    return best, len(flat)


def post(url, texts):
    req = urllib.request.Request(url, data=json.dumps({"input": texts}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        out = json.loads(r.read())
    check(len(out["data"]) == len(texts), "answer %r" % {k: out[k] for k in out if k != "data"})
    return out["usage"]["prompt_tokens"]


def run_clients(n_clients, jobs, fn):
    """jobs: a list consumed by n_clients threads; fn(job) -> value."""
    lock = threading.Lock()
    results, errors = [], []
    it = iter(jobs)

    def worker():
        while True:
            with lock:
                job = next(it, None)
            if job is None:
                return
            try:
                v = fn(job)
            except Exception as e:  # reported by the caller
                errors.append(repr(e))
                return
            with lock:
                results.append(v)

    ts = [threading.Thread(target=worker) for _ in range(n_clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    check(not errors, "clients failed: %s" % errors[:3])
    return results


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def main():
    with Work() as w:
        t0 = time.time()
        model = make_embedding_model(w)
        texts, ids = short_texts(w)
        print("model: random EmbeddingRWKV %s (made in %.0f s); %d texts of 16-64 tokens "
              "(mean %.1f); %d threads" % (SHAPE, time.time() - t0, len(texts),
                                           sum(map(len, ids)) / float(len(ids)), THREADS))
        eng, n_tok = engine_tokens_per_s(w, model, ids)
        port = free_tcp_port()
        d = Daemon(w, model=model, threads=THREADS, tag="bench", args=[
            "--vocab", fixture_path(VOCAB), "--http-port", str(port)]).start()
        url = "http://127.0.0.1:%d/v1/embeddings" % port
        post(url, texts[:4])  # warm-up
        batches = [texts[i:i + PER_REQUEST] for i in range(0, len(texts), PER_REQUEST)]
        best = None
        for _ in range(ROUNDS):
            t = time.time()
            toks = sum(run_clients(CLIENTS, batches, lambda b: post(url, b)))
            secs = time.time() - t
            if best is None or toks / secs > best[0]:
                best = (toks / secs, len(texts) / secs)
        check(toks == n_tok, "HTTP counted %d tokens, the engine ran %d" % (toks, n_tok))
        print("throughput: engine %.0f tokens/s; HTTP (%d clients, %d texts/request) %.0f "
              "tokens/s = %.1f embeddings/s; ratio %.2f (target >= 0.80)"
              % (eng, CLIENTS, PER_REQUEST, best[0], best[1], best[0] / eng))

        def timed(text):
            t = time.time()
            post(url, [text])
            return time.time() - t

        for n_clients in (1, 16):
            jobs = [texts[i % len(texts)] for i in range(max(64, 8 * n_clients))]
            lat = run_clients(n_clients, jobs, timed)
            print("latency, one text per request, %2d clients: p50 %.1f ms, p99 %.1f ms "
                  "(%d requests)" % (n_clients, 1000 * pct(lat, 50), 1000 * pct(lat, 99),
                                     len(lat)))
        d.stop()


if __name__ == "__main__":
    main()
