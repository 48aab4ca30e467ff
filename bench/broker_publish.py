"""What a job's message costs RabbitMQ (deploy/README.md, "Scaling: how many hosts"): confirmed
publishes of perform messages into the perform quorum queue of a private `rabbitmq-server` node,
one at a time as the API sends them, through the product's producer (`producer_for`, with the
settings of shared/jobs/broker.py), then the queue's depth read back by the API's collector.

    .venv/bin/python bench/broker_publish.py [--messages 2000]

Prints publishes per second, the node's CPU per message (the node and its epmd, psutil) and the
publisher's. Not part of `python -m bench`: it needs the Debian rabbitmq-server package.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import psutil

from cli import devstack

WARMUP = 50


def cpu_s(procs: list[psutil.Process]) -> float:
    total = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="nv-broker-publish-"))
    node, url = devstack.start_rabbitmq(tmp / "rabbitmq", log_path=tmp / "rabbitmq.log")
    try:
        from shared.jobs.celery_app import producer_for
        from shared.metrics import AmqpQueueDepthCollector

        producer = producer_for(url)

        def send(i: int) -> None:
            producer.send_task("workers.perform", args=[f"bench{i}"], queue="perform", task_id=f"bench{i:08d}",
                               ignore_result=True)

        for i in range(WARMUP):  # declarations, the connection
            send(i)
        broker = [p for proc in node.procs for p in [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(True)]]
        me = [psutil.Process()]
        broker_before, me_before, started = cpu_s(broker), cpu_s(me), time.monotonic()
        for i in range(WARMUP, WARMUP + args.messages):
            send(i)
        wall = time.monotonic() - started
        broker_cpu, me_cpu = cpu_s(broker) - broker_before, cpu_s(me) - me_before
        families = {f.name: {s.labels.get("queue", ""): s.value for s in f.samples}
                    for f in AmqpQueueDepthCollector(url, timeout_s=2).collect()}
        print(json.dumps({
            "messages": args.messages, "load_average_1m": round(os.getloadavg()[0], 1),
            "publishes_per_s": round(args.messages / wall), "ms_per_publish": round(1000 * wall / args.messages, 2),
            "broker_cpu_ms_per_message": round(1000 * broker_cpu / args.messages, 3),
            "publisher_cpu_ms_per_message": round(1000 * me_cpu / args.messages, 3),
            "queue_depth_read_back": families["queue_depth"].get("perform"),
            "expected_depth": WARMUP + args.messages,
        }))
    finally:
        node.stop()


if __name__ == "__main__":
    main()
