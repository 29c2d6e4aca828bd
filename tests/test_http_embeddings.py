#!/usr/bin/python3
"""test_http_embeddings.py — POST /v1/embeddings (daemon/http_embeddings.h)
with a real HTTP client (urllib) against a running rwkvd serving the
EmbeddingRWKV fixture model (../shared/fixtures/embedding-rwkv):

- the fixture texts (one request of six strings, and one at a time) give the
  fixture embeddings within the manifest's bounds with "normalize": false,
  the unit-length ones by default; token arrays (the fixtures' tokens.i32,
  with and without their EOS) and base64 give the same; `model` is echoed,
  usage.prompt_tokens counts the ids with EOS;
- malformed requests get OpenAI-style error objects and the right status:
  bad JSON, wrong types, unknown fields, token ids out of range, an input
  over --http-max-tokens (pointing to the streaming path), a body over
  --http-max-body (413), GET (405), another path (404);
- 16 concurrent clients while a long document streams through ZeroMQ: every
  HTTP answer right, and the streamed document's final right too;
- off unless configured (no port listening), and a language model with
  --http-port is refused at start.
"""
import array
import base64
import json
import os
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "support"))
from rwkvd_harness import (ASAN_BIN, RWKV_CLI, Daemon, TestFailure, Work, check, collect_docs,
                           fixture_bytes, fixture_path, free_tcp_port, pack, run_cases,
                           tiny_model)

FIX = "embedding-rwkv"
MODEL = FIX + "/embedding-rwkv7-L4-D64-random.pth"
VOCAB = "tokenizer/rwkv_vocab_v20230424.txt"
EMB = {"retrieval": "emb_retr", "similarity": "emb_sts", "classification": "emb_cls"}
with open(fixture_path(FIX + "/manifest.json")) as _f:
    MAN = json.load(_f)
TEXTS = [i for i in MAN["inputs"] if i.get("text_file")]
MAX_TOKENS = 5000


def bound(inp, fname):
    for e in inp["files"]:
        if e["file"] == "%s/%s.f32" % (inp["name"], fname):
            return e["tolerance"]["max"] * e["tolerance"]["reference_std"]
    raise TestFailure("no bound for %s" % fname)


def ref(inp, task):
    a = array.array("f")
    a.frombytes(fixture_bytes("%s/%s/%s.f32" % (FIX, inp["name"], EMB[task])))
    return a


def start(w, binary=None, extra=(), model=None):
    port = free_tcp_port()
    args = ["--vocab", fixture_path(VOCAB), "--block-size", "64", "--http-port", str(port),
            "--http-max-tokens", str(MAX_TOKENS), "--http-max-body", "256K"] + list(extra)
    d = Daemon(w, model=model or fixture_path(MODEL), binary=binary, args=args,
               tag="h").start()
    return d, "http://127.0.0.1:%d" % port


