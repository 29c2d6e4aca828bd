#!/usr/bin/python3
"""test_daemon_segments.py — per-segment outputs (opts.segment, PROTOCOL.md
§4.6) against a reference computed here from `rwkv eval --out-surprisal`.

The fixture models are byte-level (token = byte), so the reference is plain
Python: a segment is the bytes through each delimiter (leftmost, not
overlapping), its tokens the same range, its surprisal the CLI's entries for
those tokens (the document's first token has none).  Scores are recomputed
from the daemon's own sums with the same 1/32-nat histogram as
core/quantile_sketch.h, so they must match exactly.

Cases: exactness on the fixture text cut into lines (CRLF, empty lines, no
final newline) for every fixture model; split invariance (random message
cuts, a multi-byte delimiter cut across messages: byte-identical segments
messages); a line longer than a block and a message; kill -9 mid-line and
resume (the union of outputs equals an uninterrupted run byte for byte);
refusals; the same under ASan.
"""
import os
import random
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "support"))
from rwkvd_harness import (ASAN_BIN, REL_BIN, RWKV_CLI, Daemon, TestFailure, Work, check,
                           collect_docs, f32, fixture_path, ingest, random_split, recv_until,
                           run_cases, run_doc, send_doc, tiny_text, unpack)

MODELS = ["tiny-rwkv-4v0-660K", "tiny-rwkv-5v1-730K", "tiny-rwkv-5v2-730K", "tiny-rwkv-6v0-3m",
          "tiny-rwkv-7v0-834K"]
BLOCK = 64
SUR_TOL = 2e-3  # nats, per segment sum: float32 surprisals, different block sizes


def model_path(name):
    return fixture_path("models/%s.safetensors" % name)


def log_text():
    """The fixture text as a log: CRLF on some lines, empty lines, no final newline."""
    lines = tiny_text().split(b"\n")
    out = []
    for i, ln in enumerate(lines):
        out.append(ln + (b"\r" if i % 7 == 3 else b""))
    text = b"\n\n" + b"\n".join(out)
    return text.rstrip(b"\n")


def cli_surprisal(model, text):
    with tempfile.TemporaryDirectory() as d:
        inp, out = os.path.join(d, "in"), os.path.join(d, "sur")
        with open(inp, "wb") as f:
            f.write(text)
        subprocess.run([RWKV_CLI, "eval", "--model", model, "--bytes", "-q", "-t", "1",
                        "--out-surprisal", out, inp], check=True)
        with open(out, "rb") as f:
            return f32(f.read())


def reference(text, sur, delim):
    """Segments of a byte-level text: list of dicts (no score)."""
    segs, start = [], 0
    while start < len(text):
        k = text.find(delim, start)
        end = len(text) if k < 0 else k + len(delim)
        scored = [(t, sur[t - 1]) for t in range(start, end) if t >= 1]
        g = {"seg": len(segs), "byte_start": start, "byte_end": end, "tok_start": start,
             "tok_end": end}
        if scored:
            g["surprisal_sum"] = sum(v for _, v in scored)
            mx = max(v for _, v in scored)
            g["surprisal_max"] = mx
            g["surprisal_max_pos"] = next(t for t, v in scored if v == mx)
            g["n"] = len(scored)
        segs.append(g)
        start = end
    return segs


def all_segments(res):
    segs = []
    for b in sorted(res["segments"]):
        segs.extend(res["segments"][b]["segments"])
    return segs


