"""Several hosts on one machine: network namespaces joined by veth pairs to two switches.

    front switch  10.77.<k+1>.0/24:  the test process (.1) ── api (.3)
    back switch   10.77.<k>.0/24:    the test process (.1), store (.2), api (.3),
                                     worker1 (.11), worker2 (.12)

Each host is a namespace `nvh<pid>-<host>` with its own interfaces, addresses and port space;
the switches are Linux bridges in a namespace of their own (`nvh<pid>-net`). Nothing routes
between the two networks, so every byte between the API, the workers and the store crosses a
veth pair and a bridge, and `cut(host)` is a real partition: the host's port on the back switch
goes down, so whatever it sends towards the store is lost (its own link stays up: it sees
timeouts, not a clean "network unreachable", as with a failed switch or cable in production).

The test process sits on both networks, as a client of the API (front) and as an operator
looking into the store (back). The API host has a leg on each, so cutting its back leg leaves
it reachable by its clients while it loses the stores.

Everything is named with the test process's pid; `sweep_stale()` deletes what a run that died
left behind (namespaces whose pid no longer runs), processes included.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

PREFIX = "nvh"
_NAME = re.compile(rf"^{PREFIX}(\d+)-\w+$")


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True, timeout=20)


def available() -> str | None:
    """Why the lab cannot be built here, or None when it can."""
    if os.geteuid() != 0:
        return "network namespaces need root (CI runs these tests as root)"
    if shutil.which("ip") is None:
        return "iproute2 (`ip`) is not installed"
    probe = f"{PREFIX}{os.getpid()}-probe"
    made = ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"`ip netns add` does not work here: {made.stderr.strip()}"
    ip("netns", "del", probe, check=False)
    return None


def namespaces() -> list[str]:
    out = ip("netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def kill_inside(ns: str) -> None:
    pids = ip("netns", "pids", ns, check=False).stdout.split()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)


def delete_namespace(ns: str) -> None:
    kill_inside(ns)
    ip("netns", "del", ns, check=False)


def sweep_stale() -> list[str]:
    """Delete the namespaces (and their processes) of lab runs whose process is gone."""
    removed = []
    for ns in namespaces():
        match = _NAME.match(ns)
        if match and not _alive(int(match.group(1))):
            delete_namespace(ns)
            removed.append(ns)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class Host:
    name: str
    ns: str
    back_ip: str
    front_ip: str | None = None
    #: the host's port on the back switch (in the switch namespace)
    back_port: str = ""

    def launcher(self) -> tuple[str, ...]:
        """An argv prefix that runs a command on this host."""
        return ("ip", "netns", "exec", self.ns)


@dataclass
class Lab:
    pid: int = field(default_factory=os.getpid)
    hosts: dict[str, Host] = field(default_factory=dict)
    made: list[str] = field(default_factory=list)  # namespaces, in creation order
    root_links: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        k = (self.pid % 60) * 2 + 100  # 10.77.100-219: two /24s per run, unlikely to meet another run's
        self.back_net, self.front_net = f"10.77.{k}", f"10.77.{k + 1}"
        self.switch = self._ns("net")

    def _ns(self, name: str) -> str:
        return f"{PREFIX}{self.pid}-{name}"

    @property
    def operator_ip(self) -> str:
        """The test process's address on the back network."""
        return f"{self.back_net}.1"

    def build(self, hosts: Iterable[tuple[str, int, bool]]) -> None:
        """Create the switches, then each (name, last octet, on the front network too) host."""
        self._add_ns(self.switch)
        for bridge in ("back", "front"):
            ip("-n", self.switch, "link", "add", "name", bridge, "type", "bridge")
            ip("-n", self.switch, "link", "set", bridge, "up")
        # the test process: one leg on each switch
        for bridge, net, tag in (("back", self.back_net, "b"), ("front", self.front_net, "f")):
            link = f"{PREFIX}{self.pid}{tag}"
            ip("link", "add", "name", link, "type", "veth", "peer", "name", f"op-{tag}", "netns", self.switch)
            self.root_links.append(link)
            ip("-n", self.switch, "link", "set", f"op-{tag}", "master", bridge, "up")
            ip("addr", "add", f"{net}.1/24", "dev", link)
            ip("link", "set", link, "up")
        for name, octet, front in hosts:
            ns = self._ns(name)
            self._add_ns(ns)
            ip("-n", ns, "link", "set", "lo", "up")
            host = Host(name, ns, f"{self.back_net}.{octet}", back_port=f"{name[:10]}-b")
            self._plug(host, "back", host.back_port, "eth0", host.back_ip)
            if front:
                host.front_ip = f"{self.front_net}.{octet}"
                self._plug(host, "front", f"{name[:10]}-f", "eth1", host.front_ip)
            self.hosts[name] = host

    def _add_ns(self, ns: str) -> None:
        ip("netns", "add", ns)
        self.made.append(ns)

    def _plug(self, host: Host, bridge: str, port: str, iface: str, address: str) -> None:
        ip("-n", self.switch, "link", "add", "name", port, "type", "veth", "peer", "name", iface, "netns", host.ns)
        ip("-n", self.switch, "link", "set", port, "master", bridge, "up")
        ip("-n", host.ns, "addr", "add", f"{address}/24", "dev", iface)
        # one TCP segment per frame (no offloaded 64 KB frames): a lossy wire (impaired())
        # then loses packets, not bursts of 40
        ip("-n", host.ns, "link", "set", iface, "gso_max_segs", "1")
        ip("-n", host.ns, "link", "set", iface, "up")

    def __getitem__(self, name: str) -> Host:
        return self.hosts[name]

    # ------------------------------------------------------------------ faults

    def _back_link(self, name: str, side: str) -> tuple[str, ...]:
        host = self.hosts[name]
        if side == "switch":  # packets vanish on the way; the host sees its link up
            return ("-n", self.switch, "link", "set", host.back_port)
        if side == "host":  # the host's own interface: it sees "network is unreachable" at once
            return ("-n", host.ns, "link", "set", "eth0")
        raise ValueError(f"side must be 'switch' or 'host', not {side!r}")

    def cut(self, name: str, side: str = "switch") -> None:
        """Partition the host from the back network: its veth goes down, at the switch's end
        (a failed switch port or cable) or at its own (`ip link set eth0 down` on the host)."""
        ip(*self._back_link(name, side), "down")

    def heal(self, name: str, side: str = "switch") -> None:
        ip(*self._back_link(name, side), "up")

    @contextlib.contextmanager
    def partitioned(self, name: str, side: str = "switch"):
        self.cut(name, side)
        try:
            yield
        finally:
            self.heal(name, side)

    @contextlib.contextmanager
    def impaired(self, name: str, delay_ms: float, loss: float, log_path: Path,
                 seed: int = 0) -> Iterator[dict[str, int]]:
        """Put a slow, lossy wire between the host and the back switch: what leaves the host is
        delayed by `delay_ms` and a `loss` share of it is dropped, as `tc qdisc add dev eth0 root
        netem delay <delay_ms>ms loss <loss>` on the host would do (tests/hosts/wire.py: this
        kernel has no netem). The host's switch port leaves the bridge for the wire, whose other
        end joins the bridge in its place. Yields the wire's frame counters, filled in at the end."""
        port = self.hosts[name].back_port
        near, far = f"{name[:10]}-wa", f"{name[:10]}-wb"
        sw = ("-n", self.switch)
        ip(*sw, "link", "add", "name", near, "type", "veth", "peer", "name", far)
        for link in (near, far):
            ip(*sw, "link", "set", link, "gso_max_segs", "1")
        ip(*sw, "link", "set", port, "nomaster")
        ip(*sw, "link", "set", far, "master", "back", "up")
        ip(*sw, "link", "set", near, "up")
        with open(log_path, "ab") as log:
            wire = subprocess.Popen(["ip", "netns", "exec", self.switch, sys.executable, "-m", "tests.hosts.wire",
                                     port, near, "--delay-ms", str(delay_ms), "--loss", str(loss), "--seed", str(seed)],
                                    stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL,
                                    cwd=str(Path(__file__).resolve().parents[2]))
        stats: dict[str, int] = {}
        try:
            assert wire.stdout is not None
            if wire.stdout.readline().strip() != b"wire ready":
                raise RuntimeError(f"the wire for {name} did not start (see {log_path})")
            yield stats
        finally:
            wire.terminate()
            try:
                out, _ = wire.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                wire.kill()
                out, _ = wire.communicate()
            with open(log_path, "ab") as log:
                log.write(out or b"")
            stats.update({k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", (out or b"").decode())})
            ip(*sw, "link", "del", near, check=False)  # its peer goes with it
            ip(*sw, "link", "set", port, "master", "back", "up")

    # ------------------------------------------------------------------ teardown

    def destroy(self) -> None:
        """Kill every process on the hosts and delete every namespace and link the lab made."""
        for ns in reversed(self.made):
            delete_namespace(ns)
        for link in self.root_links:  # gone with their peers; make sure
            ip("link", "del", link, check=False)
        self.made.clear()

    def leftovers(self) -> list[str]:
        mine = f"{PREFIX}{self.pid}-"
        return [ns for ns in namespaces() if ns.startswith(mine)]
