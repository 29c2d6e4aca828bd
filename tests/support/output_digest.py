"""output_digest.py — a fingerprint of everything the CLI and the daemon emit
on the fixtures, for proving that a refactoring changed no output byte.

Usage:  /usr/bin/python3 tests/support/output_digest.py [BIN_DIR] > digest.txt
BIN_DIR defaults to build/rel/bin.  Run it with the binaries before and after
a change and diff the two files: every line is "name sha256", one per output
file of `rwkv eval` (every fixture model, several output modes and block
sizes) and one per raw daemon output message (every fixture model, every
output option, pooling last/mean, normalize on/off, several block sizes).

Not a test (it asserts nothing by itself); it is the before/after evidence a
structural change owes (issue 10's "byte-identical outputs").
"""
import hashlib
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rwkvd_harness as h  # noqa: E402

MODELS = ["tiny-rwkv-4v0-660K", "tiny-rwkv-5v1-730K", "tiny-rwkv-5v2-730K",
          "tiny-rwkv-6v0-3m", "tiny-rwkv-7v0-834K"]

EVAL_RUNS = [
    ("all", ["--block", "333", "--logits", "all", "--hidden", "all"]),
    ("last", ["--block", "64", "--logits", "last", "--hidden", "last"]),
    ("mean", ["--block", "7", "--hidden", "mean"]),
    ("b1", ["--block", "1", "--logits", "last", "--hidden", "mean"]),
]

DOC_OPTS = [
    {"outputs": ["embedding", "surprisal", "logits_last", "topk"], "pooling": "last",
     "normalize": True, "topk": 7},
    {"outputs": ["embedding", "topk"], "pooling": "mean", "normalize": False, "topk": 64},
    {"outputs": ["embedding", "surprisal"], "pooling": "mean", "normalize": True},
    {"outputs": []},
]


def sha(b):
    return hashlib.sha256(b).hexdigest()


def eval_digests(bindir, work, out):
    cli = os.path.join(bindir, "rwkv")
    text = h.fixture_path("inputs/gpl-3.first4096.bin")
    for m in MODELS:
        model = h.fixture_path("models/%s.safetensors" % m)
        for name, args in EVAL_RUNS:
            files = {k: os.path.join(work, "%s.%s.%s" % (m, name, k))
                     for k in ("logits", "hidden", "surprisal", "state")}
            cmd = [cli, "eval", "--model", model, "--bytes", "-q", "--threads", "2",
                   "--out-hidden", files["hidden"], "--out-surprisal", files["surprisal"],
                   "--out-state", files["state"]] + args + [text]
            if "--logits" in args:
                cmd[-1:-1] = ["--out-logits", files["logits"]]
            subprocess.run(cmd, check=True)
            for k, p in sorted(files.items()):
                if os.path.exists(p):
                    with open(p, "rb") as f:
                        out.append("eval %s %s %s %s" % (m, name, k, sha(f.read())))
                    os.unlink(p)


BLOCK_SIZES = [256, 100, 7]


def daemon_digests(bindir, work, out):
    text = h.fixture_bytes("inputs/gpl-3.first4096.bin")
    for m in MODELS:
        model = h.fixture_path("models/%s.safetensors" % m)
        for bs in BLOCK_SIZES:
            dwork = os.path.join(work, "%s-%d" % (m, bs))
            os.makedirs(dwork)
            d = h.Daemon(dwork, model=model, binary=os.path.join(bindir, "rwkvd"), threads=2,
                         args=["--block-size", str(bs)])
            d.start()
            try:
                for i, opts in enumerate(DOC_OPTS):
                    doc = "doc-%d" % i
                    parts = h.chunks_at(text, [1, 500, 1777, 3000])
                    r = h.run_doc(d, doc, parts, opts=opts)
                    for k in sorted(r["raw"], key=str):
                        out.append("daemon %s b%d %s %s %s" % (m, bs, doc, k, sha(r["raw"][k])))
            finally:
                d.stop()


def main():
    bindir = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                             os.path.join(h.REPO, "build/rel/bin"))
    out = []
    with tempfile.TemporaryDirectory(prefix="rwkv-digest-") as work:
        eval_digests(bindir, work, out)
        daemon_digests(bindir, work, out)
    sys.stdout.write("\n".join(out) + "\n")
    h.reap_all()


if __name__ == "__main__":
    main()