def check_scores(segs, quantile=0.99, warmup=100):
    """Score and anomalous recomputed with the daemon's histogram rule."""
    bins = [0] * 2048
    n = 0
    for g in segs:
        if g["surprisal_sum"] is None:
            check(g["score"] is None and not g["anomalous"], "seg %d: score without tokens" % g["seg"])
            continue
        ntok = g["n_scored"]
        mean = g["surprisal_sum"] / ntok
        b = 0 if not mean > 0 else min(int(mean * 32), 2047) if mean < 64 else 2047
        if n == 0:
            check(g["score"] is None, "seg %d: a score with nothing before it" % g["seg"])
        else:
            lo = sum(bins[:b])
            want = (lo + 0.5 * bins[b]) / n
            check(g["score"] == want, "seg %d: score %r, expected %r" % (g["seg"], g["score"], want))
            check(g["anomalous"] == (n >= warmup and want > quantile),
                  "seg %d: anomalous %r (score %r, %d before)" % (g["seg"], g["anomalous"], want, n))
        bins[b] += 1
        n += 1


def compare(got, want, what):
    check(len(got) == len(want), "%s: %d segments, expected %d" % (what, len(got), len(want)))
    for g, w in zip(got, want):
        for k in ("seg", "byte_start", "byte_end", "tok_start", "tok_end"):
            check(g[k] == w[k], "%s seg %d: %s %r, expected %r" % (what, w["seg"], k, g[k], w[k]))
        if "n" not in w:
            check(g["surprisal_sum"] is None and g["surprisal_max"] is None,
                  "%s seg %d: figures for a segment without scored tokens" % (what, w["seg"]))
            g["n_scored"] = 0
            continue
        check(abs(g["surprisal_sum"] - w["surprisal_sum"]) <= SUR_TOL,
              "%s seg %d: sum %r, expected %r" % (what, w["seg"], g["surprisal_sum"],
                                                   w["surprisal_sum"]))
        check(abs(g["surprisal_max"] - w["surprisal_max"]) <= 1e-4,
              "%s seg %d: max %r, expected %r" % (what, w["seg"], g["surprisal_max"],
                                                   w["surprisal_max"]))
        check(w["tok_start"] <= g["surprisal_max_pos"] < w["tok_end"],
              "%s seg %d: max position %r outside the segment" % (what, w["seg"],
                                                                   g["surprisal_max_pos"]))
        g["n_scored"] = w["n"]


def opts_lines(**kw):
    o = {"outputs": ["surprisal"], "segment": "line"}
    o.update(kw)
    return o


def test_exact_all_models():
    text = log_text()
    rng = random.Random(12)
    for name in MODELS:
        m = model_path(name)
        sur = cli_surprisal(m, text)
        want = reference(text, sur, b"\n")
        with Work() as w:
            d = Daemon(w, model=m, args=["--block-size", str(BLOCK)]).start()
            res = run_doc(d, "log", random_split(text, rng, 9), opts=opts_lines(), v=2)
            d.stop()
        got = all_segments(res)
        compare(got, want, name)
        check_scores(got)
        # every segment message follows the block that finished its segments
        for b, m_ in res["segments"].items():
            check(b in res["blocks"], "%s: segments after block %d, which was not sent" % (name, b))
            blk = res["blocks"][b]
            for g in m_["segments"]:
                check(g["tok_end"] <= blk["tok_end"], "%s: segment %d ends after its block"
                      % (name, g["seg"]))


