"""`python bench/db_commands.py [--rounds N]`: what the embedded server charges for a perform's
MongoDB commands, per command, with and without the replica-set advertisement (its oplog).

Runs alone (not part of `python -m bench`). Each round starts two fresh SecantusDB servers
through `devstack.start_mongo`, `--standalone` (as the dev runner, the tests and the benchmarks
run it) and as a single-node replica set (the server's default: every write also goes to its
oplog), and times, from one client, the 13 commands a warm perform makes in the order it makes
them (the shapes of shared/jobs, shared/quota, shared/pool and shared/recordings, with a
~460 kB MP3 inline in the recording), 60 performs each; medians of the last 55. Rounds
alternate the two servers, so outside load falls on both.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PERFORMS, WARMUP = 60, 5
MP3_BYTES = 460 * 1024


def _perform_commands(db, user_oid, voice_oid, mp3: bytes):
    """(name, call) of one perform's commands, in order."""
    from bson import Binary

    from shared.clock import now

    job_id, ts, live = uuid.uuid4().hex, now(), {"$nin": ["succeeded", "failed"]}
    return [
        ("job insert", lambda: db.jobs.insert_one({"_id": job_id, "user_id": str(user_oid), "state": "queued",
                                                   "payload": {"topic": "x" * 40}, "seq": 1, "created_at": ts})),
        ("start update", lambda: db.jobs.update_one({"_id": job_id, "state": live}, {
            "$set": {"state": "running", "updated_at": ts}, "$inc": {"seq": 100, "attempts": 1},
            "$min": {"started_at": ts}})),
        ("start read", lambda: db.jobs.find_one({"_id": job_id})),
        ("user read", lambda: db.users.find_one({"_id": user_oid})),
        ("charge insert", lambda: db.charges.insert_one({"_id": job_id, "user_id": str(user_oid), "held": 500})),
        ("hold update", lambda: db.users.update_one({"_id": user_oid, "charged_jobs": {"$ne": job_id}}, {
            "$inc": {"charCount": 500}, "$push": {"charged_jobs": job_id}, "$set": {f"held.{job_id}": 500}})),
        ("note save", lambda: db.jobs.update_one({"_id": job_id, "work.note": {"$exists": False}},
                                                 {"$set": {"work.note": {"text": "y" * 600}}})),
        ("voice read", lambda: db.voices.find_one({"_id": voice_oid})),
        ("recording insert", lambda: db.recordings.insert_one({"job_id": job_id, "user_id": str(user_oid),
                                                               "audio": Binary(mp3), "text": "y" * 600,
                                                               "created_at": ts})),
        ("settle user", lambda: db.users.update_one({"_id": user_oid, f"held.{job_id}": {"$exists": True}}, {
            "$inc": {"charCount": -20, "charsUsedRaw": 480}, "$unset": {f"held.{job_id}": ""},
            "$set": {"last_perform_at": ts}})),
        ("settle charge", lambda: db.charges.update_one({"_id": job_id, "state": {"$exists": False}},
                                                        {"$set": {"state": "charged"}})),
        ("quota read", lambda: db.users.find_one({"_id": user_oid}, {"charCount": 1, "monthlyLimit": 1})),
        ("finish", lambda: db.jobs.update_one({"_id": job_id, "state": live}, {
            "$set": {"state": "succeeded", "result": {"text": "y" * 600}, "timings": {"storing": 0.01}},
            "$inc": {"seq": 100}})),
    ]


def one_server(standalone: bool) -> dict[str, float]:
    """Median ms per command over PERFORMS performs on a fresh server."""
    import pymongo
    from bson import ObjectId

    from cli import devstack
    from shared.bootstrap import ensure_indexes

    with tempfile.TemporaryDirectory(prefix="nv-dbcmd-") as tmp:
        proc, url = devstack.start_mongo(Path(tmp), standalone=standalone)
        client = pymongo.MongoClient(url, tz_aware=True)
        try:
            db = client["dbcommands"]
            ensure_indexes(db)
            user_oid = db.users.insert_one({"username_lower": "bench", "email": "bench@example.com",
                                            "charCount": 0, "monthlyLimit": 10**9, "charged_jobs": []}).inserted_id
            voice_oid = db.voices.insert_one({"user_id": str(user_oid), "state": "ready"}).inserted_id
            mp3 = os.urandom(MP3_BYTES)
            times: dict[str, list[float]] = {}
            for _ in range(PERFORMS):
                for name, call in _perform_commands(db, user_oid, voice_oid, mp3):
                    started = time.perf_counter()
                    call()
                    times.setdefault(name, []).append((time.perf_counter() - started) * 1000)
        finally:
            client.close()
            devstack.stop_process(proc)
    return {name: statistics.median(values[WARMUP:]) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    runs: dict[str, list[dict[str, float]]] = {"replica set (oplog)": [], "standalone": []}
    for _ in range(args.rounds):
        runs["replica set (oplog)"].append(one_server(standalone=False))
        runs["standalone"].append(one_server(standalone=True))
    names = [*runs["standalone"][0], "TOTAL"]
    print(f"{'ms (median per round)':22}" + "".join(f"{label:>26}" for label in runs))
    for name in names:
        cells = ["/".join(f"{sum(r.values()) if name == 'TOTAL' else r[name]:.2f}" for r in rounds)
                 for rounds in runs.values()]
        print(f"{name:22}" + "".join(f"{cell:>26}" for cell in cells))


if __name__ == "__main__":
    main()
