"""A lossy, slow wire between two interfaces, in user space: what `tc qdisc ... netem delay 200ms
loss 5%` does, for kernels built without netem (CONFIG_NET_SCH_NETEM; this machine's is one).

It reads every frame arriving on interface A and on interface B (AF_PACKET sockets), drops a
share of those going from A to B and delays the others by a fixed time, as netem does on the
egress of A's host, and passes B-to-A frames straight through. Frames keep their order (the
delay is fixed). The sockets carry the kernel's virtio-net header (PACKET_VNET_HDR), so frames
whose checksum the sender left to the device, and segmentation-offloaded frames, cross intact;
the lab sets `gso_max_segs 1` on the hosts, so one frame is one TCP segment and the loss applies
per packet, as on a real wire.

    python -m tests.hosts.wire A B --delay-ms 200 --loss 0.05 [--seed N]

Runs until killed; prints a line of counters to stdout on SIGTERM.
"""

from __future__ import annotations

import argparse
import heapq
import random
import signal
import socket
import sys
import threading
import time

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_VNET_HDR = 15
PACKET_OUTGOING = 4
MAX_FRAME = 65536 + 64


def _open(iface: str) -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind((iface, 0))
    return sock


class Wire:
    def __init__(self, a: str, b: str, delay_s: float, loss: float, seed: int) -> None:
        self.a, self.b = _open(a), _open(b)
        self.delay_s, self.loss = delay_s, loss
        self.rng = random.Random(seed)
        self.queue: list[tuple[float, int, bytes]] = []
        self.cond = threading.Condition()
        self.seq = 0
        self.counts = {"a_to_b": 0, "dropped": 0, "b_to_a": 0}

    def _read(self, src: socket.socket, forward) -> None:
        while True:
            frame, addr = src.recvfrom(MAX_FRAME)
            if addr[2] == PACKET_OUTGOING:  # what we ourselves sent out of this interface
                continue
            forward(frame)

    def _a_to_b(self, frame: bytes) -> None:
        self.counts["a_to_b"] += 1
        if self.rng.random() < self.loss:
            self.counts["dropped"] += 1
            return
        with self.cond:
            self.seq += 1
            heapq.heappush(self.queue, (time.monotonic() + self.delay_s, self.seq, frame))
            self.cond.notify()

    def _b_to_a(self, frame: bytes) -> None:
        self.counts["b_to_a"] += 1
        self._send(self.a, frame)

    @staticmethod
    def _send(dst: socket.socket, frame: bytes) -> None:
        try:
            dst.send(frame)
        except OSError:
            pass  # the interface is down (a cut on top of the slow wire): the frame is lost

    def _deliver(self) -> None:
        while True:
            with self.cond:
                while not self.queue or self.queue[0][0] > time.monotonic():
                    self.cond.wait(timeout=(self.queue[0][0] - time.monotonic()) if self.queue else None)
                _, _, frame = heapq.heappop(self.queue)
            self._send(self.b, frame)

    def run(self) -> None:
        for target, args in ((self._read, (self.a, self._a_to_b)), (self._read, (self.b, self._b_to_a)),
                             (self._deliver, ())):
            threading.Thread(target=target, args=args, daemon=True).start()
        print("wire ready", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.hosts.wire", description=__doc__.split("\n")[0])
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--delay-ms", type=float, default=200.0)
    parser.add_argument("--loss", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    wire = Wire(args.a, args.b, args.delay_ms / 1000, args.loss, args.seed)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    wire.run()
    done.wait()
    print(f"wire {args.a}->{args.b}: " + " ".join(f"{k}={v}" for k, v in wire.counts.items()), flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