def test_cli_equals_daemon():
    """rwkv eval --out-segments writes the daemon's records (same block size:
    bit-identical surprisals, so every field is equal, scores included)."""
    import json
    text = log_text()
    m = model_path("tiny-rwkv-5v2-730K")
    with Work() as w:
        inp, out = os.path.join(w, "log"), os.path.join(w, "segs.jsonl")
        with open(inp, "wb") as f:
            f.write(text)
        subprocess.run([RWKV_CLI, "eval", "--model", m, "--bytes", "-q", "-t", "1", "--block",
                        str(BLOCK), "--segments", "line", "--segment-text", "40", "--out-segments",
                        out, inp], check=True)
        with open(out) as f:
            cli = [json.loads(ln) for ln in f]
        d = Daemon(w, model=m, args=["--block-size", str(BLOCK)]).start()
        res = run_doc(d, "log", [text], opts=opts_lines(anomaly_warmup=5, segment_text=40), v=2)
        d.stop()
        # the CLI's warm-up is the default 100: compare anomalous separately
        got = all_segments(res)
        check(len(cli) == len(got), "%d CLI records, %d daemon segments" % (len(cli), len(got)))
        for a, b in zip(cli, got):
            want_text = text[b["byte_start"]:min(b["byte_end"], b["byte_start"] + 40)]
            check(b["text"] == want_text, "seg %d: text %r, expected %r" % (b["seg"], b["text"],
                                                                         want_text))
            check(a["text"] == want_text.decode(), "seg %d: CLI text %r" % (b["seg"], a["text"]))
            for k in a:
                if k in ("anomalous", "text"):
                    continue
                check(a[k] == b[k], "seg %d: %s: CLI %r, daemon %r" % (b["seg"], k, a[k], b[k]))
        check(any(g["anomalous"] for g in got), "no anomalous line after a warm-up of 5")
        # a multi-byte delimiter with escapes
        subprocess.run([RWKV_CLI, "eval", "--model", m, "--bytes", "-q", "--segments", "\\r\\n",
                        "--out-segments", out, inp], check=True)
        with open(out) as f:
            crlf = [json.loads(ln) for ln in f]
        check(len(crlf) == text.count(b"\r\n") + 1, "%d CRLF segments" % len(crlf))
        bad = subprocess.run([RWKV_CLI, "eval", "--model", m, "--bytes", "--segments", "x" * 17,
                              "--out-segments", out, inp], capture_output=True)
        check(bad.returncode != 0 and b"16" in bad.stderr, "a 17-byte delimiter: %r" % bad.stderr)


def test_sink_segments_top():
    """rwkvd-sink writes segments outputs once (keyed (doc, "segments",
    block), also across --append) and --segments-top prints the best."""
    import json
    text = log_text()
    sink_bin = os.path.join(os.path.dirname(RWKV_CLI), "rwkvd-sink")
    with Work() as w:
        d = Daemon(w, args=["--block-size", "128"]).start()
        out = os.path.join(w, "out.jsonl")
        sink = subprocess.Popen([sink_bin, "--emit", d.emit_ep, "--out", out, "--until-final", "1",
                                 "--segments-top", "3", "--idle-timeout", "60", "--verify-identical"],
                                stderr=subprocess.PIPE)
        push = d.push()
        send_doc(push, "log", [text[:2000], text[2000:]], opts=opts_lines(anomaly_warmup=3, segment_text=30), v=2)
        _, err = sink.communicate(timeout=120)
        push.close(0)
        d.stop()
        check(sink.returncode == 0, "sink status %d: %s" % (sink.returncode, err.decode()[-500:]))
        recs = [json.loads(ln) for ln in open(out)]
        segs = [g for r in recs if r["type"] == "segments" for g in r["segments"]]
        check(len(segs) == text.count(b"\n") + 1, "%d segments in the sink's output" % len(segs))
        check([g["seg"] for g in segs] == list(range(len(segs))), "segments out of order")
        tops = [ln for ln in err.decode().splitlines() if ln.startswith("rwkvd-sink: top ")]
        check(len(tops) == 3, "top lines: %r" % tops)
        best = max((g for g in segs if g["score"] is not None),
                   key=lambda g: (g["score"], g["surprisal_sum"] / max(1, g["tok_end"] - g["tok_start"])))
        check(("seg %d bytes [%d, %d)" % (best["seg"], best["byte_start"], best["byte_end"])) in tops[0],
              "top 1 %r, expected seg %d" % (tops[0], best["seg"]))
        shown = text[best["byte_start"]:best["byte_start"] + 30].split(b"\r")[0].split(b"\n")[0]
        check(tops[0].endswith(")" + (": " + shown.decode() if shown else "")) or
              (": " + shown.decode()) in tops[0], "top 1 without its text: %r" % tops[0])
        # --append: a second sink fed the same outputs again writes nothing new
        n_lines = len(recs)
        d2 = Daemon(w, args=["--block-size", "128"], tag="d2", state_dir=os.path.join(w, "s2")).start()
        # the same document again: every output is a duplicate, so the sink
        # ends by idling (its reloaded final already counts for --until-final)
        sink = subprocess.Popen([sink_bin, "--emit", d2.emit_ep, "--out", out, "--append",
                                 "--idle-timeout", "8"],
                                stderr=subprocess.PIPE)
        push = d2.push()
        send_doc(push, "log", [text], opts=opts_lines(anomaly_warmup=3, segment_text=30), v=2)
        _, err = sink.communicate(timeout=120)
        push.close(0)
        d2.stop()
        check(sink.returncode == 0, "appending sink: %s" % err.decode()[-500:])
        check(len(open(out).readlines()) == n_lines, "outputs written again after --append")
        summary = err.decode().strip().splitlines()[-1]
        check(summary.startswith("rwkvd-sink: 0 outputs written, %d duplicates" % n_lines),
              "appending sink: %r" % summary)


