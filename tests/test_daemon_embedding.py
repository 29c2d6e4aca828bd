#!/usr/bin/python3
"""test_daemon_embedding.py — rwkvd serving an EmbeddingRWKV model
(PROTOCOL.md v2: opts.task, pooling "eos"), against the golden set
../shared/fixtures/embedding-rwkv with the manifest's bounds:

- every text input, sent as bytes split at random places, in three block
  sizes and all three tasks: the final embedding (normalize false) is the
  fixture's, `tokens` counts the appended EOS, outputs say v 2; a block
  carries the running embedding only once the document has had an EOS, the
  last block's equals the final's;
- the multi-EOS inputs sent as token ids (taken as given: no EOS added);
- v 1 producers: defaults (retrieval, normalize true) give the unit-length
  fixture embedding; a v 1 message naming `task` is refused (unknown_field);
- a token document without EOS: final with embedding nil and a clear
  embedding_error (never NaN);
- refusals: outputs other than embedding, an unknown task, a task on a
  language model (bad_opts);
- opts.eos_every 128 over long_doc (text, and ids) gives multi_eos_every128;
- kill -9 in the middle of long_doc with eos_every 128 (checkpoint every
  block), restart, resume, resend from next_seq: every output byte-identical
  to an uninterrupted run, and the final within the bound.
"""
import array
import math
import os
import random
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "support"))
from rwkvd_harness import (ASAN_BIN, REL_BIN, Daemon, TestFailure, Work, check, collect_docs,
                           fixture_bytes, fixture_path, pack, random_split, recv_until,
                           run_cases, tiny_model, unpack)

FIX = "embedding-rwkv"
MODEL = FIX + "/embedding-rwkv7-L4-D64-random.pth"
VOCAB = "tokenizer/rwkv_vocab_v20230424.txt"
TASKS = ("retrieval", "similarity", "classification")
EMB_FILE = {"retrieval": "emb_retr", "similarity": "emb_sts", "classification": "emb_cls"}
EOS = 65535


def manifest():
    import json
    with open(fixture_path(FIX + "/manifest.json")) as f:
        return json.load(f)


MAN = manifest()


def bound(inp, fname):
    for e in inp["files"]:
        if e["file"] == "%s/%s.f32" % (inp["name"], fname):
            t = e["tolerance"]
            return t["max"] * t["reference_std"]
    raise TestFailure("manifest: no bound for %s/%s" % (inp["name"], fname))


def f32file(rel):
    a = array.array("f")
    a.frombytes(fixture_bytes(rel))
    return a


def f32(b):
    a = array.array("f")
    a.frombytes(b)
    return a


def max_diff(a, b):
    check(len(a) == len(b), "lengths %d and %d" % (len(a), len(b)))
    return max(abs(x - y) for x, y in zip(a, b))


def msg(doc, seq, v=2, eof=False, opts=None, **payload):
    m = {"v": v, "doc": doc, "seq": seq}
    m.update(payload)
    if eof:
        m["eof"] = True
    if opts is not None:
        m["opts"] = opts
    return pack(m)


def send_parts(push, doc, parts, kind, opts, v=2, start=0):
    for i, p in enumerate(parts):
        seq = start + i
        push.send(msg(doc, seq, v=v, eof=(i == len(parts) - 1), opts=opts if seq == 0 else None,
                      **{kind: p}))


def daemon(w, block, tag, binary=None, extra=()):
    """A daemon on the EmbeddingRWKV model with a state directory of its own."""
    args = ["--vocab", fixture_path(VOCAB), "--block-size", str(block), "--linger-ms", "20"]
    return Daemon(w, state_dir=os.path.join(w, "state-" + tag), model=fixture_path(MODEL),
                  binary=binary, args=args + list(extra), tag=tag).start()


