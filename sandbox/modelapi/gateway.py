"""The sandbox's stable front door: a small asyncio TCP proxy.

Like a Kubernetes Service, it gives clients one fixed address while serving
containers come and go. It is not HTTP-aware: each new client connection is
forwarded, byte for byte in both directions, to an upstream chosen at that
moment:

1. resolve ``$UPSTREAM_HOST`` (default ``serving``) afresh - Docker's embedded
   DNS answers with every container holding that network alias;
2. take the sorted addresses round-robin, starting one further each connection;
3. if connecting fails, try the next address; if none accepts, re-resolve
   every 50 ms until ``$GATEWAY_CONNECT_TIMEOUT_S`` (default 3) has passed;
4. then answer ``503 Service Unavailable`` with the JSON body
   ``{"ready": false, "reason": "no-ready-upstream", ...}`` and close.

Note what it does *not* do: it never looks at ``/readyz``. An upstream that
accepts TCP but is not ready still gets traffic - the difference between a
bare DNS alias and a Service backed by readiness probes.

Half-closes are propagated (EOF from one side becomes ``shutdown(SHUT_WR)`` on
the other) and a connection ends when both directions are done or either one
fails. Settings: ``GATEWAY_PORT`` (8000), ``UPSTREAM_HOST``, ``UPSTREAM_PORT``
(8080), ``GATEWAY_CONNECT_TIMEOUT_S``, ``GATEWAY_METRICS_PORT`` (9102; 0 = none),
``LOG_LEVEL``. uvloop is used if present.

Metrics (Prometheus text on ``GATEWAY_METRICS_PORT``, a port of their own so that a scrape
never rides the relay): ``gateway_connections_total{outcome="relayed"|"unavailable"}``,
``gateway_open_connections`` and ``gateway_upstream_connect_seconds`` (time to find an
upstream, failover and re-resolution included). Being byte-for-byte, the gateway cannot
count HTTP requests or set a request id: the model API, the first HTTP hop, assigns it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from .envconfig import EnvConfig, env_field

__all__ = ["Gateway", "GatewayConfig", "serve"]

log = logging.getLogger("modelapi.gateway")

CHUNK = 64 * 1024
ATTEMPT_TIMEOUT_S = 1.0
LINGER_S = 1.0


@dataclass(frozen=True)
class GatewayConfig(EnvConfig):
    """Gateway settings; :meth:`from_env` reads ``GATEWAY_PORT``, ``UPSTREAM_HOST``,
    ``UPSTREAM_PORT``, ``GATEWAY_CONNECT_TIMEOUT_S`` and ``LOG_LEVEL``."""

    listen_host: str = "0.0.0.0"
    port: int = env_field(8000, "GATEWAY_PORT")
    upstream_host: str = env_field("serving", "UPSTREAM_HOST")
    upstream_port: int = env_field(8080, "UPSTREAM_PORT")
    connect_timeout_s: float = env_field(3.0, "GATEWAY_CONNECT_TIMEOUT_S")
    retry_interval_s: float = 0.05
    log_level: str = env_field("INFO", "LOG_LEVEL", clean=lambda raw: raw.strip().upper())
    metrics_port: int = env_field(9102, "GATEWAY_METRICS_PORT")


class _Side(asyncio.Protocol):
    """One end of a relayed connection: what it receives is written to its peer.

    Protocol callbacks, not streams: a request costs two ``write`` calls and no task
    switches. Flow control is end to end: when a side's write buffer fills, the peer
    stops reading until it drains. EOF is propagated as a half-close.
    """

    def __init__(self, on_lost: Callable[[_Side], None] | None = None) -> None:
        self.transport: asyncio.Transport | None = None
        self.peer: _Side | None = None
        self.eof = False
        self.pending: list[bytes] = []
        self._on_lost = on_lost

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def attach(self, peer: _Side) -> None:
        """Pair with ``peer`` and hand it what arrived before the pairing."""
        self.peer = peer
        if self.pending and peer.transport is not None:
            peer.transport.write(b"".join(self.pending))
        self.pending.clear()
        if self.eof:
            self.eof = False
            self.eof_received()
        if self.transport is not None and self.transport.is_closing() and peer.transport is not None:
            peer.transport.close()  # it answered and hung up before the pairing; close flushes

    def data_received(self, data: bytes) -> None:
        # Data can arrive before the pairing (Python 3.11 may even deliver it before
        # pause_reading() in connection_made takes effect): keep it until attach().
        if self.peer is None:
            self.pending.append(data)
        elif self.peer.transport is not None:
            self.peer.transport.write(data)

    def eof_received(self) -> bool:
        self.eof = True
        peer = self.peer
        if peer is not None and peer.transport is not None and not peer.transport.is_closing():
            if peer.eof:
                peer.transport.close()
                return False
            if peer.transport.can_write_eof():
                peer.transport.write_eof()
        return True  # keep the other direction open

    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.close()

        if self._on_lost is not None:
            self._on_lost(self)

    def close(self) -> None:
        for side in (self, self.peer):
            if side is not None and side.transport is not None:
                side.transport.close()


@dataclass
class GatewayMetrics:
    """The gateway's Prometheus metrics, in a registry of their own."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.connections = Counter("gateway_connections_total", "Client connections by outcome",
                                   ["outcome"], registry=self.registry)
        for outcome in ("relayed", "unavailable"):
            self.connections.labels(outcome=outcome)
        self.open = Gauge("gateway_open_connections", "Client connections open now", registry=self.registry)
        self.connect = Histogram("gateway_upstream_connect_seconds", "Time to connect an upstream",
                                 buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 3.0), registry=self.registry)