def world_token_lengths():
    """id -> byte length, from the World vocabulary file ("<id> <literal> <len>")."""
    lens = {}
    with open(fixture_path("tokenizer/rwkv_vocab_v20230424.txt"), "rb") as f:
        for ln in f:
            i = ln.index(b" ")
            lens[int(ln[:i])] = int(ln[ln.rindex(b" ") + 1:])
    return lens


def reference_tokens(text, lengths, sur, delim):
    """reference() for any tokenizer: token t starts at the sum of the
    lengths before it and belongs to the segment holding that byte."""
    starts, at = [], 0
    for n in lengths:
        starts.append(at)
        at += n
    check(at == len(text), "token lengths add up to %d bytes, the text has %d" % (at, len(text)))
    segs, start, t = [], 0, 0
    while start < len(text):
        k = text.find(delim, start)
        end = len(text) if k < 0 else k + len(delim)
        t0 = t
        while t < len(starts) and starts[t] < end:
            t += 1
        g = {"seg": len(segs), "byte_start": start, "byte_end": end, "tok_start": t0, "tok_end": t}
        scored = [(i, sur[i - 1]) for i in range(t0, t) if i >= 1]
        if scored:
            g["surprisal_sum"] = sum(v for _, v in scored)
            g["surprisal_max"] = max(v for _, v in scored)
            g["n"] = len(scored)
        segs.append(g)
        start = end
    return segs


def test_world_tokenizer(binary=REL_BIN):
    """Multi-byte tokens, some holding a newline in the middle or at the
    start: ranges by first byte, split-invariant (the encoder holds bytes
    across messages)."""
    lens = world_token_lengths()
    text = fixture_path("tokenizer/long.bin")
    text = open(text, "rb").read()
    import array
    a = array.array("i")
    a.frombytes(open(fixture_path("tokenizer/long.ids.i32"), "rb").read())
    if sys.byteorder != "little":
        a.byteswap()
    ids = list(a)
    rng = random.Random(3)
    with Work() as w:
        model = os.path.join(w, "m.safetensors")
        subprocess.run([RWKV_CLI, "mkmodel", "--shape", "L1-D32-H32-V65536", "--seed", "5",
                        "--dtype", "f32", "-q", model], check=True)
        vocab = fixture_path("tokenizer/rwkv_vocab_v20230424.txt")
        inp, sur_path = os.path.join(w, "in"), os.path.join(w, "sur")
        with open(inp, "wb") as f:
            f.write(text)
        subprocess.run([RWKV_CLI, "eval", "--model", model, "--vocab", vocab, "-q", "-t", "1",
                        "--out-surprisal", sur_path, inp], check=True)
        sur = f32(open(sur_path, "rb").read())
        check(len(sur) == len(ids) - 1, "CLI surprisal of %d tokens, %d ids" % (len(sur), len(ids)))
        want = reference_tokens(text, [lens[i] for i in ids], sur, b"\n")
        d = Daemon(w, model=model, binary=binary,
                   args=["--vocab", vocab, "--block-size", "32"]).start()
        first = None
        for k in range(3):
            parts = random_split(text, rng, [0, 5, 60][k])
            segs_raw, res = run_segments(d, "w%d" % k, parts, opts_lines())
            compare(all_segments(res), want, "World split %d" % k)
            body = [dict(unpack(r), doc=None) for r in segs_raw]
            check(first is None or body == first, "World: outputs depend on the split")
            first = body
        d.stop()


