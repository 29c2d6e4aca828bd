#!/usr/bin/python3
"""test_daemon_control.py — the control socket, /metrics and signals.

PROTOCOL.md §6: every field of `status` with its type, and every reason of
§7 counted (the list is read from PROTOCOL.md itself, so the test follows
the contract); `resume` for a document in memory, on disk and unknown;
`checkpoint` of one, of all, of an unknown document; `drop` and reuse of the
id; `health`; REQ and DEALER (with and without the empty delimiter)
envelopes, `id` echoed; refused requests.  /metrics over HTTP on a port
found free by binding port 0 first: every name listed in daemon/metrics.h
is there and agrees with `status`.  SIGTERM: exit status 0 and every
document with unsaved progress checkpointed (resume after the restart gives
what it gave before).  SIGHUP: the log file is reopened (logrotate).
"""
import os
import re
import signal
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "support"))
import msgpack
import zmq
from rwkvd_harness import (ASAN_BIN, REL_BIN, REPO, Daemon, TestFailure, Work, check, collect_docs, free_tcp_port,
                           ingest, pack, run_cases, tiny_text, unpack, without_inc, _CTX)

BLOCK = 64
OPTS = {"outputs": ["embedding", "surprisal"], "pooling": "mean", "normalize": False}


def protocol_reasons():
    text = open(os.path.join(REPO, "daemon", "PROTOCOL.md")).read()
    sec = text[text.index("## 7. Reason codes"):text.index("## 8.")]
    reasons = re.findall(r"^\| `([a-z0-9_]+)` +\|", sec, re.M)
    check(len(reasons) > 20, "could not read the reason codes from PROTOCOL.md")
    return reasons


def metric_names():
    text = open(os.path.join(REPO, "daemon", "metrics.h")).read()
    head = text[:text.index("#ifndef")]
    names = set(re.findall(r"\b(rwkvd_[a-z_]+)", head))
    check(len(names) >= 14, "could not read the metric names from daemon/metrics.h")
    return names