class Gateway:
    """A TCP proxy to DNS-resolved upstreams; ``await start()``, then ``close()``."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.metrics = GatewayMetrics()
        self._rr = itertools.count()
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()  # connections still choosing an upstream
        self._live: set[_Side] = set()  # client sides of accepted connections
        self.metrics.open.set_function(lambda: len(self._live))

    async def start(self) -> int:
        """Start listening; return the bound port (useful when ``port`` is 0)."""
        cfg = self.config
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._accept, cfg.listen_host, cfg.port, reuse_address=True, backlog=1024
        )
        port = int(self._server.sockets[0].getsockname()[1])
        log.info("gateway listening on %s:%d -> %s:%d", cfg.listen_host, port,
                 cfg.upstream_host, cfg.upstream_port)
        return port

    async def close(self) -> None:
        """Stop accepting, close live connections and wait for pending attaches."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        for side in list(self._live):
            side.close()
        self._live.clear()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    def _accept(self) -> _Side:
        client = _ClientSide(self)
        return client

    def _attach(self, client: _Side) -> None:
        """Called when a client connects: find an upstream in a task of its own."""
        self._live.add(client)
        task = asyncio.get_running_loop().create_task(self._connect_upstream(client))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _resolve(self) -> list[tuple[str, int]]:
        """Resolve the upstream name to a sorted, de-duplicated address list."""
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(
                self.config.upstream_host, self.config.upstream_port, type=socket.SOCK_STREAM
            )
        except (OSError, UnicodeError):
            return []
        return sorted({(str(info[4][0]), int(info[4][1])) for info in infos})

    async def _connect_upstream(self, client: _Side) -> None:
        """Connect ``client`` to an upstream (failover, re-resolve) or answer 503."""
        started = asyncio.get_running_loop().time()
        try:
            upstream, error = await self._connect(client)
        except asyncio.CancelledError:
            client.close()
            return
        self.metrics.connect.observe(asyncio.get_running_loop().time() - started)
        self.metrics.connections.labels(outcome="relayed" if upstream is not None else "unavailable").inc()
        if client.transport is None or client.transport.is_closing():
            if upstream is not None:
                upstream.close()
            return
        if upstream is None:
            log.error("no upstream accepted the connection; answered 503",
                      extra={"client": _peer(client.transport), "upstream": self._target(), "error": error})
            self._reply_unavailable(client)
            return
        client.attach(upstream)
        upstream.attach(client)
        client.transport.resume_reading()

    async def _connect(self, client: _Side) -> tuple[_Side | None, str]:
        """Connect to an upstream, failing over and re-resolving until the deadline.

        Returns ``(upstream side, "")``, or ``(None, why)`` naming each address's last error.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.connect_timeout_s
        errors: dict[str, str] = {}
        while True:
            addrs = await self._resolve()
            first = next(self._rr) % len(addrs) if addrs else 0
            for host, port in addrs[first:] + addrs[:first]:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    _, side = await asyncio.wait_for(
                        loop.create_connection(_Side, host, port),
                        timeout=min(remaining, ATTEMPT_TIMEOUT_S),
                    )
                    return side, ""
                except TimeoutError:
                    errors.setdefault(f"{host}:{port}", "connect timed out")
                except OSError as exc:
                    errors[f"{host}:{port}"] = f"{type(exc).__name__}: {exc}"
            remaining = deadline - loop.time()
            if remaining <= 0:
                why = "; ".join(f"{addr}: {err}" for addr, err in errors.items())
                return None, why or f"{self.config.upstream_host} did not resolve"
            await asyncio.sleep(min(self.config.retry_interval_s, remaining))

    def _target(self) -> str:
        """Return ``host:port`` of the configured upstream."""
        return f"{self.config.upstream_host}:{self.config.upstream_port}"

    def _reply_unavailable(self, client: _Side) -> None:
        """Send a minimal HTTP 503, half-close, and close after a short linger (so the
        client's unread request does not turn the close into a RST that eats the reply)."""
        body = json.dumps(
            {
                "ready": False,
                "reason": "no-ready-upstream",
                "detail": f"no upstream at {self._target()} accepted a connection "
                f"within {self.config.connect_timeout_s:g}s",
                "upstream": self._target(),
            }
        ).encode()
        head = (
            "HTTP/1.1 503 Service Unavailable\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
        transport = client.transport
        assert transport is not None
        with contextlib.suppress(OSError, ConnectionError, RuntimeError):
            transport.write(head + body)
            if transport.can_write_eof():
                transport.write_eof()
            transport.resume_reading()  # read (and drop) what the client still sends
        asyncio.get_running_loop().call_later(LINGER_S, transport.close)


class _ClientSide(_Side):
    """The accepted side: holds reading until an upstream is attached."""

    def __init__(self, gateway: Gateway) -> None:
        super().__init__(on_lost=gateway._live.discard)
        self._gateway = gateway

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        transport.pause_reading()  # type: ignore[attr-defined]
        self._gateway._attach(self)



def _peer(transport: asyncio.BaseTransport) -> str:
    """Return the client's ``host:port`` for logs."""
    peer = transport.get_extra_info("peername")
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)


async def _run(config: GatewayConfig) -> None:
    """Run the gateway until SIGTERM or SIGINT."""
    gateway = Gateway(config)
    await gateway.start()
    if config.metrics_port:
        start_http_server(config.metrics_port, registry=gateway.metrics.registry)
        log.info("gateway metrics on :%d/metrics", config.metrics_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("gateway stopping")
    await gateway.close()


def serve(config: GatewayConfig | None = None) -> None:
    """Run the gateway (the ``gateway`` command), on uvloop when installed."""
    from . import configure_logging

    config = config or GatewayConfig.from_env()
    configure_logging(config.log_level)
    try:
        import uvloop
    except ImportError:
        asyncio.run(_run(config))
    else:
        uvloop.run(_run(config))