def check_final(inp, res, task, what):
    f = res["final"]
    check(f["v"] == 2 and f["pooling"] == "eos", "%s: final %r" % (what, {k: f[k] for k in ("v", "pooling")}))
    check(f["tokens"] == inp["T"], "%s: %d tokens, fixture %d" % (what, f["tokens"], inp["T"]))
    check(f.get("embedding") is not None, "%s: no embedding: %r" % (what, f.get("embedding_error")))
    ref = f32file("%s/%s/%s.f32" % (FIX, inp["name"], EMB_FILE[task]))
    d, b = max_diff(f32(f["embedding"]), ref), bound(inp, EMB_FILE[task])
    check(d <= b, "%s: embedding differs by %.3g (bound %.3g)" % (what, d, b))
    # blocks: no embedding before the first EOS, the last one's = the final's
    blocks = [res["blocks"][k] for k in sorted(res["blocks"])]
    check(len(blocks) == f["blocks"] and blocks, "%s: %d blocks, final says %d"
          % (what, len(blocks), f["blocks"]))
    eos_pos = list(array.array("i", fixture_bytes("%s/%s/eos_positions.i32" % (FIX, inp["name"]))))
    for bl in blocks:
        seen_eos = eos_pos[0] < bl["tok_end"]
        check(("embedding" in bl) == seen_eos, "%s: block %d embedding presence %r, EOS seen %r"
              % (what, bl["block"], "embedding" in bl, seen_eos))
        check(bl["v"] == 2, "%s: block v %r" % (what, bl["v"]))
    check(blocks[-1]["embedding"] == f["embedding"], "%s: last block != final" % what)
    return d / b


def case_text_inputs_random_splits():
    rng = random.Random(11)
    texts = [i for i in MAN["inputs"] if i.get("text_file")]
    check(len(texts) == 6, "%d text inputs" % len(texts))
    worst = 0.0
    with Work() as w:
        for bi, block in enumerate((7, 64, 512)):
            d = daemon(w, block, "b%d" % block)
            push, pull = d.push(), d.emit_pull()
            docs = []
            for inp in texts:
                data = fixture_bytes("%s/%s" % (FIX, inp["text_file"]))
                task = TASKS[(bi + len(docs)) % 3]
                doc = "%s-%d-%s" % (inp["name"], block, task)
                parts = random_split(data, rng, rng.randrange(0, 8))
                send_parts(push, doc, parts, "bytes", {"task": task, "normalize": False})
                docs.append((doc, inp, task))
            names = [x[0] for x in docs]
            res = collect_docs(pull, names, daemon=d)
            for doc, inp, task in docs:
                worst = max(worst, check_final(inp, res[doc], task, doc))
            push.close(0)
            d.stop()
    print("  text inputs: worst |d|/bound %.3g" % worst)


def case_token_inputs_as_given():
    rng = random.Random(5)
    with Work() as w:
        d = daemon(w, 100, "tok")
        push, pull = d.push(), d.emit_pull()
        docs = []
        for inp in MAN["inputs"]:
            ids = fixture_bytes("%s/%s/tokens.i32" % (FIX, inp["name"]))
            n = len(ids) // 4
            cuts = sorted(set(rng.randrange(0, n + 1) for _ in range(rng.randrange(0, 6))))
            parts, prev = [], 0
            for c in cuts + [n]:
                parts.append(ids[4 * prev:4 * c])
                prev = c
            task = "similarity"
            doc = "ids-" + inp["name"]
            send_parts(push, doc, parts, "tokens", {"task": task, "normalize": False})
            docs.append((doc, inp, task))
        res = collect_docs(pull, [x[0] for x in docs], daemon=d)
        for doc, inp, task in docs:
            check_final(inp, res[doc], task, doc)
        push.close(0)
        d.stop()