def post(url, body, path="/v1/embeddings", method="POST", raw=False):
    data = body if raw else json.dumps(body).encode()
    req = urllib.request.Request(url + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def check_close(got, inp, task, what, unit=False):
    r = ref(inp, task)
    b = bound(inp, EMB[task])
    if unit:
        n = sum(x * x for x in r) ** 0.5
        r = [x / n for x in r]
        b = b / n
    d = max(abs(x - y) for x, y in zip(got, r))
    check(len(got) == len(r) and d <= b, "%s: differs by %.3g (bound %.3g)" % (what, d, b))


def case_fixture_embeddings():
    with Work() as w:
        d, url = start(w)
        texts = [fixture_bytes("%s/%s" % (FIX, i["text_file"])).decode() for i in TEXTS]
        st, r = post(url, {"input": texts, "model": "emb-test", "normalize": False,
                           "task": "similarity"})
        check(st == 200, "batch: %s %r" % (st, r))
        check(r["object"] == "list" and r["model"] == "emb-test" and len(r["data"]) == 6,
              "shape: %r" % {k: r[k] for k in ("object", "model")})
        # rwkvd's extension beside model: the arithmetic (PROTOCOL.md §8.1)
        check(r.get("precision") == "fp32", "precision %r" % r.get("precision"))
        check(r["usage"]["prompt_tokens"] == sum(i["T"] for i in TEXTS) ==
              r["usage"]["total_tokens"], "usage %r" % r["usage"])
        for i, (inp, item) in enumerate(zip(TEXTS, r["data"])):
            check(item["index"] == i and item["object"] == "embedding", "item %d" % i)
            check_close(item["embedding"], inp, "similarity", inp["name"])
        # one at a time, default task and normalization, base64
        for inp, t in zip(TEXTS, texts):
            st, r = post(url, {"input": t, "encoding_format": "base64"})
            check(st == 200, "%s: %s %r" % (inp["name"], st, r))
            v = array.array("f")
            v.frombytes(base64.b64decode(r["data"][0]["embedding"]))
            check_close(v, inp, "retrieval", inp["name"] + " base64", unit=True)
        # token arrays: as given when they end with EOS, EOS appended otherwise
        for inp in MAN["inputs"]:
            ids = list(array.array("i", fixture_bytes("%s/%s/tokens.i32" % (FIX, inp["name"]))))
            st, r = post(url, {"input": [ids, ids[:-1]] if inp["n_eos"] == 1 else [ids],
                               "task": "classification", "normalize": False,
                               "dimensions": 64})
            check(st == 200, "%s tokens: %s %r" % (inp["name"], st, r))
            for item in r["data"]:
                check_close(item["embedding"], inp, "classification", inp["name"] + " tokens")
        st, r = post(url, {"input": list(array.array("i", fixture_bytes(
            "%s/en_short_1/tokens.i32" % FIX)))})
        check(st == 200 and len(r["data"]) == 1, "one flat token array: %s %r" % (st, r))
        d.stop()


def case_errors():
    with Work() as w:
        d, url = start(w)

        def bad(body, status, param=None, needle=None, **kw):
            st, r = post(url, body, **kw)
            err = r.get("error") if isinstance(r, dict) else None
            check(st == status and err and err.get("type") and err.get("message"),
                  "%r: %s %r" % (body if not kw.get("raw") else body[:40], st, r))
            check(param is None or err.get("param") == param, "param %r" % err)
            check(needle is None or needle in err["message"], "message %r" % err["message"])

        bad(b"{not json", 400, raw=True, needle="not valid JSON")
        bad(b"[1, 2]", 400, raw=True, needle="JSON object")
        bad({}, 400, "input")
        bad({"input": 5}, 400, "input")
        bad({"input": []}, 400, "input")
        bad({"input": ["a", 5]}, 400, "input")
        bad({"input": [[1, 2], "a"]}, 400, "input")
        bad({"input": [1, -2]}, 400, "input")
        bad({"input": [1, 65536]}, 400, "input")
        bad({"input": [1.5]}, 400, "input")
        bad({"input": "a", "encoding_format": "hex"}, 400, "encoding_format")
        bad({"input": "a", "dimensions": 32}, 400, "dimensions")
        bad({"input": "a", "task": "ranking"}, 400, "task")
        bad({"input": "a", "normalize": "yes"}, 400, "normalize")
        bad({"input": "a", "model": 3}, 400, "model")
        bad({"input": "a", "temperature": 1}, 400, "temperature")
        bad({"input": "word " * (MAX_TOKENS + 10)}, 400, "input", needle="ZeroMQ ingest")
        bad({"input": "x" * (300 * 1024)}, 413, needle="--http-max-body")
        bad({"input": "a"}, 404, path="/v1/other")
        bad({"input": "a"}, 405, method="PUT")
        req = urllib.request.Request(url + "/v1/embeddings", method="GET")
        try:
            urllib.request.urlopen(req, timeout=10)
            raise TestFailure("GET answered 200")
        except urllib.error.HTTPError as e:
            check(e.code == 405 and "error" in json.loads(e.read()), "GET: %s" % e.code)
        # still serving after all that
        st, r = post(url, {"input": "still alive"})
        check(st == 200, "after errors: %s %r" % (st, r))
        d.stop()


def case_concurrent_with_stream():
    long_doc = [i for i in MAN["inputs"] if i["name"] == "long_doc"][0]
    text = fixture_bytes("%s/%s" % (FIX, long_doc["text_file"]))
    with Work() as w:
        d, url = start(w)
        push, pull = d.push(), d.emit_pull()
        chunk = 1000
        parts = [text[i:i + chunk] for i in range(0, len(text), chunk)]
        for k, p in enumerate(parts):
            m = {"v": 2, "doc": "long", "seq": k, "bytes": p}
            if k == 0:
                m["opts"] = {"task": "retrieval", "normalize": False}
            if k == len(parts) - 1:
                m["eof"] = True
            push.send(pack(m))
        errors = []
        texts = [fixture_bytes("%s/%s" % (FIX, i["text_file"])).decode() for i in TEXTS]

        def client(n):
            try:
                for rep in range(3):
                    k = (n + rep) % len(TEXTS)
                    st, r = post(url, {"input": [texts[k], texts[(k + 1) % 6]],
                                       "normalize": False})
                    check(st == 200, "client %d: %s %r" % (n, st, r))
                    check_close(r["data"][0]["embedding"], TEXTS[k], "retrieval", "client")
                    check_close(r["data"][1]["embedding"], TEXTS[(k + 1) % 6], "retrieval",
                                "client")
            except Exception as e:  # reported below
                errors.append("%s: %s" % (type(e).__name__, e))

        threads = [threading.Thread(target=client, args=(n,)) for n in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        check(not errors, "concurrent clients: %s" % errors[:3])
        res = collect_docs(pull, ["long"], timeout=120, daemon=d)["long"]
        e = array.array("f")
        e.frombytes(res["final"]["embedding"])
        check_close(e, long_doc, "retrieval", "streamed long_doc")
        push.close(0)
        d.stop()


def check_precision_served(url, precision, min_cos):
    """The first fixture text's embedding: the response names `precision`
    and the row is within `min_cos` of the fp32 reference."""
    inp = TEXTS[0]
    st, r = post(url, {"input": fixture_bytes("%s/%s" % (FIX, inp["text_file"])).decode(),
                       "normalize": False})
    check(st == 200 and r.get("precision") == precision,
          "%s: %s %r" % (precision, st, r.get("precision")))
    got, want = r["data"][0]["embedding"], ref(inp, "retrieval")
    dot = sum(x * y for x, y in zip(got, want))
    cos = dot / (sum(x * x for x in got) ** 0.5 * sum(y * y for y in want) ** 0.5)
    check(cos >= min_cos, "%s embedding cosine %.6f against the fp32 reference" % (precision, cos))


def case_precision_named():
    """/v1/embeddings computes in the daemon's --precision and says which."""
    with open("/proc/cpuinfo") as f:
        if " avx512_bf16" not in f.read():
            print("SKIP: /v1/embeddings in bf16: this CPU has no avx512_bf16", flush=True)
            return
    with Work() as w:
        d, url = start(w, extra=["--precision", "bf16"])
        check_precision_served(url, "bf16", 0.999)
        d.stop()


def case_int8_file_served():
    """An `rwkv quantize` int8 file of the EmbeddingRWKV model is served by a
    daemon at --precision auto (which picks int8 for such a file), names
    int8, and stays within the int8 cosine bound of the fp32 reference."""
    with open("/proc/cpuinfo") as f:
        flags = f.read()
    if " avx512_bf16" not in flags or " avx512_vnni" not in flags:
        print("SKIP: /v1/embeddings in int8: this CPU lacks avx512_bf16 or avx512_vnni",
              flush=True)
        return
    with Work() as w:
        q = os.path.join(w, "model-int8.safetensors")
        r = subprocess.run([RWKV_CLI, "quantize", "--precision", "int8", "-q",
                            fixture_path(MODEL), q], capture_output=True, text=True)
        check(r.returncode == 0, "rwkv quantize: %s" % r.stderr)
        d, url = start(w, extra=["--precision", "auto"], model=q)
        check_precision_served(url, "int8", 0.995)
        d.stop()


def case_off_unless_configured_and_lm_refused():
    with Work() as w:
        port = free_tcp_port()
        d = Daemon(w, model=fixture_path(MODEL), args=["--vocab", fixture_path(VOCAB)],
                   tag="off").start()
        s = socket.socket()
        try:
            s.settimeout(2)
            refused = s.connect_ex(("127.0.0.1", port)) != 0
        finally:
            s.close()
        check(refused, "something listens on a port nobody configured")
        d.stop()
        try:
            Daemon(w, model=tiny_model(), args=["--http-port", str(port)], tag="lm").start()
            raise TestFailure("a language model started with --http-port")
        except TestFailure as e:
            check("EmbeddingRWKV" in str(e), "lm refusal: %s" % e)


def case_asan():
    with Work() as w:
        d, url = start(w, binary=ASAN_BIN)
        texts = [fixture_bytes("%s/%s" % (FIX, i["text_file"])).decode() for i in TEXTS[:3]]
        st, r = post(url, {"input": texts, "normalize": False, "encoding_format": "base64"})
        check(st == 200, "asan: %s %r" % (st, r))
        for inp, item in zip(TEXTS, r["data"]):
            v = array.array("f")
            v.frombytes(base64.b64decode(item["embedding"]))
            check_close(v, inp, "retrieval", inp["name"])
        for body in (b"{", b'{"input": [[1, 2], "x"]}', b'{"input": "a", "x": 1}'):
            st, r = post(url, body, raw=True)
            check(st == 400 and "error" in r, "asan bad body %r: %s" % (body, st))
        st, r = post(url, {"input": "x" * (300 * 1024)})
        check(st == 413, "asan 413: %s" % st)
        d.stop()


if __name__ == "__main__":
    run_cases([
        ("fixture_embeddings", case_fixture_embeddings),
        ("errors", case_errors),
        ("concurrent_with_stream", case_concurrent_with_stream),
        ("precision_named", case_precision_named),
        ("int8_file_served", case_int8_file_served),
        ("off_unless_configured_and_lm_refused", case_off_unless_configured_and_lm_refused),
        ("asan", case_asan, "asan"),
    ])