def test_bpe_refused():
    """The 20B BPE normalises text: no exact byte offsets, so segments are refused."""
    with Work() as w:
        model = os.path.join(w, "m.safetensors")
        subprocess.run([RWKV_CLI, "mkmodel", "--shape", "L1-D32-H32-V50277", "--seed", "5",
                        "--dtype", "f32", "-q", model], check=True)
        d = Daemon(w, model=model,
                   args=["--vocab", fixture_path("tokenizer-20b/20B_tokenizer.json")]).start()
        expect_error(d, ingest("b", 0, b"a\nb", opts=opts_lines(), v=2), "bad_opts")
        d.stop()


def test_eviction():
    """Documents evicted to disk mid-line (max 2 in memory, 6 interleaved)
    give the same segments messages as one document alone."""
    text = log_text()[:3000]
    opts = opts_lines(segment_text=20)
    rng = random.Random(9)
    with Work() as w:
        d = Daemon(w, args=["--block-size", "32", "--max-active-docs", "2"]).start()
        alone, _ = run_segments(d, "alone", [text], opts)
        docs = ["e%d" % i for i in range(6)]
        parts = {doc: random_split(text, rng, 8) for doc in docs}
        push, pull = d.push(), d.emit_pull()
        for k in range(max(len(p) for p in parts.values())):
            for doc in docs:
                p = parts[doc]
                if k < len(p):
                    push.send(ingest(doc, k, p[k], eof=k == len(p) - 1,
                                     opts=opts if k == 0 else None, v=2))
        res = collect_docs(pull, docs, timeout=120, daemon=d)
        push.close(0)
        d.stop()
        want = [dict(unpack(r), doc=None) for r in alone]
        for doc in docs:
            got = [dict(unpack(res[doc]["raw"][k]), doc=None)
                   for k in sorted(k for k in res[doc]["raw"] if isinstance(k, tuple))]
            check(got == want, "%s: segments differ from the document alone" % doc)


def run_segments(d, doc, parts, opts):
    res = run_doc(d, doc, parts, opts=opts, v=2)
    return [res["raw"][k] for k in sorted(k for k in res["raw"] if isinstance(k, tuple))], res


def test_split_invariance(binary=REL_BIN, n_splits=4):
    text = log_text()[:2500]
    delim = b"the "  # four bytes, frequent in the text; cuts fall inside it
    check(text.count(delim) >= 10, "the delimiter does not occur")
    opts = {"outputs": ["surprisal"], "segment": {"delimiter": delim}, "anomaly_quantile": 0.9,
            "anomaly_warmup": 3}
    rng = random.Random(5)
    with Work() as w:
        d = Daemon(w, binary=binary, args=["--block-size", "16"]).start()
        first, res = run_segments(d, "s0", [text], opts)
        sur = cli_surprisal(model_path("tiny-rwkv-7v0-834K"), text)
        compare(all_segments(res), reference(text, sur, delim), "delimiter")
        check_scores(all_segments(res), 0.9, 3)
        at = text.index(delim)
        cuts = [[at + 1], [at + 2], [at + 1, at + 2]] + \
            [sorted(rng.sample(range(1, len(text)), 12)) for _ in range(n_splits)]
        for i, c in enumerate(cuts):
            parts = [text[a:b] for a, b in zip([0] + c, c + [len(text)])]
            again, _ = run_segments(d, "s%d" % (i + 1), parts, opts)
            check(len(again) == len(first), "split %r: %d segments messages, expected %d"
                  % (c, len(again), len(first)))
            for a, b in zip(again, first):
                ma, mb = unpack(a), unpack(b)
                ma.pop("doc")
                mb.pop("doc")
                check(ma == mb, "split %r: a segments message differs" % (c,))
        d.stop()


