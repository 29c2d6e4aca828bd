#!/usr/bin/python3
"""test_daemon_e2e.py — rwkvd end to end against the official fixtures.

The tiny RWKV-7 fixture model runs inside a real daemon process; the GPL-3
fixture text goes in over ZeroMQ split at random byte positions, and what
comes out must match what the official implementation computed: surprisal
per token, ln_out at the fixture's hidden positions (pooling last, no
normalisation), the mean-pooled document embedding — each within the
tolerance its manifest states.  Outputs must not depend on how the text was
split (byte-identical messages), on the payload kind (bytes, text, token
arrays, token bins), or on other documents sharing the engine batch.

Block sizes 1, 7 and 256: with 1 every fixture position is a block end;
with 7 and 256 the positions that are block ends are compared (4095, the
last token, always is).
"""
import os
import random
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "support"))
from fixture_check import RAW, Ref, check_doc
from rwkvd_harness import (ASAN_BIN, REL_BIN, TINY, Daemon, Work, check, collect_docs,
                           fixture_f32, f32, ingest, max_abs_diff, random_split, run_cases,
                           run_doc, strip_doc, tolerance_abs, unpack, without_inc)

REF = None


def ref():
    global REF
    if REF is None:
        REF = Ref()
    return REF


def drop(d, doc):
    r = d.call(cmd="drop", doc=doc)
    check(r.get("ok") and r.get("dropped"), "drop %r: %r" % (doc, r))


def no_errors_logged(d):
    bad = [l for l in d.log_text().splitlines() if " ERROR " in l or " WARN " in l]
    check(not bad, "daemon logged problems during a clean run: %s" % " | ".join(bad[:5]))


def split_invariance(block_size, n_splits, binary=REL_BIN):
    r = ref()
    rng = random.Random(1000 + block_size)
    with Work() as w:
        d = Daemon(w, binary=binary, args=["--block-size", str(block_size)]).start()
        first = None
        for i in range(n_splits):
            parts = random_split(r.text, rng, rng.choice([1, 5, 40, 300]))
            res = run_doc(d, "gpl", parts, RAW)
            n = check_doc(r, res, block_size)
            if block_size == 1:
                check(n == len(r.pos), "only %d of %d positions compared" % (n, len(r.pos)))
            if first is None:
                first = res["raw"]
            else:
                for key in first:
                    # a reused id is a new incarnation (PROTOCOL.md §8.4): inc == i
                    check(unpack(res["raw"][key]).get("inc") == i,
                          "split %d: inc %r" % (i, unpack(res["raw"][key]).get("inc")))
                    check(without_inc(res["raw"].get(key)) == first[key],
                          "split %d (%d messages): output %r differs byte-wise from split 0"
                          % (i, len(parts), key))
            drop(d, "gpl")
        st = d.call(cmd="status")
        check(st["checkpoints"]["failures_total"] == 0, "checkpoint failures: %r" % st["checkpoints"])
        no_errors_logged(d)
        d.stop()


def test_block1_random_splits():
    split_invariance(1, 2)


def test_block7_random_splits():
    split_invariance(7, 3)


def test_block256_random_splits():
    split_invariance(256, 4)


def test_mean_pooling():
    r = ref()
    opts = {"outputs": ["embedding", "surprisal"], "pooling": "mean", "normalize": False}
    with Work() as w:
        d = Daemon(w, args=["--block-size", "256"]).start()
        res = run_doc(d, "m", random_split(r.text, random.Random(5), 9), opts)
        check_doc(r, res, 256, opts)
        fe = f32(res["final"]["embedding"])
        diff = max_abs_diff(fe, r.mean)
        check(diff <= r.tol_mean, "mean embedding differs by %g (tolerance %g)" % (diff, r.tol_mean))
        # the last block's running mean covers every token: the document mean
        last = f32(res["blocks"][15]["embedding"])
        check(max_abs_diff(last, fe) <= 1e-6, "last block's running mean != final mean")
        # normalize: the same direction, unit length
        opts_n = dict(opts, normalize=True)
        res_n = run_doc(d, "mn", [r.text], opts_n)
        en = f32(res_n["final"]["embedding"])
        norm = sum(x * x for x in fe) ** 0.5
        check(abs(sum(x * x for x in en) - 1.0) < 1e-5, "normalized embedding not unit length")
        check(max_abs_diff(en, [x / norm for x in fe]) < 1e-6, "normalized mean != mean / |mean|")
        no_errors_logged(d)
        d.stop()


