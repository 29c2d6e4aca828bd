"""fixture_check.py — one document's daemon outputs against a fixture model's
golden files (surprisal of every token, ln_out at the fixture's hidden
positions where a block ends, hidden_last, the mean surprisal), each within
the tolerance its manifest states.  Shared by the end-to-end tests of every
generation."""
from rwkvd_harness import (TINY, check, fixture_f32, fixture_i32, f32, isnan, manifest,
                           max_abs_diff, tiny_text, tolerance_abs)

RAW = {"outputs": ["embedding", "surprisal"], "pooling": "last", "normalize": False}


class Ref:
    def __init__(self, name=TINY):
        self.name = name
        self.man = manifest(name)
        self.text = tiny_text()
        check(len(self.text) == self.man["input"]["T"], "fixture input length")
        self.sur = fixture_f32(name + "/surprisal.f32")
        self.pos = fixture_i32(name + "/hidden_positions.i32")
        self.hid = fixture_f32(name + "/hidden_at_positions.f32")
        self.last = fixture_f32(name + "/hidden_last.f32")
        self.mean = fixture_f32(name + "/hidden_mean.f32")
        self.C = self.man["architecture"]["n_embd"]
        self.tol_hidden = tolerance_abs(self.man, "hidden_at_positions.f32")
        self.tol_last = tolerance_abs(self.man, "hidden_last.f32")
        self.tol_mean = tolerance_abs(self.man, "hidden_mean.f32")
        self.tol_sur = tolerance_abs(self.man, "surprisal.f32")
        s = 0.0
        for x in self.sur:
            s += x
        self.mean_sur = s / len(self.sur)
        sha = [c["sha256"] for c in self.man["checkpoints"]
               if c["file"].endswith(name + ".safetensors")]
        check(len(sha) == 1, "manifest names the safetensors checkpoint")
        self.sha = sha[0]

    def hidden_row(self, i):
        return self.hid[i * self.C:(i + 1) * self.C]


def check_doc(r, res, block_size, opts=RAW):
    """Checks one document's outputs against the fixtures; returns the
    number of hidden positions compared."""
    T = len(r.text)
    blocks, final = res["blocks"], res["final"]
    n_blocks = (T + block_size - 1) // block_size
    check(final is not None, "no final message")
    check(final["tokens"] == T, "final tokens %r, expected %d" % (final["tokens"], T))
    check(final["blocks"] == n_blocks, "final blocks %r, expected %d" % (final["blocks"], n_blocks))
    check(sorted(blocks) == list(range(n_blocks)), "blocks received: %d of %d"
          % (len(blocks), n_blocks))
    check(final["model"] == r.sha, "model sha256 %r, manifest %r" % (final["model"], r.sha))
    check(final["dim"] == r.C and final["pooling"] == opts["pooling"]
          and final["normalize"] == opts["normalize"], "final header %r" % final)
    sur = []
    compared = 0
    positions = {p: i for i, p in enumerate(r.pos)}
    for k in range(n_blocks):
        b = blocks[k]
        check(b["tok_start"] == k * block_size, "block %d tok_start %r" % (k, b["tok_start"]))
        check(b["tok_end"] == min(T, (k + 1) * block_size),
              "block %d tok_end %r" % (k, b["tok_end"]))
        check(b["model"] == r.sha and b["dim"] == r.C, "block %d header" % k)
        s = f32(b["surprisal"])
        check(len(s) == b["tok_end"] - b["tok_start"], "block %d: %d surprisals" % (k, len(s)))
        sur.extend(s)
        e = f32(b["embedding"])
        check(len(e) == r.C, "block %d embedding of %d floats" % (k, len(e)))
        last_tok = b["tok_end"] - 1
        if opts["pooling"] == "last" and last_tok in positions:
            d = max_abs_diff(e, r.hidden_row(positions[last_tok]))
            check(d <= r.tol_hidden, "block %d: ln_out at token %d differs by %g (tolerance %g)"
                  % (k, last_tok, d, r.tol_hidden))
            compared += 1
    check(len(sur) == T, "%d surprisals for %d tokens" % (len(sur), T))
    check(isnan(sur[0]), "token 0 surprisal is %r, expected NaN" % sur[0])
    worst, at = 0.0, -1
    for t in range(1, T):
        d = abs(sur[t] - r.sur[t - 1])
        if not d <= worst:
            worst, at = d, t
    check(worst <= r.tol_sur, "surprisal of token %d differs by %g (tolerance %g)"
          % (at, worst, r.tol_sur))
    check(abs(final["mean_surprisal"] - r.mean_sur) <= r.tol_sur,
          "mean_surprisal %r, fixture %r" % (final["mean_surprisal"], r.mean_sur))
    fe = f32(final["embedding"])
    if opts["pooling"] == "last" and not opts["normalize"]:
        d = max_abs_diff(fe, r.last)
        check(d <= r.tol_last, "final embedding differs from hidden_last by %g (tolerance %g)"
              % (d, r.tol_last))
        check(fe == f32(blocks[n_blocks - 1]["embedding"]), "final embedding != last block's")
    return compared
