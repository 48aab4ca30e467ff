"""SSE followers, run as their own process: `python -m bench.sse_followers SPEC.json`.

Opens every stream at once, prints one line `{"opened": n, "settled": n, "statuses": {...}}` as
soon as each stream has either answered non-200 or delivered its first event (the job's state
at connect time), then reads every stream to its end and writes one JSON object to the spec's
`result_path` (megabytes: a file, not the pipe the first line came through):
`{"events": [[stream index, receive time.time(), event data], ...], "statuses", "errors",
"unfinished_streams", "cpu_s"}`. The first event of each stream is left out (it is a read, not
a push); `cpu_s` is this process's CPU time from the first line to the end.

HTTP/1.1 is spoken directly (uvloop when installed), like bench/loadgen.py and for the same
reason: an httpx stream costs so much CPU per event that 1,000 of them on a 2-core machine
measured the client as much as the API. Each connection is a bare asyncio Protocol that only
notes when bytes arrived; the responses are parsed after every stream has ended, and an
event's receive time is that of the bytes that completed it.

SPEC: {"host", "port", "timeout_s", "result_path", "streams": [{"path", "token"}, ...]}
"""

from __future__ import annotations

import asyncio
import bisect
import json
import re
import sys
import time
from collections import Counter

END = b"\r\n0\r\n\r\n"  # the last chunk of a chunked response (a StreamingResponse is chunked)
EVENT = re.compile(rb"\ndata: ([^\n]*)\n\n")  # an SSE event's data line and the blank line ending it


class Stream(asyncio.Protocol):
    def __init__(self, request: bytes, on_settled) -> None:
        self.request, self.on_settled = request, on_settled
        self.arrivals: list[tuple[float, bytes]] = []
        self.status: int | None = None
        self.settled = False
        self.ended = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self._head = b""  # bytes received until the stream settled
        self._tail = b""  # the last bytes received, for an end marker split across reads

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.arrivals.append((time.time(), data))
        if not self.settled:
            self._head += data
            if self.status is None and b"\r\n" in self._head:
                self.status = int(self._head[9:12])
            if self.status is not None and (self.status != 200 or EVENT.search(self._head)):
                self._settle()
        if (self.status is not None and self.status != 200) or (self._tail + data).endswith(END):
            self.transport.close()
        self._tail = data[-len(END):]

    def connection_lost(self, exc) -> None:
        self._settle()
        if not self.ended.done():
            self.ended.set_result(exc)

    def _settle(self) -> None:
        if not self.settled:
            self.settled = True
            self.on_settled()

    def events(self) -> list[tuple[float, bytes]]:
        """(receive time, data) of every event after the first."""
        raw = b"".join(data for _, data in self.arrivals)
        ends, offset = [], 0
        for _, data in self.arrivals:
            offset += len(data)
            ends.append(offset)
        found = [(self.arrivals[bisect.bisect_left(ends, m.end())][0], m.group(1)) for m in EVENT.finditer(raw)]
        return found[1:]


def _request(spec: dict, stream: dict) -> bytes:
    return (f"GET {stream['path']} HTTP/1.1\r\nHost: {spec['host']}:{spec['port']}\r\n"
            f"Authorization: Bearer {stream['token']}\r\nAccept: text/event-stream\r\n\r\n").encode()


async def run(spec: dict) -> dict:
    loop = asyncio.get_running_loop()
    streams, errors = [], Counter()
    all_settled, settled = asyncio.Event(), [0]

    def on_settled() -> None:
        settled[0] += 1
        if settled[0] == len(spec["streams"]):
            all_settled.set()

    async def connect(stream: Stream) -> None:
        try:
            await loop.create_connection(lambda: stream, spec["host"], spec["port"])
        except OSError as exc:  # counted with the streams' other errors
            stream.connection_lost(exc)

    for s in spec["streams"]:
        streams.append(Stream(_request(spec, s), on_settled))
    await asyncio.gather(*(connect(s) for s in streams))
    timeout = spec.get("timeout_s", 120)
    try:
        await asyncio.wait_for(all_settled.wait(), timeout)
    except TimeoutError:
        pass
    statuses = Counter(s.status for s in streams if s.status is not None)
    _say({"opened": statuses.get(200, 0), "settled": settled[0],
          "statuses": {str(k): v for k, v in statuses.items()}})
    cpu_at_open = time.process_time()
    _, late = await asyncio.wait([s.ended for s in streams], timeout=timeout)
    cpu_s = time.process_time() - cpu_at_open
    for s in streams:
        if s.transport is not None:
            s.transport.close()
    errors.update(type(f.result()).__name__ for s in streams if (f := s.ended).done() and f.result() is not None)
    return {"events": [[i, t, data.decode()] for i, s in enumerate(streams) for t, data in s.events()],
            "statuses": {str(k): v for k, v in statuses.items()}, "errors": dict(errors),
            "unfinished_streams": len(late), "cpu_s": round(cpu_s, 3)}


def _say(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main() -> None:
    with open(sys.argv[1]) as fh:
        spec = json.load(fh)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        result = asyncio.run(run(spec))
    else:
        result = uvloop.run(run(spec))
    with open(spec["result_path"], "w") as fh:
        json.dump(result, fh)


if __name__ == "__main__":
    main()
