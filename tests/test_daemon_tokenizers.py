#!/usr/bin/python3
"""test_daemon_tokenizers.py — the daemon tokenizes each document exactly as
the official tokenizer does the whole string, however the text is split
into messages, with the World vocabulary and with the GPT-NeoX 20B
tokenizer.json.

Every tokenizer fixture case (multilingual, emoji, whitespace runs, …) and
the long text go in as separate documents twice: once as bytes cut at
random positions (also inside UTF-8 sequences), once as the fixture's
expected ids sent as a `tokens` payload.  The two runs must give
byte-identical outputs (per-token surprisal and the embeddings of a random
model depend on every id, so equal bytes mean equal ids) and the final
message must count exactly the fixture's ids.  Then a document whose text
is cut inside multi-byte characters is stopped by SIGTERM half-way (pending
tokenizer bytes and tokens in its checkpoint), finished by a new process,
and must give the uninterrupted run's outputs byte for byte.
"""
import os
import random
import struct
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "support"))
from rwkvd_harness import (ASAN_BIN, REL_BIN, RWKV_CLI, Daemon, Work, check, collect_docs,
                           fixture_bytes, fixture_i32, fixture_path, interrupted_run,
                           random_split, run_cases, run_doc, send_doc, strip_doc)

BLOCK = 16
OPTS = {"outputs": ["embedding", "surprisal"], "pooling": "mean", "normalize": False}
TOKENIZERS = {
    # name: (fixture dir, vocabulary file, model vocabulary size)
    "World": ("tokenizer", "tokenizer/rwkv_vocab_v20230424.txt", 65536),
    "GPT-NeoX 20B": ("tokenizer-20b", "tokenizer-20b/20B_tokenizer.json", 50277),
}


def cases(fdir):
    """[(bytes, ids)]: every fixture case, then the long text."""
    data = fixture_bytes(fdir + "/cases.bin")
    off = fixture_i32(fdir + "/cases.offsets.i32")
    ids = fixture_i32(fdir + "/ids.i32")
    ioff = fixture_i32(fdir + "/ids.offsets.i32")
    check(len(off) == len(ioff), "%s: case and id offsets differ in count" % fdir)
    out = [(data[off[i]:off[i + 1]], list(ids[ioff[i]:ioff[i + 1]])) for i in range(len(off) - 1)]
    out.append((fixture_bytes(fdir + "/long.bin"), list(fixture_i32(fdir + "/long.ids.i32"))))
    return out


def tokenizer_case(name, binary):
    fdir, vocab, V = TOKENIZERS[name]
    rng = random.Random(sum(map(ord, name)))
    with Work() as w:
        model = os.path.join(w, "m.safetensors")
        subprocess.run([RWKV_CLI, "mkmodel", "--shape", "L1-D32-H32-V%d" % V, "--seed", "5",
                        "--dtype", "f32", "-q", model], check=True)
        args = ["--vocab", fixture_path(vocab), "--block-size", str(BLOCK), "--linger-ms", "100"]
        d = Daemon(w, model=model, binary=binary, args=args, tag="tok").start()
        push, pull = d.push(), d.pull()
        cs = cases(fdir)
        docs = []
        for i, (text, ids) in enumerate(cs):
            send_doc(push, "bytes-%d" % i, random_split(text, rng, rng.choice([0, 3, 7, 40])),
                     opts=OPTS)
            tok_parts = [struct.pack("<%dI" % len(p), *p)
                         for p in split_list(ids, rng, rng.choice([1, 2, 5]))]
            send_doc(push, "ids-%d" % i, tok_parts, kind="tokens", opts=OPTS)
            docs += ["bytes-%d" % i, "ids-%d" % i]
        res = collect_docs(pull, docs, timeout=180, daemon=d)
        for i, (text, ids) in enumerate(cs):
            a, b = res["bytes-%d" % i], res["ids-%d" % i]
            check(a["final"]["tokens"] == len(ids), "%s case %d (%r…): %d tokens, the reference "
                  "has %d" % (name, i, text[:30], a["final"]["tokens"], len(ids)))
            check(strip_doc(a["raw"]) == strip_doc(b["raw"]), "%s case %d (%r…): the text's outputs "
                  "differ from those of the reference ids" % (name, i, text[:30]))
        push.close(0)
        pull.close(0)
        d.stop()

        # stop half-way through a document cut inside multi-byte characters
        text = b"".join(t for t, _ in cs[:-1]) * 3
        check(any(c >= 0x80 for c in text), "the cases hold multi-byte characters")
        cuts = sorted(rng.sample([i for i in range(1, len(text)) if 0x80 <= text[i] < 0xc0], 10))
        parts = [text[a:b] for a, b in zip([0] + cuts, cuts + [len(text)])]
        d_full = Daemon(w, model=model, binary=binary, args=args, tag="whole",
                        state_dir=os.path.join(w, "whole")).start()
        full = run_doc(d_full, "cut", parts, OPTS, timeout=180)
        d_full.stop()
        d2 = Daemon(w, model=model, binary=binary, args=args, tag="half",
                    state_dir=os.path.join(w, "half")).start()
        union = interrupted_run(d2, "cut", parts, 6, 3, opts=OPTS, timeout=180)
        check(union == full["raw"], "%s: after SIGTERM and resume the outputs differ from the "
              "uninterrupted run (%d vs %d outputs)" % (name, len(union), len(full["raw"])))
        print("%s: %d cases + long text exact through the daemon; resume mid-character exact "
              "(%d tokens)" % (name, len(cs) - 1, full["final"]["tokens"]), flush=True)


def split_list(xs, rng, n):
    if not xs:
        return []
    n = max(1, min(n, len(xs)))
    cuts = sorted(rng.sample(range(1, len(xs)), n - 1)) if n > 1 else []
    return [xs[a:b] for a, b in zip([0] + cuts, cuts + [len(xs)])]


if __name__ == "__main__":
    run_cases([("%s tokenizer through the daemon (%s)" % (t, f),
                lambda t=t, b=b: tokenizer_case(t, b), f)
               for f, b in (("rel", REL_BIN), ("asan", ASAN_BIN)) for t in TOKENIZERS])
