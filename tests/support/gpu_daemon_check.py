#!/usr/bin/python3
"""gpu_daemon_check.py — the daemon on a CUDA device, a part of `make
gpu-check` (tests/gpu_check.sh); not run by `make test` (it needs a device).

rwkvd --device cuda:0 takes the first half of the GPL-3 fixture document
(block size 64, surprisal and ln_out of each block's last token), is
stopped with SIGTERM once 31 blocks are out (every document is
checkpointed on the way down), and a daemon with --device cpu on the same
state directory resumes the document from that checkpoint and finishes it.
So a state written by the CUDA backend must be one the CPU engine carries
on from.  All outputs, the GPU's blocks and the CPU's, are compared with the
official fixtures:
  fp32 (RWKV_CUDA_PRECISION=fp32): the manifest's tolerances, through the
       end-to-end tests' own check (fixture_check.check_doc);
  bf16 (the default): the statistical bound of the CUDA issue, max 8% and
       mean 1% of the reference std — surprisal against twice the logits'
       std (the manifest derives its fp32 surprisal bound the same way, as
       twice the logits bound), ln_out against the hidden states' std.
The figures go to stdout as '#' lines; each case prints PASS:/FAIL:.
Arguments: case filters (fp32, bf16).  RWKVD_TEST_GPU_ON_CPU=1 (developer
aid, as in tests/support/gpu_harness.h) runs the "GPU" daemon with --device
cpu, which checks this script's own flow on a machine without a GPU."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture_check import RAW, Ref, check_doc
from rwkvd_harness import (Daemon, Work, check, chunks_at, collect_docs, f32, ingest, isnan,
                           run_cases, send_doc, unpack)

BLOCK = 64
ARGS = ["--block-size", str(BLOCK), "--checkpoint-blocks", "0", "--checkpoint-seconds", "0",
        "--linger-ms", "100"]
CUTS = [1000, 2000, 3000]      # four messages; the GPU daemon gets the first two
GPU_BLOCKS = 2000 // BLOCK     # blocks complete after the first two messages
DOC = "gpu-doc"
DEVICE = "cpu" if os.environ.get("RWKVD_TEST_GPU_ON_CPU") == "1" else "cuda:0"
MAX_FRAC, MEAN_FRAC = 0.08, 0.01


def figures(r, res):
    """(surprisal max, mean |diff|), (ln_out max, mean |diff|, positions)."""
    T = len(r.text)
    sur = []
    for k in sorted(res["blocks"]):
        sur.extend(f32(res["blocks"][k]["surprisal"]))
    check(len(sur) == T, "%d surprisals for %d tokens" % (len(sur), T))
    check(isnan(sur[0]), "token 0 surprisal %r, expected NaN" % sur[0])
    d = [abs(sur[t] - r.sur[t - 1]) for t in range(1, T)]
    check(all(x == x for x in d), "a surprisal is NaN")
    positions = {p: i for i, p in enumerate(r.pos)}
    hd = []
    for k, b in res["blocks"].items():
        last = b["tok_end"] - 1
        if last in positions:
            e, ref_row = f32(b["embedding"]), r.hidden_row(positions[last])
            hd.extend(abs(x - y) for x, y in zip(e, ref_row))
    check(hd, "no block ends at a fixture hidden position")
    return (max(d), sum(d) / len(d)), (max(hd), sum(hd) / len(hd), len(hd) // r.C)


def gpu_then_cpu(precision):
    r = Ref()
    os.environ["RWKV_CUDA_PRECISION"] = precision
    try:
        with Work() as w:
            g = Daemon(w, args=ARGS + ["--device", DEVICE], tag="gpu").start(timeout=120)
            parts = chunks_at(r.text, CUTS)
            push, pull = g.push(), g.pull()
            for i in range(2):
                push.send(ingest(DOC, i, parts[i], opts=RAW if i == 0 else None))
            gpu_out = {}
            while len(gpu_out) < GPU_BLOCKS:
                check(pull.poll(120000), DEVICE + ": %d of %d blocks within 120 s: %s"
                      % (len(gpu_out), GPU_BLOCKS, g.stderr_tail()))
                raw = pull.recv()
                out = unpack(raw)
                check(out.get("type") == "block", "%s sent %r" % (DEVICE, out))
                gpu_out[out["block"]] = raw
            push.close(0)
            pull.close(0)
            g.stop()  # SIGTERM: the document is checkpointed
            c = Daemon(w, state_dir=g.state_dir, args=ARGS + ["--device", "cpu"], tag="cpu",
                       threads=max(1, min(8, os.cpu_count() or 1))).start()
            rs = c.call(cmd="resume", doc=DOC)
            check(rs.get("known") and rs.get("next_seq") == 2, "resume on the CPU: %r" % (rs,))
            push, pull = c.push(), c.pull()
            send_doc(push, DOC, parts[2:], start_seq=2)
            rest = collect_docs(pull, [DOC], timeout=600, daemon=c)[DOC]
            push.close(0)
            pull.close(0)
            c.stop()
    finally:
        os.environ.pop("RWKV_CUDA_PRECISION", None)
    # the resumed daemon sends the checkpointed blocks again, from the
    # checkpoint: byte for byte what the GPU sent
    for k, raw in gpu_out.items():
        check(k not in rest["raw"] or rest["raw"][k] == raw,
              "block %d sent again after the resume with other bytes" % k)
    blocks = dict(rest["blocks"])
    blocks.update((k, unpack(raw)) for k, raw in gpu_out.items())
    n_gpu = rs["blocks"]
    check(n_gpu == GPU_BLOCKS, "the checkpoint holds %d blocks, expected %d" % (n_gpu, GPU_BLOCKS))
    res = {"blocks": blocks, "final": rest["final"]}
    (smax, smean), (hmax, hmean, npos) = figures(r, res)
    lstd = [f for f in r.man["files"] if f["file"] == "logits.f32"][0]["tolerance"]["reference_std"]
    hstd = [f for f in r.man["files"]
            if f["file"] == "hidden_at_positions.f32"][0]["tolerance"]["reference_std"]
    if precision == "fp32":
        bounds = "manifest: surprisal %.3g, ln_out %.3g" % (r.tol_sur, r.tol_hidden)
    else:
        bounds = ("bf16: surprisal max %.3g mean %.3g, ln_out max %.3g mean %.3g"
                  % (2 * MAX_FRAC * lstd, 2 * MEAN_FRAC * lstd, MAX_FRAC * hstd, MEAN_FRAC * hstd))
    print("# daemon %s %s -> checkpoint -> cpu: %d blocks from the GPU, %d from the CPU; "
          "surprisal max %.3e mean %.3e; ln_out (%d positions) max %.3e mean %.3e; bounds %s"
          % (DEVICE, precision, n_gpu, len(blocks) - n_gpu, smax, smean, npos, hmax, hmean, bounds),
          flush=True)
    if precision == "fp32":
        check_doc(r, res, BLOCK, RAW)
    else:
        check(smax <= 2 * MAX_FRAC * lstd and smean <= 2 * MEAN_FRAC * lstd,
              "bf16 surprisal max %g mean %g beyond the bound" % (smax, smean))
        check(hmax <= MAX_FRAC * hstd and hmean <= MEAN_FRAC * hstd,
              "bf16 ln_out max %g mean %g beyond the bound" % (hmax, hmean))


def test_daemon_cuda_fp32_resumed_on_cpu():
    gpu_then_cpu("fp32")


def test_daemon_cuda_bf16_resumed_on_cpu():
    gpu_then_cpu("bf16")


if __name__ == "__main__":
    run_cases([("test_daemon_cuda_fp32_resumed_on_cpu", test_daemon_cuda_fp32_resumed_on_cpu),
               ("test_daemon_cuda_bf16_resumed_on_cpu", test_daemon_cuda_bf16_resumed_on_cpu)])