def case_eos_every():
    """opts.eos_every 128: long_doc as text, and as ids ending with their EOS
    (the input's EOS restarts the count), give multi_eos_every128."""
    inp = [i for i in MAN["inputs"] if i["name"] == "multi_eos_every128"][0]
    src = [i for i in MAN["inputs"] if i["name"] == "long_doc"][0]
    rng = random.Random(9)
    text = fixture_bytes("%s/%s" % (FIX, src["text_file"]))
    ids = fixture_bytes("%s/long_doc/tokens.i32" % FIX)
    opts = {"task": "retrieval", "normalize": False, "eos_every": 128}
    with Work() as w:
        for block in (100, 128, 333):
            d = daemon(w, block, "e%d" % block)
            push, pull = d.push(), d.emit_pull()
            send_parts(push, "text", random_split(text, rng, 5), "bytes", opts)
            cut = 4 * rng.randrange(1, len(ids) // 4)
            send_parts(push, "ids", [ids[:cut], ids[cut:]], "tokens", opts)
            res = collect_docs(pull, ["text", "ids"], daemon=d)
            check_final(inp, res["text"], "retrieval", "text, block %d" % block)
            check_final(inp, res["ids"], "retrieval", "ids, block %d" % block)
            push.close(0)
            d.stop()


def case_v1_defaults_and_refusals():
    inp = [i for i in MAN["inputs"] if i["name"] == "paragraph"][0]
    with Work() as w:
        d = daemon(w, 64, "v1")
        push, pull = d.push(), d.emit_pull()
        text = fixture_bytes("%s/%s" % (FIX, inp["text_file"]))
        push.send(msg("v1doc", 0, v=1, eof=True, bytes=text))
        res = collect_docs(pull, ["v1doc"], daemon=d)["v1doc"]
        f = res["final"]
        check(f["v"] == 2 and f["normalize"] is True, "v1 defaults: %r" % f)
        e = f32(f["embedding"])
        ref = f32file("%s/paragraph/emb_retr.f32" % FIX)
        nr = math.sqrt(sum(x * x for x in ref))
        d_unit = max(abs(x - y / nr) for x, y in zip(e, ref))
        check(abs(sum(x * x for x in e) - 1) < 1e-5 and d_unit <= bound(inp, "emb_retr") / nr,
              "v1 default embedding is not the unit fixture (%.3g)" % d_unit)

        def refused(raw, reason, what):
            push.send(raw)
            out = recv_until(pull, lambda o: o["type"] == "error", daemon=d)[-1]
            check(out["reason"] == reason, "%s: %r" % (what, out))
            return out

        refused(msg("r1", 0, v=1, bytes=b"x", opts={"task": "retrieval"}), "unknown_field",
                "v1 with task")
        refused(msg("r2", 0, bytes=b"x", opts={"outputs": ["surprisal"]}), "bad_opts",
                "surprisal from a model without LM head")
        refused(msg("r3", 0, bytes=b"x", opts={"task": "ranking"}), "bad_opts", "unknown task")
        refused(msg("r4", 0, bytes=b"x", opts={"task": 3}), "wrong_type", "task not a str")
        refused(msg("r5", 0, v=3, bytes=b"x"), "bad_version", "v 3")
        refused(msg("r6", 0, bytes=b"x", opts={"eos_every": 0}), "bad_opts", "eos_every 0")
        refused(msg("r7", 0, v=1, bytes=b"x", opts={"eos_every": 8}), "unknown_field",
                "v1 with eos_every")
        # token ids without EOS: a final with a reason, no NaN
        push.send(msg("noeos", 0, eof=True, tokens=[1, 2, 3], opts={"normalize": False}))
        res = collect_docs(pull, ["noeos"], daemon=d)["noeos"]
        f = res["final"]
        check(f["embedding"] is None and "no EOS token" in f.get("embedding_error", ""),
              "no-EOS final: %r" % f)
        check(f["tokens"] == 3, "no-EOS final tokens %r" % f["tokens"])
        push.close(0)
        d.stop()
        # a language model refuses a task
        lm = Daemon(w, model=tiny_model(), args=["--block-size", "64"], tag="lm").start()
        push, pull = lm.push(), lm.emit_pull()
        push.send(msg("lmdoc", 0, bytes=b"hello", opts={"task": "retrieval"}))
        out = recv_until(pull, lambda o: o["type"] == "error", daemon=lm)[-1]
        check(out["reason"] == "bad_opts" and "EmbeddingRWKV" in out["message"], "lm: %r" % out)
        push.send(msg("lmdoc2", 0, bytes=b"hello", opts={"eos_every": 4}))
        out = recv_until(pull, lambda o: o["type"] == "error", daemon=lm)[-1]
        check(out["reason"] == "bad_opts" and "EmbeddingRWKV" in out["message"], "lm: %r" % out)
        push.close(0)
        lm.stop()


def case_kill9_resume():
    """long_doc.txt with eos_every 128 is multi_eos_every128: the count of
    tokens since the last EOS survives the kill too."""
    inp = [i for i in MAN["inputs"] if i["name"] == "multi_eos_every128"][0]
    src = [i for i in MAN["inputs"] if i["name"] == "long_doc"][0]
    text = fixture_bytes("%s/%s" % (FIX, src["text_file"]))
    chunk = 700
    parts = [text[i:i + chunk] for i in range(0, len(text), chunk)]
    opts = {"task": "similarity", "normalize": False, "eos_every": 128}
    extra = ["--checkpoint-blocks", "1", "--checkpoint-seconds", "0.05"]
    with Work() as w:
        ref_d = daemon(w, 64, "ref", extra=extra)
        push, pull = ref_d.push(), ref_d.emit_pull()
        send_parts(push, "long", parts, "bytes", opts)
        ref = collect_docs(pull, ["long"], daemon=ref_d)["long"]
        push.close(0)
        ref_d.stop()
        check_final(inp, ref, "similarity", "uninterrupted")

        d = daemon(w, 64, "kill", extra=extra)
        push, pull = d.push(), d.emit_pull()
        half = len(parts) // 2
        for i in range(half):
            push.send(msg("long", i, eof=False, opts=opts if i == 0 else None, bytes=parts[i]))
        seen = {}
        while len(seen) < 20:
            check(pull.poll(60000), "only %d blocks before the kill" % len(seen))
            raw = pull.recv()
            seen[unpack(raw)["block"]] = raw
        push.close(0)
        d.kill9()
        d.start()
        rs = d.call(cmd="resume", doc="long")
        check(rs["known"], "resume after kill -9: %r" % rs)
        nxt = rs["next_seq"]
        check(0 < nxt <= half, "next_seq %r" % nxt)
        push, pull = d.push(), d.emit_pull()
        send_parts(push, "long", parts[nxt:], "bytes", opts, start=nxt)
        rest = collect_docs(pull, ["long"], daemon=d)["long"]
        push.close(0)
        d.stop()
        for k, raw in rest["raw"].items():
            check(k not in seen or seen[k] == raw, "block %r differs after the restart" % (k,))
            seen[k] = raw
        check(set(seen) == set(ref["raw"]), "outputs %d vs %d uninterrupted"
              % (len(seen), len(ref["raw"])))
        for k, raw in ref["raw"].items():
            check(seen[k] == raw, "output %r differs from the uninterrupted run" % (k,))


def case_python_client_task():
    """clients/python/rwkvd.py sends a document with opts.task as v 2."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                    "clients", "python"))
    import rwkvd
    inp = [i for i in MAN["inputs"] if i["name"] == "paragraph"][0]
    with Work() as w:
        d = daemon(w, 64, "py")
        c = rwkvd.Client(ingest=d.ingest_ep, emit=d.emit_ep, control=d.control_ep, timeout=30)
        try:
            c.send_document("para", fixture_bytes("%s/%s" % (FIX, inp["text_file"])),
                            chunk_size=200, opts={"task": "classification", "normalize": False})
            final = [o for o in c.outputs(doc="para", timeout=60) if o["type"] == "final"]
        finally:
            c.close()
        check(len(final) == 1 and final[0]["v"] == 2, "python client final: %r" % final)
        d_ = max_diff(final[0]["embedding"], f32file("%s/paragraph/emb_cls.f32" % FIX))
        check(d_ <= bound(inp, "emb_cls"), "python client: differs by %.3g" % d_)
        d.stop()


def case_asan_short():
    """The same code paths under sanitizers, on the short inputs."""
    texts = [i for i in MAN["inputs"] if i.get("text_file") and i["T"] < 100]
    rng = random.Random(3)
    with Work() as w:
        d = daemon(w, 5, "asan", binary=ASAN_BIN,
                   extra=["--checkpoint-blocks", "1", "--checkpoint-seconds", "0.05"])
        push, pull = d.push(), d.emit_pull()
        for inp in texts:
            data = fixture_bytes("%s/%s" % (FIX, inp["text_file"]))
            send_parts(push, inp["name"], random_split(data, rng, 3), "bytes",
                       {"task": "classification", "normalize": False})
        push.send(msg("noeos", 0, eof=True, tokens=[1, 2, 3]))
        res = collect_docs(pull, [i["name"] for i in texts] + ["noeos"], daemon=d)
        for inp in texts:
            check_final(inp, res[inp["name"]], "classification", inp["name"])
        check(res["noeos"]["final"]["embedding"] is None, "noeos under asan")
        push.close(0)
        d.kill9()
        d.start()
        d.stop()


if __name__ == "__main__":
    run_cases([
        ("text_inputs_random_splits", case_text_inputs_random_splits),
        ("token_inputs_as_given", case_token_inputs_as_given),
        ("eos_every", case_eos_every),
        ("v1_defaults_and_refusals", case_v1_defaults_and_refusals),
        ("kill9_resume", case_kill9_resume),
        ("python_client_task", case_python_client_task),
        ("asan_short", case_asan_short, "asan"),
    ])
