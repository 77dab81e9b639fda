"""Loopback ports: a free one, an open one, a busy one refused before a stack starts."""

from __future__ import annotations

import random
import socket

#: Ports the kernel never hands out as ephemeral ones (its range starts at 32768): one
#: chosen here stays free until we bind it.
LOW_PORTS = (20000, 32767)


def free_port(taken: set[int] | None = None, *, low: bool = False) -> int:
    """A port free on 127.0.0.1 now, not in ``taken`` (which then holds it too);
    ``low``: one of :data:`LOW_PORTS`."""
    taken = set() if taken is None else taken
    while True:
        if low:
            candidate = random.randint(*LOW_PORTS)
        else:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                candidate = int(probe.getsockname()[1])
        if candidate in taken:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", candidate))
            except OSError:
                continue
        taken.add(candidate)
        return candidate


def port_is_open(port: int) -> bool:
    """Something accepts connections on 127.0.0.1:``port``."""
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def refuse_busy_port(port: int, name: str) -> None:
    """Raise (naming the port and its would-be owner) when something already listens."""
    if port_is_open(port):
        raise RuntimeError(
            f"port {port} for {name} is already in use; stop that process or set another port"
        )
