"""synth_log.py — a synthetic application log with injected anomalies of
known kinds, for the segment anomaly-detection test (and `make bench`).

Lines come from a few dozen templates with random fields (timestamps that
move forward, levels, ids, IPs, paths, durations).  After a warm-up, single
anomalous lines are injected at random places:
  random     uniformly random printable ASCII (like a corrupted base64 field)
  binary     random bytes 0x00..0xFF except the newline
  unseen     a well-formed line from a template never used elsewhere
  truncated  a normal line cut off part-way
Deterministic for a given seed.  generate() returns (bytes, kinds) where
kinds[i] is the kind of line i (None for normal lines).
"""
import random

USERS = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"]
PATHS = ["/api/v1/items", "/api/v1/users", "/login", "/logout", "/static/app.js",
         "/api/v2/orders", "/health", "/metrics", "/api/v1/search"]
SERVICES = ["auth", "billing", "search", "gateway", "worker", "scheduler"]

TEMPLATES = [
    "{ts} I [{svc}] {method} {path} {ip} 200 {ms}ms",
    "{ts} I [{svc}] {method} {path} {ip} 304 {ms}ms",
    "{ts} W [{svc}] {method} {path} {ip} 404 {ms}ms",
    "{ts} I [auth] user {user} logged in from {ip}",
    "{ts} I [auth] user {user} logged out after {n} s",
    "{ts} W [auth] failed login for user {user} from {ip} ({n} attempts)",
    "{ts} D [worker] job {hex} picked up by worker-{d}",
    "{ts} D [worker] job {hex} finished in {ms} ms",
    "{ts} I [scheduler] queued {n} jobs, {d} workers idle",
    "{ts} I [billing] invoice {hex} created for user {user}: {n}.{d}{d} EUR",
    "{ts} I [billing] payment {hex} accepted",
    "{ts} W [billing] payment {hex} retried ({d}/5)",
    "{ts} I [search] query took {ms} ms, {n} hits",
    "{ts} D [search] cache hit ratio 0.{d}{d}",
    "{ts} I [gateway] upstream {svc} healthy",
    "{ts} W [gateway] upstream {svc} slow: p99 {ms} ms",
    "{ts} I [db] pool size {d}{d}, in use {d}",
    "{ts} D [db] query {hex} rows={n} time={ms}ms",
    "{ts} I [cache] evicted {n} keys",
    "{ts} I [cache] memory {n} MB of 4096 MB",
    "{ts} E [{svc}] timeout talking to {svc} after {ms} ms",
    "{ts} I [{svc}] config reloaded (version {d}.{d}.{d})",
    "{ts} D [{svc}] gc pause {ms} ms",
    "{ts} I [mail] sent message {hex} to {user}@example.com",
    "{ts} I [storage] wrote {n} bytes to bucket logs-{d}",
    "{ts} I [storage] read {n} bytes from bucket logs-{d}",
    "{ts} D [session] session {hex} renewed for {user}",
    "{ts} I [cron] task cleanup-{d} started",
    "{ts} I [cron] task cleanup-{d} done, removed {n} files",
    "{ts} W [disk] /var usage {d}{d}%",
]
UNSEEN = "{ts} C [kernel] page fault at address 0x{hex}{hex} in module {svc}.ko, tainted"
KINDS = ("random", "binary", "unseen", "truncated")


def _fields(rng, t):
    return {
        "ts": "%02d:%02d:%02d" % (t // 3600 % 24, t // 60 % 60, t % 60),
        "svc": rng.choice(SERVICES), "method": rng.choice(["GET", "GET", "POST", "PUT"]),
        "path": rng.choice(PATHS), "user": rng.choice(USERS),
        "ip": "10.%d.%d.%d" % (rng.randrange(4), rng.randrange(256), rng.randrange(256)),
        "ms": str(int(rng.expovariate(1 / 40.0)) + 1), "n": str(rng.randrange(1, 5000)),
        "d": str(rng.randrange(10)), "hex": "%08x" % rng.getrandbits(32),
    }


def normal_line(rng, t):
    return rng.choice(TEMPLATES).format(**_fields(rng, t)).encode()


def generate(n_lines=50000, n_each=20, warmup=2000, seed=1):
    rng = random.Random(seed)
    spots = rng.sample(range(warmup, n_lines), n_each * len(KINDS))
    kind_at = {s: KINDS[i // n_each] for i, s in enumerate(spots)}
    lines, kinds, t = [], [], 0
    for i in range(n_lines):
        t += rng.randrange(3)
        k = kind_at.get(i)
        if k is None:
            ln = normal_line(rng, t)
        elif k == "random":
            ln = bytes(rng.randrange(33, 127) for _ in range(rng.randrange(40, 90)))
        elif k == "binary":
            ln = bytes(b for b in (rng.randrange(256) for _ in range(rng.randrange(40, 90)))
                       if b != 10)
        elif k == "unseen":
            ln = UNSEEN.format(**_fields(rng, t)).encode()
        else:
            full = normal_line(rng, t)
            ln = full[:rng.randrange(8, len(full) // 2)]
        lines.append(ln)
        kinds.append(k)
    return b"\n".join(lines) + b"\n", kinds