def is_num(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def check_status(st, d):
    check(st.get("v") == 1 and st.get("ok") is True and st.get("cmd") == "status", "status %r" % st)
    m = st["model"]
    check(re.fullmatch(r"[0-9a-f]{64}", m["sha256"]), "model.sha256 %r" % m["sha256"])
    check(m["path"] == d.model, "model.path %r" % m["path"])
    check(isinstance(m["generation"], str) and m["generation"], "model.generation %r" % m)
    check(m["n_layer"] == 12 and m["dim"] == 64 and m["vocab"] == 256 and m["state_floats"] == 50688,
          "model shape %r" % m)
    check(isinstance(m["tokenizer"], str), "model.tokenizer %r" % m)
    check(st["device"] == "cpu" and st["block_size"] == BLOCK, "device/block_size %r" % st)
    check(st["precision"] == "fp32", "precision %r" % st.get("precision"))
    check(isinstance(st["uptime_s"], float) and st["uptime_s"] >= 0, "uptime_s %r" % st["uptime_s"])
    for grp, keys in (("docs", ("active", "on_disk", "max_active", "finished_total")),
                      ("queues", ("held", "ingest", "emit")),
                      ("checkpoints", ("total", "failures_total"))):
        for k in keys:
            check(is_int(st[grp][k]) and st[grp][k] >= 0, "%s.%s = %r" % (grp, k, st[grp].get(k)))
    check(is_num(st["checkpoints"]["seconds_sum"]), "checkpoints.seconds_sum")
    for k in ("messages_total", "tokens_total", "blocks_total"):
        check(is_int(st[k]) and st[k] >= 0, "%s = %r" % (k, st.get(k)))
    check(is_num(st["tokens_per_s"]) and st["tokens_per_s"] >= 0, "tokens_per_s %r" % st["tokens_per_s"])
    want = [r for r in protocol_reasons() if r != "ok"]
    check(sorted(st["rejected"]) == sorted(want), "rejected keys %r, PROTOCOL.md %r"
          % (sorted(st["rejected"]), sorted(want)))
    check(all(is_int(v) for v in st["rejected"].values()), "rejected values")


def parse_metrics(body):
    vals = {}
    for line in body.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r'([a-z_]+)(\{[^}]*\})? (\S+)', line)
        check(m, "bad exposition line %r" % line)
        vals[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return vals


def wait_blocks(pull, doc, last, d, timeout=60):
    end = time.time() + timeout
    got = {}
    while last not in got:
        check(time.time() < end, "timed out waiting for %s block %d" % (doc, last))
        if pull.poll(500):
            out = unpack(pull.recv())
            check(out["type"] != "error", "error %r" % out)
            if out["type"] == "block" and out["doc"] == doc:
                got[out["block"]] = out
        else:
            d.check_running()
    return got


def control_and_metrics(binary):
    text = tiny_text()
    with Work() as w:
        port = free_tcp_port()
        d = Daemon(w, binary=binary, args=["--block-size", str(BLOCK), "--checkpoint-blocks", "0",
                            "--checkpoint-seconds", "0", "--metrics-port", str(port),
                            "--max-active-docs", "8", "--linger-ms", "100"]).start()
        h = d.call(cmd="health", id=7)
        check(h.get("ok") and h.get("status") == "ok" and h.get("id") == 7 and h.get("cmd") == "health"
              and isinstance(h.get("uptime_s"), float), "health %r" % h)
        check_status(d.call(cmd="status"), d)
        pull, push = d.pull(), d.push()

        # a document in memory
        push.send(ingest("mem", 0, text[:1000], opts=OPTS))
        wait_blocks(pull, "mem", 14, d)
        r = d.call(cmd="resume", doc="mem", id="r1")
        check(r.get("ok") and r.get("id") == "r1" and r["doc"] == "mem" and r["known"] is True
              and r["where"] == "memory" and r["next_seq"] == 1 and r["tokens"] == 1000
              and r["blocks"] == 15 and r["finished"] is False, "resume in memory: %r" % r)
        # unknown
        r = d.call(cmd="resume", doc="nobody")
        check(r.get("ok") and r["known"] is False and r["next_seq"] == 0 and r["where"] == "none",
              "resume unknown: %r" % r)
        # checkpoint: named, unknown, all
        r = d.call(cmd="checkpoint", doc="mem")
        check(r.get("ok") and r["written"] == 1 and r["failed"] == 0 and is_num(r["seconds"]),
              "checkpoint mem: %r" % r)
        check(os.path.isfile(os.path.join(d.state_dir, "d-6d656d.ckpt")), "no checkpoint file for mem")
        r = d.call(cmd="checkpoint", doc="nobody")
        check(r.get("ok") is False and r.get("reason") == "unknown_doc", "checkpoint unknown: %r" % r)
        push.send(ingest("mem", 1, text[1000:1100]))
        wait_blocks(pull, "mem", 16, d)
        r = d.call(cmd="checkpoint")
        check(r.get("ok") and r["written"] == 1 and r["failed"] == 0, "checkpoint all: %r" % r)
        r = d.call(cmd="checkpoint")
        check(r.get("ok") and r["written"] == 0, "checkpoint all, nothing unsaved: %r" % r)
        # a finished document lives on disk
        push.send(ingest("fin", 0, text[:300], eof=True, opts=OPTS))
        res = collect_docs(pull, ["fin"], daemon=d)["fin"]
        r = d.call(cmd="resume", doc="fin")
        check(r.get("ok") and r["known"] and r["where"] == "disk" and r["finished"] is True
              and r["next_seq"] == 1 and r["tokens"] == 300 and r["blocks"] == 5,
              "resume finished/disk: %r" % r)
        # drop, then reuse the id
        r = d.call(cmd="drop", doc="fin")
        check(r.get("ok") and r["dropped"] is True and r["doc"] == "fin", "drop: %r" % r)
        # only the incarnation number stays (PROTOCOL.md §8.4)
        check([f for f in os.listdir(d.state_dir) if f.startswith("d-66696e")] == ["d-66696e.inc"],
              "drop left files: %r" % os.listdir(d.state_dir))
        r = d.call(cmd="resume", doc="fin")
        check(r.get("ok") and r["known"] is False, "resume after drop: %r" % r)
        r = d.call(cmd="drop", doc="fin")
        check(r.get("ok") and r["dropped"] is False, "drop again (idempotent): %r" % r)
        push.send(ingest("fin", 0, text[:100], eof=True, opts=OPTS))
        res2 = collect_docs(pull, ["fin"], daemon=d)["fin"]
        check(res2["final"]["tokens"] == 100 and res2["final"]["blocks"] == 2,
              "reused id: final %r" % res2["final"])
        check(unpack(res2["raw"][0]).get("inc") == 1 and without_inc(res2["raw"][0]) == res["raw"][0],
              "reused id: block 0 differs from the first use but for inc 1")

        # envelopes: DEALER without and with the empty delimiter; refusals
        dealer = _CTX.socket(zmq.DEALER)
        dealer.setsockopt(zmq.LINGER, 0)
        dealer.connect(d.control_ep)
        dealer.send(pack({"v": 1, "cmd": "health", "id": 1}))
        dealer.send_multipart([b"", pack({"v": 1, "cmd": "health", "id": 2})])
        replies = {}
        for _ in range(2):
            check(dealer.poll(5000), "no DEALER reply")
            frames = dealer.recv_multipart()
            rep = unpack(frames[-1])
            replies[rep["id"]] = (frames[:-1], rep)
        check(replies[1][0] == [] and replies[1][1]["ok"], "DEALER without delimiter: %r" % (replies[1],))
        check(replies[2][0] == [b""] and replies[2][1]["ok"], "DEALER with delimiter: %r" % (replies[2],))
        dealer.close(0)
        for req, reason in (({"v": 1, "cmd": "frobnicate"}, "unknown_cmd"),
                            ({"v": 1, "cmd": "status", "doc": "x"}, "unknown_field"),
                            ({"v": 1, "doc": "x"}, "missing_field"),
                            ({"v": 1, "cmd": "resume"}, "missing_field"),
                            ({"v": 2, "cmd": "health"}, "bad_version"),
                            ({"v": 1, "cmd": "health", "extra": 1}, "unknown_field")):
            r = d.ctl(req)
            check(r.get("ok") is False and r.get("reason") == reason and r.get("message"),
                  "request %r: reply %r, expected %s" % (req, r, reason))
        req = _CTX.socket(zmq.REQ)
        req.setsockopt(zmq.LINGER, 0)
        req.connect(d.control_ep)
        req.send(b"\xc1garbage")
        check(req.poll(5000), "no reply to garbage")
        r = unpack(req.recv())
        check(r.get("ok") is False and r.get("reason") == "malformed", "garbage: %r" % r)
        req.close(0)

        # /metrics agrees with status (both read the same snapshot when idle)
        st = d.call(cmd="status")
        check_status(st, d)
        body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10).read().decode()
        vals = parse_metrics(body)
        present = {k.split("{")[0] for k in vals}
        present |= {k[:-4] for k in present if k.endswith("_sum")}
        missing = metric_names() - present
        check(not missing, "/metrics lacks %r" % sorted(missing))
        pairs = [("rwkvd_tokens_total", st["tokens_total"]),
                 ("rwkvd_blocks_total", st["blocks_total"]),
                 ("rwkvd_messages_total", st["messages_total"]),
                 ("rwkvd_docs_active", st["docs"]["active"]),
                 ("rwkvd_docs_on_disk", st["docs"]["on_disk"]),
                 ("rwkvd_docs_max_active", st["docs"]["max_active"]),
                 ("rwkvd_docs_finished_total", st["docs"]["finished_total"]),
                 ("rwkvd_held_messages", st["queues"]["held"]),
                 ('rwkvd_queue_messages{queue="ingest"}', st["queues"]["ingest"]),
                 ('rwkvd_queue_messages{queue="emit"}', st["queues"]["emit"]),
                 ("rwkvd_checkpoint_seconds_count", st["checkpoints"]["total"]),
                 ("rwkvd_checkpoint_failures_total", st["checkpoints"]["failures_total"])]
        pairs += [('rwkvd_rejected_total{reason="%s"}' % r, c) for r, c in st["rejected"].items()]
        bad = [(k, vals.get(k), v) for k, v in pairs if vals.get(k) != v]
        check(not bad, "/metrics disagrees with status: %r" % bad)
        check(abs(vals["rwkvd_checkpoint_seconds_sum"] - st["checkpoints"]["seconds_sum"]) < 1e-9,
              "checkpoint seconds")
        check(st["messages_total"] == 4 and st["docs"]["finished_total"] == 2
              and st["rejected"]["unknown_doc"] == 1 and st["rejected"]["unknown_cmd"] == 1,
              "status counts: messages %r, docs %r, rejected %r"
              % (st["messages_total"], st["docs"], {k: v for k, v in st["rejected"].items() if v}))
        check(any(k.startswith("rwkvd_build_info{") and st["model"]["sha256"] in k for k in vals),
              "build_info without the model sha256")
        try:
            urllib.request.urlopen("http://127.0.0.1:%d/nothing" % port, timeout=10)
            raise TestFailure("/nothing answered 200")
        except urllib.error.HTTPError as e:
            check(e.code == 404, "/nothing: HTTP %d" % e.code)

        # PROTOCOL.md §6: exactly one reply per request
        r = d.call(cmd="frobnicate", id=7)
        check(r.get("reason") == "unknown_cmd" and r.get("cmd") == "frobnicate" and r.get("id") == 7,
              "unknown cmd not echoed: %r" % r)
        r = d.call(cmd="x" * 33)
        check(r.get("reason") == "unknown_cmd" and "cmd" not in r, "over-long cmd echoed: %r" % r)
        for bad in ({"v": 1, "cmd": "health", "id": [1]}, {"v": 1, "cmd": ["health"]},
                    {"v": 1, "cmd": "health", "doc": {}}, {"v": 1, "cmd": "health", "id": []}):
            r = d.ctl(bad)
            check(r.get("ok") is False and r.get("reason") == "too_deep", "nested %r: %r" % (bad, r))
        for size in (70000, 1 << 20):  # both above ZeroMQ's old 69,632-byte drop
            r = d.ctl({"cmd": "health", "pad": "p" * size})
            check(r.get("ok") is False and r.get("reason") == "too_large" and "65536" in r["message"],
                  "%d-byte request: %r" % (size, r))
        check(d.call(cmd="health").get("status") == "ok", "health after the refused requests")

        # SIGTERM: exit 0, unsaved progress checkpointed
        push.send(ingest("term", 0, text[:700], opts=OPTS))
        push.send(ingest("term", 1, text[700:1330]))
        wait_blocks(pull, "term", 19, d)
        before = d.call(cmd="resume", doc="term")
        check(before["where"] == "memory" and before["next_seq"] == 2 and before["tokens"] == 1330,
              "resume before SIGTERM: %r" % before)
        mem_before = d.call(cmd="resume", doc="mem")
        pull.close(0)
        push.close(0)
        d.stop()
        check("stopped" in d.log_text(), "no stop line in the log")
        d.start()
        after = d.call(cmd="resume", doc="term")
        for k in ("known", "next_seq", "tokens", "blocks", "finished"):
            check(after[k] == before[k], "after SIGTERM and restart %s = %r, before %r"
                  % (k, after[k], before[k]))
        check(after["where"] == "disk", "after restart: %r" % after)
        mem_after = d.call(cmd="resume", doc="mem")
        check((mem_after["next_seq"], mem_after["blocks"]) == (mem_before["next_seq"], mem_before["blocks"]),
              "mem after restart %r, before %r" % (mem_after, mem_before))
        st = d.call(cmd="status")
        check(st["docs"]["on_disk"] == 3 and st["docs"]["active"] == 0, "status after restart %r"
              % st["docs"])

        # SIGHUP: the log is reopened
        rotated = d.log_file + ".1"
        os.rename(d.log_file, rotated)
        d.proc.send_signal(signal.SIGHUP)
        end = time.time() + 10
        while not os.path.exists(d.log_file):
            check(time.time() < end, "SIGHUP: no new log file")
            time.sleep(0.05)
        while "SIGHUP" not in d.log_text():
            check(time.time() < end, "SIGHUP: nothing logged to the new file")
            time.sleep(0.05)
        check("starting" in open(rotated).read(), "the rotated log lost its lines")
        check(d.call(cmd="health").get("status") == "ok", "health after SIGHUP")
        d.stop()


if __name__ == "__main__":
    run_cases([
        ("control commands, /metrics, SIGTERM, SIGHUP (rel)", lambda: control_and_metrics(REL_BIN), "rel"),
        ("control commands, /metrics, SIGTERM, SIGHUP (asan)", lambda: control_and_metrics(ASAN_BIN),
         "asan"),
    ])
