#!/usr/bin/python3
"""test_daemon_many.py — 1000 documents at once with --max-active-docs 50.

Every document sends its first half, then (after all 1000 first halves) its
second half with eof, so nearly every document is evicted to disk between
its two messages and loaded back for the second (PROTOCOL.md §8.1: "an
evicted or finished document costs no memory").  All 1000 must complete:
one final each, every block 0..n-1 exactly once with the right token range,
`status` never showing more than 50 documents in memory and at the end 1000
documents on disk, the daemon's RSS bounded.  A sample of documents is then
run again one at a time on a fresh daemon: eviction and reloading must not
change a single output byte.
"""
import os
import random
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "support"))
from rwkvd_harness import (ASAN_BIN, REL_BIN, Daemon, TestFailure, Work, check, collect_docs,
                           ingest, run_cases, tiny_text, unpack)

N_DOCS = 1000
MAX_ACTIVE = 50


def doc_text(i):
    text = tiny_text()
    start = (i * 37) % 3000
    return text[start:start + 60 + i % 70]


def thousand_docs(BLOCK, binary=REL_BIN, N_DOCS=N_DOCS):
    """BLOCK 32: documents are evicted with partial blocks pending; BLOCK 256
    (more than any document): evicted with only an eof-ready last block.
    Under ASan the RSS bound is not checked: its quarantine keeps up to
    256 MB of freed memory on purpose."""
    ARGS = ["--block-size", str(BLOCK), "--max-active-docs", str(MAX_ACTIVE), "--linger-ms", "100"]
    docs = ["doc-%04d" % i for i in range(N_DOCS)]
    with Work() as w:
        d = Daemon(w, binary=binary, args=ARGS).start()
        rss_start = d.rss_kb()
        pull = d.pull()
        push = d.push()
        t0 = time.time()
        for i, doc in enumerate(docs):
            t = doc_text(i)
            push.send(ingest(doc, 0, t[:len(t) // 2]))
        for i, doc in enumerate(docs):
            t = doc_text(i)
            push.send(ingest(doc, 1, t[len(t) // 2:], eof=True))
        res = {doc: {"blocks": {}, "final": None, "raw": {}} for doc in docs}
        left = set(docs)
        rss_max = 0
        active_max = 0
        last_poll = 0
        last_out = time.time()
        end = time.time() + 150
        while left:
            if time.time() > end or time.time() - last_out > 10:
                st = d.call(cmd="status")
                raise TestFailure("%d documents never finished (e.g. %r), no output for %.0f s; "
                                  "status docs %r, messages %r, blocks %r, queues %r"
                                  % (len(left), sorted(left)[:5], time.time() - last_out,
                                     st["docs"], st["messages_total"], st["blocks_total"],
                                     st["queues"]))
            if time.time() - last_poll > 0.5:
                last_poll = time.time()
                d.check_running()
                rss_max = max(rss_max, d.rss_kb())
                st = d.call(cmd="status")
                active_max = max(active_max, st["docs"]["active"])
            if not pull.poll(200):
                continue
            raw = pull.recv()
            last_out = time.time()
            out = unpack(raw)
            check(out["type"] in ("block", "final"), "unexpected output %r" % out)
            r = res[out["doc"]]
            if out["type"] == "block":
                check(out["block"] not in r["blocks"], "%s block %d twice" % (out["doc"], out["block"]))
                r["blocks"][out["block"]] = out
                r["raw"][out["block"]] = raw
            else:
                check(r["final"] is None, "%s: two finals" % out["doc"])
                r["final"] = out
                r["raw"]["final"] = raw
                left.discard(out["doc"])
        secs = time.time() - t0
        for i, doc in enumerate(docs):
            n = len(doc_text(i))
            nb = (n + BLOCK - 1) // BLOCK
            r = res[doc]
            f = r["final"]
            check(f["tokens"] == n and f["blocks"] == nb, "%s: final %r tokens / %r blocks, "
                  "expected %d / %d" % (doc, f["tokens"], f["blocks"], n, nb))
            check(sorted(r["blocks"]) == list(range(nb)), "%s: blocks %r" % (doc, sorted(r["blocks"])))
            for k, b in r["blocks"].items():
                check(b["tok_start"] == k * BLOCK and b["tok_end"] == min(n, (k + 1) * BLOCK),
                      "%s block %d: tokens %d..%d" % (doc, k, b["tok_start"], b["tok_end"]))
        st = d.call(cmd="status")
        check(st["docs"]["on_disk"] == N_DOCS, "status docs %r, expected %d on disk"
              % (st["docs"], N_DOCS))
        check(st["docs"]["finished_total"] == N_DOCS and st["docs"]["active"] <= MAX_ACTIVE,
              "status docs %r" % st["docs"])
        check(st["docs"]["max_active"] == MAX_ACTIVE, "status docs %r" % st["docs"])
        check(active_max <= MAX_ACTIVE, "%d documents in memory at once" % active_max)
        check(st["checkpoints"]["failures_total"] == 0, "checkpoint failures %r" % st["checkpoints"])
        check(binary == ASAN_BIN or rss_max < rss_start + 100 * 1024,
              "RSS reached %d kB (%d kB at start)" % (rss_max, rss_start))
        files = [f for f in os.listdir(d.state_dir) if f.endswith(".ckpt")]
        check(len(files) == N_DOCS, "%d checkpoint files for %d documents" % (len(files), N_DOCS))
        push.close(0)
        pull.close(0)
        d.stop()
        print("%d docs: %.1f s, RSS %d kB at start, %d kB max, at most %d documents in memory"
              % (N_DOCS, secs, rss_start, rss_max, active_max), flush=True)

        # eviction changed nothing: a sample, alone, on a fresh daemon
        d2 = Daemon(w, state_dir=os.path.join(w, "state2"), binary=binary, args=ARGS,
                    tag="alone").start()
        pull, push = d2.pull(), d2.push()
        sample = random.Random(4).sample(range(N_DOCS), 12)
        for i in sample:
            t = doc_text(i)
            push.send(ingest(docs[i], 0, t, eof=True))
            alone = collect_docs(pull, [docs[i]], timeout=60, daemon=d2)[docs[i]]
            check(alone["raw"] == res[docs[i]]["raw"], "%s: outputs differ from the run alone"
                  % docs[i])
        push.close(0)
        pull.close(0)
        d2.stop()


if __name__ == "__main__":
    run_cases([
        ("1000 documents, 50 in memory, block 32: all complete, eviction invisible",
         lambda: thousand_docs(32)),
        ("1000 documents, 50 in memory, block 256: all complete, eviction invisible",
         lambda: thousand_docs(256)),
        # eviction and reloading under the sanitizers, on fewer documents
        ("300 documents, 50 in memory, block 32, under ASan/UBSan: all complete, eviction "
         "invisible", lambda: thousand_docs(32, ASAN_BIN, 300), "asan"),
    ])
