"""Benchmark: does the embedded MongoDB-wire server slow down as it ages?

`python bench/db_aging.py [--quick]` prints one JSON line. A fresh SecantusDB of its own (so
the other benchmarks never see an aged server) takes a job-like mix, insert + find by _id +
update by _id, from 8 threads, through the client URL the dev runner and the tests use
(`devstack.embedded_mongo_url`: retryable writes off). Ops/s over the first 5,000 operations
is compared with ops/s over the 5,000 after 50,000 (quick: after 15,000).

Baseline, in the same run: the same mix on a second fresh server as it runs without our
settings: advertised as a single-node replica set (SecantusDB's default; `devstack` starts it
`--standalone`) and with retryable writes on (pymongo's default). Every write then carries a
transaction number and lands in the server's retryable-write registry (what made the server
age), and an oplog entry.
Target: ours after the run within 15% of ours at the start.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

THREADS = 8
WINDOW = 5_000
TARGET_DROP = 0.15


def _ops_per_s(url: str, total_ops: int) -> tuple[float, float]:
    """(ops/s over the first WINDOW operations, ops/s over the last WINDOW)."""
    import pymongo

    client = pymongo.MongoClient(url, tz_aware=True)
    jobs = client["aging"]["jobs"]
    lock = threading.Lock()
    done = [0]
    marks: dict[int, float] = {}
    per_thread = total_ops // THREADS // 3

    def work(n: int) -> None:
        for i in range(per_thread):
            _id = f"{n}-{i}"
            jobs.insert_one({"_id": _id, "state": "queued", "seq": 1, "payload": {"topic": "x" * 80}})
            jobs.find_one({"_id": _id})
            jobs.update_one({"_id": _id}, {"$set": {"state": "running"}, "$inc": {"seq": 1}})
            with lock:
                done[0] += 3
                for mark in (WINDOW, total_ops - WINDOW, total_ops):
                    if mark not in marks and done[0] >= mark:
                        marks[mark] = time.perf_counter()

    started = time.perf_counter()
    threads = [threading.Thread(target=work, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    client.close()
    end = marks.get(total_ops, time.perf_counter())
    first = WINDOW / (marks[WINDOW] - started)
    last = WINDOW / (end - marks[total_ops - WINDOW])
    return first, last


def main() -> None:
    from cli import devstack

    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    total = 20_000 if args.quick else 55_000
    results = {}
    with tempfile.TemporaryDirectory(prefix="nv-aging-") as tmp:
        for name, retry_writes in (("ours", False), ("baseline", True)):
            # (pymongo sends no transaction numbers to a standalone server: retryable writes
            # need the replica-set advertisement too)
            proc, url = devstack.start_mongo(Path(tmp) / name, standalone=not retry_writes)
            try:
                if retry_writes:
                    url = url.replace("retryWrites=false", "retryWrites=true")
                results[name] = _ops_per_s(url, total)
            finally:
                devstack.stop_process(proc)
    (first, last), (base_first, base_last) = results["ours"], results["baseline"]
    print(json.dumps({
        "name": "db_aging",
        "value": round(last / first, 3),
        "baseline": round(base_last / base_first, 3),
        "ratio": round((last / first) / (base_last / base_first), 2),
        "unit": "ops/s late / early",
        "target": f"ops/s after {total - WINDOW:,} operations within {TARGET_DROP:.0%} of the first {WINDOW:,}",
        "met": last >= first * (1 - TARGET_DROP),
        "ops": total, "ours_ops_s": [round(first), round(last)], "baseline_ops_s": [round(base_first), round(base_last)],
    }))


if __name__ == "__main__":
    main()