def test_logits_and_topk():
    """logits_last of every block and the top-k of every token against the
    fixture's logits at every position (logits.f32): logits within the
    manifest's bound; at each rank j the id's reference logit within twice
    that bound of the reference's j-th largest (so only near-ties may swap);
    log-probabilities within the surprisal bound."""
    import math
    import struct
    r = ref()
    V = r.man["architecture"]["vocab_size"]
    K = 8
    logits = fixture_f32(TINY + "/logits.f32")
    tol = tolerance_abs(r.man, "logits.f32")
    opts = {"outputs": ["logits_last", "topk"], "topk": K}
    with Work() as w:
        d = Daemon(w, args=["--block-size", "64"]).start()
        res = run_doc(d, "lg", random_split(r.text, random.Random(12), 11), opts)
        T = len(r.text)
        check(sorted(res["blocks"]) == list(range(T // 64)), "blocks %r" % sorted(res["blocks"]))
        worst_logit = worst_lp = 0.0
        for k in sorted(res["blocks"]):
            b = res["blocks"][k]
            t0, t1 = b["tok_start"], b["tok_end"]
            check("embedding" not in b and "surprisal" not in b, "block %d: outputs not asked" % k)
            last = f32(b["logits_last"])
            check(len(last) == V, "block %d: %d logits" % (k, len(last)))
            worst_logit = max(worst_logit, max_abs_diff(last, logits[(t1 - 1) * V:t1 * V]))
            tk = b["topk"]
            ids = struct.unpack("<%dI" % ((t1 - t0) * K), tk["ids"])
            lps = f32(tk["logprobs"])
            check(tk["k"] == K and len(lps) == len(ids), "block %d topk shape" % k)
            for i in range(t1 - t0):
                row = logits[(t0 + i) * V:(t0 + i + 1) * V]
                ranked = sorted(row, reverse=True)
                m = ranked[0]
                lse = m + math.log(sum(math.exp(x - m) for x in row))
                got = ids[i * K:(i + 1) * K]
                check(len(set(got)) == K, "token %d: repeated ids %r" % (t0 + i, got))
                for j in range(K):
                    check(abs(row[got[j]] - ranked[j]) <= 2 * tol,
                          "token %d rank %d: id %d (reference logit %r), the reference's rank "
                          "%d has %r" % (t0 + i, j, got[j], row[got[j]], j, ranked[j]))
                    worst_lp = max(worst_lp, abs(lps[i * K + j] - (row[got[j]] - lse)))
                check(all(lps[i * K + j] >= lps[i * K + j + 1] for j in range(K - 1)),
                      "token %d: log-probabilities not descending" % (t0 + i))
        check(worst_logit <= tol, "logits_last differs by %g (tolerance %g)" % (worst_logit, tol))
        check(worst_lp <= r.tol_sur, "top-k log-probability differs by %g (tolerance %g)"
              % (worst_lp, r.tol_sur))
        print("logits_last worst %.3g (tol %.3g), top-k logprob worst %.3g (tol %.3g)"
              % (worst_logit, tol, worst_lp, r.tol_sur), flush=True)
        no_errors_logged(d)
        d.stop()


def test_token_payloads():
    """Token arrays and token bins give exactly the bytes payload's outputs."""
    r = ref()
    ids = list(r.text)  # byte-level model: id = byte
    rng = random.Random(9)
    with Work() as w:
        d = Daemon(w, args=["--block-size", "256"]).start()
        base = run_doc(d, "t", random_split(r.text, rng, 7), RAW)
        check_doc(r, base, 256)
        drop(d, "t")
        arr_parts = [list(p) for p in random_split(bytes(ids), rng, 6)]
        res = run_doc(d, "t", arr_parts, RAW, kind="tokens")
        res["raw"] = {k: without_inc(v) for k, v in res["raw"].items()}  # a reused id (§8.4)
        check(res["raw"] == base["raw"], "tokens as arrays: outputs differ from bytes")
        drop(d, "t")
        import struct
        bin_parts = [struct.pack("<%dI" % len(p), *p) for p in random_split(bytes(ids), rng, 6)]
        res = run_doc(d, "t", bin_parts, RAW, kind="tokens")
        res["raw"] = {k: without_inc(v) for k, v in res["raw"].items()}
        check(res["raw"] == base["raw"], "tokens as bin: outputs differ from bytes")
        drop(d, "t")
        # text (the fixture is ASCII, so any split is at a character boundary)
        check(all(c < 128 for c in r.text), "fixture text is ASCII")
        txt_parts = [p.decode("ascii") for p in random_split(r.text, rng, 5)]
        res = run_doc(d, "t", txt_parts, RAW, kind="text")
        res["raw"] = {k: without_inc(v) for k, v in res["raw"].items()}
        check(res["raw"] == base["raw"], "text payload: outputs differ from bytes")
        no_errors_logged(d)
        d.stop()


def test_documents_in_one_batch():
    """Eight documents interleaved message by message (so they share engine
    batches) give the outputs each gives alone."""
    r = ref()
    with Work() as w:
        d = Daemon(w, args=["--block-size", "64"]).start()
        alone = run_doc(d, "solo", [r.text], RAW)
        check_doc(r, alone, 64)
        push, pull = d.push(), d.emit_pull()
        docs = ["doc-%d" % i for i in range(8)]
        splits = {doc: random_split(r.text, random.Random(i), 20 + i) for i, doc in enumerate(docs)}
        for i in range(max(len(p) for p in splits.values())):
            for doc in docs:
                parts = splits[doc]
                if i < len(parts):
                    push.send(ingest(doc, i, parts[i], eof=(i == len(parts) - 1),
                                     opts=RAW if i == 0 else None))
        res = collect_docs(pull, docs, timeout=120, daemon=d)
        want = strip_doc(alone["raw"])
        for doc in docs:
            check(strip_doc(res[doc]["raw"]) == want, "document %s in a batch differs from alone" % doc)
        push.close(0)
        no_errors_logged(d)
        d.stop()


if __name__ == "__main__":
    run_cases([
        ("e2e block size 1, random splits vs fixtures", test_block1_random_splits),
        ("e2e block size 7, random splits vs fixtures", test_block7_random_splits),
        ("e2e block size 256, random splits vs fixtures", test_block256_random_splits),
        ("e2e block size 256, random splits vs fixtures (asan)",
         lambda: split_invariance(256, 2, ASAN_BIN), "asan"),
        ("e2e mean pooling vs hidden_mean, normalize", test_mean_pooling),
        ("e2e tokens (array, bin) and text payloads == bytes", test_token_payloads),
        ("e2e documents sharing batches == alone", test_documents_in_one_batch),
        ("e2e logits_last and top-k vs logits.f32", test_logits_and_topk),
    ])
