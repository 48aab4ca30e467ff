"""HTTP load generator, run as its own process: `python -m bench.loadgen SPEC.json`.

Closed loop: `concurrency` keep-alive connections, each sending its next request as soon as the
previous answer is read, for `warmup_s` (not recorded) and then `duration_s` (recorded).
Open loop when the spec has `rate` (total req/s): each connection sends on a fixed schedule
(a late answer delays only that connection's next send).
HTTP/1.1 is spoken directly over asyncio streams (uvloop when installed) with pre-built
requests: a general HTTP client such as httpx costs ~0.5 ms of CPU per request, which on a
2-core machine would make the generator, not the server, the bottleneck of the bare baseline.

SPEC: {"host", "port", "method", "path", "concurrency", "warmup_s", "duration_s",
       "bodies": [json, ...], "headers": [{name: value}, ...]}  (client i uses bodies[i % n] and
       headers[i % n]; a body may contain "{n}", replaced by a per-request counter)
Prints one JSON object: latencies_ms (recorded window), statuses, errors, elapsed_s, rps.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter


def _request(spec: dict, body: str, headers: dict[str, str]) -> bytes:
    data = body.encode()
    lines = [f"{spec['method']} {spec['path']} HTTP/1.1", f"Host: {spec['host']}:{spec['port']}",
             "Content-Type: application/json", f"Content-Length: {len(data)}", "Connection: keep-alive"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
            break
    else:
        if b"chunked" in head.lower():
            raise RuntimeError("chunked responses are not supported by the bench load generator")
    if length:
        await reader.readexactly(length)
    return status


async def _client(i: int, spec: dict, t_record: float, t_end: float, out: dict) -> None:
    bodies, headers = spec["bodies"], spec["headers"]
    body, hdrs = bodies[i % len(bodies)], headers[i % len(headers)]
    templated = "{n}" in body
    fixed = None if templated else _request(spec, body, hdrs)
    n = 0
    reader = writer = None
    # open loop when a total `rate` (req/s) is given: each client sends on its own schedule
    interval = spec["concurrency"] / spec["rate"] if spec.get("rate") else 0.0
    next_at = time.perf_counter() + interval * i / spec["concurrency"]
    while True:
        now = time.perf_counter()
        if interval:
            if next_at > now:
                await asyncio.sleep(next_at - now)
            next_at += interval
            now = time.perf_counter()
        if now >= t_end:
            break
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(spec["host"], spec["port"])
            n += 1
            payload = fixed or _request(spec, body.replace("{n}", f"{i}-{n}"), hdrs)
            started = time.perf_counter()
            writer.write(payload)
            status = await _read_response(reader)
            done = time.perf_counter()
            if started >= t_record and done <= t_end:
                out["lat"].append((done - started) * 1000.0)
                out["statuses"][status] += 1
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            out["errors"][type(exc).__name__] += 1
            if writer is not None:
                writer.close()
            reader = writer = None
            await asyncio.sleep(0.01)
    if writer is not None:
        writer.close()


async def run(spec: dict) -> dict:
    out = {"lat": [], "statuses": Counter(), "errors": Counter()}
    start = time.perf_counter()
    t_record = start + spec.get("warmup_s", 1.0)
    t_end = t_record + spec["duration_s"]
    await asyncio.gather(*(_client(i, spec, t_record, t_end, out) for i in range(spec["concurrency"])))
    return {"latencies_ms": out["lat"], "statuses": dict(out["statuses"]), "errors": dict(out["errors"]),
            "elapsed_s": spec["duration_s"], "rps": len(out["lat"]) / spec["duration_s"]}


def main() -> None:
    with open(sys.argv[1]) as fh:
        spec = json.load(fh)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        result = asyncio.run(run(spec))
    else:
        result = uvloop.run(run(spec))
    result["statuses"] = {str(k): v for k, v in result["statuses"].items()}
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
