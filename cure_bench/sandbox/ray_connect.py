"""Reaching a Ray cluster for the Ray executor: the address, a fast reachability check, one connection per process.

``ray.init`` on an address where nothing answers waits minutes and logs a line every few seconds; a plain TCP
connect first turns a typo or a stopped head node into one line before any generation request is sent.
Ray itself is imported here only inside functions, so the base install never loads it.
"""

from __future__ import annotations

import logging
import os
import re
import socket
from typing import Any

from cure_bench.errors import ConfigError, MissingExtraError, SandboxError

log = logging.getLogger("cure_bench.sandbox")

ADDRESS_ENV = "RAY_ADDRESS"
LOCAL = "local"
"""``--ray-address local``: start a Ray instance on this machine (all its cores), owned by this process."""
_HOST_PORT = re.compile(r"^(?:ray://)?(\[[0-9a-fA-F:]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$")
_connected: str | None = None
"""The address this module connected to (None: not connected by us, maybe by the caller)."""


def import_ray() -> Any:
    """The ``ray`` module, or a MissingExtraError naming the extra."""
    try:
        import ray
    except ImportError:
        raise MissingExtraError("ray", "--executor ray", "pip install 'ray[default]'") from None
    return ray


def resolve_address(explicit: str | None) -> str:
    """``--ray-address`` if given, else ``$RAY_ADDRESS``; checked for shape (``local``, ``auto``, HOST:PORT,
    ray://HOST:PORT)."""
    address = (explicit if explicit is not None else os.environ.get(ADDRESS_ENV, "")).strip()
    source = "--ray-address" if explicit is not None else f"${ADDRESS_ENV}"
    if not address:
        raise ConfigError(
            "--executor ray needs a Ray cluster: pass --ray-address HOST:PORT (the head node's `ray start --head` "
            f"address), --ray-address {LOCAL} to start one on this machine, or set ${ADDRESS_ENV}"
        )
    if address not in (LOCAL, "auto") and not _split(address):
        raise ConfigError(f"{source} must be {LOCAL}, auto, HOST:PORT or ray://HOST:PORT (got {address!r})")
    return address


def _split(address: str) -> tuple[str, int] | None:
    match = _HOST_PORT.match(address)
    if match is None or not 0 < int(match.group(2)) < 65536:
        return None
    return match.group(1).strip("[]"), int(match.group(2))


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """A TCP connect to the head node's port: SandboxError in one line if nothing listens there."""
    where = _split(address)
    if where is None:  # local / auto: nothing to reach
        return
    try:
        socket.create_connection(where, timeout=timeout_s).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise SandboxError(
            f"--ray-address {address}: no Ray cluster answers there ({reason}); start one with "
            "`ray start --head` on the head node, or fix the address"
        ) from None


def connect(address: str) -> Any:
    """Connect this process to the cluster at ``address`` (once; later calls reuse the connection) and
    return the ``ray`` module. A connection the caller made itself is reused when it is the same cluster."""
    global _connected
    check_reachable(address)  # first: a wrong address is the same one line with or without ray installed
    ray = import_ray()
    if ray.is_initialized():
        if _connected == address or (_connected is None and _same_cluster(ray, address)):
            return ray
        if _connected is None:
            raise ConfigError(
                f"--ray-address {address}: this process is already connected to another Ray cluster "
                f"({_gcs_address(ray)}); use that address, or disconnect (ray.shutdown()) first"
            )
        ray.shutdown()
        _connected = None
    options: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
    if address == LOCAL:
        options["include_dashboard"] = False
    try:
        ray.init(address=address, **options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise SandboxError(f"--ray-address {address}: could not connect to Ray: {str(exc).splitlines()[0]}") from None
    _connected = address
    log.info("ray: connected to %s (%s)", address, _gcs_address(ray))
    return ray


def _gcs_address(ray: Any) -> str:
    try:
        return str(ray.get_runtime_context().gcs_address)
    except Exception:  # client mode and old versions may not expose it
        return "unknown address"


def _same_cluster(ray: Any, address: str) -> bool:
    if address in (LOCAL, "auto"):
        return True
    want, got = _split(address), _split(_gcs_address(ray))
    if want is None or got is None:
        return False
    try:
        return want[1] == got[1] and socket.gethostbyname(want[0]) == socket.gethostbyname(got[0])
    except OSError:
        return False


def sandbox_nodes(ray: Any) -> list[dict[str, Any]]:
    """The live nodes that can run a sandbox (at least one CPU in Ray's resources: a head node started with
    ``--num-cpus 0`` runs none), as ``{"node_id", "host", "cpus"}``."""
    nodes = []
    for node in ray.nodes():
        cpus = int(node.get("Resources", {}).get("CPU", 0))
        if node.get("Alive") and cpus >= 1:
            nodes.append({"node_id": node["NodeID"], "host": node.get("NodeManagerAddress", "?"), "cpus": cpus})
    return nodes


def node_alive(ray: Any, node_id: str) -> bool:
    return any(node["NodeID"] == node_id and node.get("Alive") for node in ray.nodes())