def test_edges():
    m = model_path("tiny-rwkv-7v0-834K")
    long_line = bytes((ord("a") + i % 23) for i in range(5000))
    cases = [
        ("empty lines", b"\n\n\nabc\n\n"),
        ("no final newline", b"one\ntwo"),
        ("crlf", b"a\r\nb\r\n\r\nc"),
        ("one byte", b"x"),
        ("only newline", b"\n"),
        ("long line", b"head\n" + long_line + b"\ntail\n" + long_line),
    ]
    with Work() as w:
        d = Daemon(w, model=m, args=["--block-size", "64"]).start()
        for i, (what, text) in enumerate(cases):
            parts = [text[k:k + 1000] for k in range(0, len(text), 1000)]
            res = run_doc(d, "e%d" % i, parts, opts=opts_lines(), v=2)
            sur = cli_surprisal(m, text) if len(text) > 1 else []
            compare(all_segments(res), reference(text, sur, b"\n"), what)
        res = run_doc(d, "empty", [], opts=opts_lines(), v=2)
        check(not res["segments"], "an empty document has segments")
        d.stop()


def test_kill9_mid_line(binary=REL_BIN):
    """Killed while a long line is open: the resumed run's outputs, with
    those received before the kill, equal an uninterrupted run's."""
    text = log_text() + b"\n" + bytes((ord("a") + i % 19) for i in range(3000)) + b"\nend\n"
    chunk = 500
    parts = [text[k:k + chunk] for k in range(0, len(text), chunk)]
    args = ["--block-size", "32", "--checkpoint-blocks", "1", "--checkpoint-seconds", "0.05"]
    opts = opts_lines(outputs=["surprisal", "embedding"], segment_text=256)
    with Work() as w:
        ref = Daemon(w, binary=binary, args=args, tag="ref", state_dir=os.path.join(w, "r")).start()
        want = run_doc(ref, "doc", parts, opts=opts, v=2)["raw"]
        ref.stop()
        d = Daemon(w, binary=binary, args=args, tag="k", state_dir=os.path.join(w, "k")).start()
        pull = d.pull()
        push = d.push()
        n_first = len(parts) - 3  # inside the long line
        for i in range(n_first):
            push.send(ingest("doc", i, parts[i], opts=opts if i == 0 else None, v=2))
        seen = {}
        def note(out_raw):
            out = unpack(out_raw)
            key = ("segments", out["block"]) if out["type"] == "segments" else out["block"]
            check(key not in seen or seen[key] == out_raw, "a duplicate differs: %r" % (key,))
            seen[key] = out_raw
        raws = []
        recv_until(pull, lambda o: o.get("type") == "block" and o["block"] >= 60, daemon=d,
                   keep=raws)
        for r in raws:
            note(r)
        push.close(0)
        pull.close(0)
        d.kill9()
        d.start()
        rs = d.call(cmd="resume", doc="doc")
        check(rs["known"], "resume after kill -9: %r" % (rs,))
        push, pull = d.push(), d.pull()
        send_doc(push, "doc", parts[rs["next_seq"]:], start_seq=rs["next_seq"], v=2)
        rest = collect_docs(pull, ["doc"], timeout=120, daemon=d)["doc"]
        push.close(0)
        pull.close(0)
        d.stop()
        for k, raw in rest["raw"].items():
            if k == "final":
                seen[k] = raw
            else:
                note(raw)
        check(set(seen) == set(want), "outputs differ: missing %r, extra %r"
              % (sorted(map(str, set(want) - set(seen)))[:5],
                 sorted(map(str, set(seen) - set(want)))[:5]))
        for k in want:
            check(seen[k] == want[k], "output %r differs from the uninterrupted run" % (k,))
        check(any(isinstance(k, tuple) for k in want), "no segments at all")


