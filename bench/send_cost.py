"""Benchmark: what one enqueue costs the API, with and without Celery's "task-sent" event.

`python bench/send_cost.py [--quick]` prints one JSON line. A Redis of its own is the broker;
the API's producer (`shared.jobs.celery_app.producer_for`, the very call `JobStore.enqueue`
makes, `ignore_result=True`) sends N messages with `task_send_sent_event` on (our setting, which
lets Flower show tasks as soon as they are sent) and N with it off (the baseline), interleaved
in rounds so that the machine's load hits both alike. Measured: CPU seconds of this process
per send, and Redis commands per send, counted on the server (`INFO commandstats` before and
after each round; kombu's client is not redis-py's connection we could count in-process).

The decision it informed: the event doubled the cost of an enqueue, so the API no longer sends
it (celeryconfig.py). Value: our setting (no event); baseline: with the event.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _server_calls(r) -> int:
    return sum(v["calls"] for k, v in r.info("commandstats").items())


def main() -> None:
    import redis

    from cli import devstack

    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    per_round, rounds = (200, 3) if args.quick else (500, 6)
    with tempfile.TemporaryDirectory(prefix="nv-send-") as tmp:
        proc, url = devstack.start_redis(Path(tmp) / "redis", appendonly=False)
        try:
            from celery import Celery

            producers = {}
            for name, sent_event in (("with_event", True), ("without_event", False)):
                producer = Celery("newvisions", set_as_current=False)
                producer.config_from_object("celeryconfig")
                producer.conf.update(broker_url=url, result_backend=url, task_send_sent_event=sent_event)
                producers[name] = producer
            r = redis.Redis.from_url(url)
            cpu = {name: 0.0 for name in producers}
            calls = {name: 0 for name in producers}
            for name, producer in producers.items():  # warm: connections, exchanges declared
                producer.send_task("perform.run", args=["warm"], queue="perform", ignore_result=True)
            for _ in range(rounds):
                for name, producer in producers.items():
                    before_calls, before = _server_calls(r), time.process_time()
                    for i in range(per_round):
                        producer.send_task("perform.run", args=[f"job-{i}"], queue="perform", ignore_result=True)
                    cpu[name] += time.process_time() - before
                    calls[name] += _server_calls(r) - before_calls - 1  # the INFO call itself
            sends = per_round * rounds
        finally:
            devstack.stop_process(proc)
    ours_ms, base_ms = cpu["without_event"] / sends * 1000, cpu["with_event"] / sends * 1000
    print(json.dumps({
        "name": "send_cost",
        "value": round(ours_ms, 3),
        "baseline": round(base_ms, 3),
        "ratio": round(ours_ms / base_ms, 2) if base_ms else None,
        "unit": "ms CPU per enqueue",
        "target": "an enqueue costs at most 1 ms of API CPU",
        "met": ours_ms <= 1.0,
        "redis_commands_per_send": {"with_event": round(calls["with_event"] / sends, 2),
                                    "without_event": round(calls["without_event"] / sends, 2)},
        "sends": sends,
    }))


if __name__ == "__main__":
    main()