def expect_error(d, msg, reason, before=()):
    push, pull = d.push(), d.pull()
    for b in before:
        push.send(b)
    push.send(msg)
    outs = recv_until(pull, lambda o: o.get("type") == "error", timeout=20, daemon=d)
    push.close(0)
    pull.close(0)
    check(outs[-1]["reason"] == reason, "reason %r, expected %r: %r"
          % (outs[-1]["reason"], reason, outs[-1]))


def test_refusals():
    with Work() as w:
        d = Daemon(w).start()
        expect_error(d, ingest("t", 0, [1, 2, 3], kind="tokens", opts=opts_lines(), v=2),
                     "payload_kind")
        expect_error(d, ingest("d", 0, b"x", opts=opts_lines(segment={"delimiter": b""}), v=2),
                     "bad_opts")
        expect_error(d, ingest("d", 0, b"x", opts=opts_lines(segment={"delimiter": b"x" * 17}),
                               v=2), "bad_opts")
        expect_error(d, ingest("d", 0, b"x", opts={"anomaly_quantile": 0.5}, v=2), "bad_opts")
        expect_error(d, ingest("d", 0, b"x", opts=opts_lines(anomaly_quantile=1.0), v=2),
                     "bad_opts")
        expect_error(d, ingest("d", 0, b"x", opts=opts_lines(segment="word"), v=2), "bad_opts")
        expect_error(d, ingest("d", 0, b"x", opts=opts_lines(segment_text=257), v=2), "bad_opts")
        expect_error(d, ingest("d", 0, b"x", opts={"segment_text": 5}, v=2), "bad_opts")
        expect_error(d, ingest("d", 0, b"x", opts=opts_lines(segment={"delim": "x"}), v=2),
                     "unknown_field")
        # version 1 does not know the segment keys
        expect_error(d, ingest("d", 0, b"x", opts=opts_lines()), "unknown_field")
        expect_error(d, ingest("d", 0, b"x", opts={"anomaly_warmup": 3}), "unknown_field")
        # started with text and segments, then token ids
        expect_error(d, ingest("m", 1, [1], kind="tokens", v=2), "payload_kind",
                     before=[ingest("m", 0, b"abc\n", opts=opts_lines(), v=2)])
        d.stop()


if __name__ == "__main__":
    run_cases([
        ("exact sums on the fixture text cut into lines, every fixture model", test_exact_all_models),
        ("split invariance with a 4-byte delimiter cut across messages", test_split_invariance),
        ("edge cases: empty lines, no final newline, CRLF, a line longer than block and message",
         test_edges),
        ("kill -9 mid-line and resume: outputs identical", test_kill9_mid_line),
        ("eviction mid-line: 6 documents, 2 in memory", test_eviction),
        ("World tokenizer: multi-byte tokens, ranges by first byte, splits", test_world_tokenizer),
        ("20B BPE tokenizer: segments refused", test_bpe_refused),
        ("rwkv eval --out-segments equals the daemon's segments", test_cli_equals_daemon),
        ("rwkvd-sink: segments once, --append, --segments-top", test_sink_segments_top),
        ("refusals: token ids, delimiter sizes, stray anomaly opts, v 1", test_refusals),
        ("asan: split invariance", lambda: test_split_invariance(ASAN_BIN, 1), "asan"),
        ("asan: kill -9 mid-line", lambda: test_kill9_mid_line(ASAN_BIN), "asan"),
    ])
