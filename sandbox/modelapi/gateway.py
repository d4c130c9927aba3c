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
(8080), ``GATEWAY_CONNECT_TIMEOUT_S``, ``LOG_LEVEL``. uvloop is used if present.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import signal
import socket
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["Gateway", "GatewayConfig", "serve"]

log = logging.getLogger("modelapi.gateway")

CHUNK = 64 * 1024
ATTEMPT_TIMEOUT_S = 1.0
LINGER_S = 1.0


@dataclass(frozen=True)
class GatewayConfig:
    """Gateway settings; :meth:`from_env` reads them from the environment."""

    listen_host: str = "0.0.0.0"
    port: int = 8000
    upstream_host: str = "serving"
    upstream_port: int = 8080
    connect_timeout_s: float = 3.0
    retry_interval_s: float = 0.05
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> GatewayConfig:
        """Read the settings from ``env`` (default: the process environment).

        Variables: ``GATEWAY_PORT``, ``UPSTREAM_HOST``, ``UPSTREAM_PORT``,
        ``GATEWAY_CONNECT_TIMEOUT_S`` and ``LOG_LEVEL``.
        """
        env = os.environ if env is None else env
        try:
            return cls(
                port=int(env.get("GATEWAY_PORT", "") or 8000),
                upstream_host=(env.get("UPSTREAM_HOST", "") or "serving").strip(),
                upstream_port=int(env.get("UPSTREAM_PORT", "") or 8080),
                connect_timeout_s=float(env.get("GATEWAY_CONNECT_TIMEOUT_S", "") or 3.0),
                log_level=(env.get("LOG_LEVEL", "") or "INFO").upper(),
            )
        except ValueError as exc:
            raise ValueError(f"invalid gateway setting: {exc}") from None


Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class Gateway:
    """A TCP proxy to DNS-resolved upstreams; ``await start()``, then ``close()``."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self._rr = itertools.count()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        """Start listening; return the bound port (useful when ``port`` is 0)."""
        cfg = self.config
        self._server = await asyncio.start_server(
            self._handle, cfg.listen_host, cfg.port, reuse_address=True, backlog=1024
        )
        port = int(self._server.sockets[0].getsockname()[1])
        log.info(
            "gateway listening on %s:%d -> %s:%d",
            cfg.listen_host,
            port,
            cfg.upstream_host,
            cfg.upstream_port,
        )
        return port

    async def close(self) -> None:
        """Stop accepting, cancel live connections and wait for them to finish."""
        if self._server is not None:
            self._server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

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

    async def _connect(self) -> tuple[Conn | None, str]:
        """Connect to an upstream, failing over and re-resolving until the deadline.

        Returns ``(connection, "")``, or ``(None, why)`` naming each address's last error.
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
                    conn = await asyncio.wait_for(
                        asyncio.open_connection(host, port),
                        timeout=min(remaining, ATTEMPT_TIMEOUT_S),
                    )
                    return conn, ""
                except TimeoutError:
                    errors.setdefault(f"{host}:{port}", "connect timed out")
                except OSError as exc:
                    errors[f"{host}:{port}"] = f"{type(exc).__name__}: {exc}"
            remaining = deadline - loop.time()
            if remaining <= 0:
                why = "; ".join(f"{addr}: {err}" for addr, err in errors.items())
                return None, why or f"{self.config.upstream_host} did not resolve"
            await asyncio.sleep(min(self.config.retry_interval_s, remaining))

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one client connection (registered so ``close`` can cancel it)."""
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await self._serve_client(reader, writer)
        except asyncio.CancelledError:
            # Shutdown. Finish normally: Python 3.11's start_server done-callback calls
            # task.exception(), which would log a spurious error for a cancelled task.
            pass
        except Exception as exc:  # one broken connection must not kill the gateway
            log.warning("connection error", extra={"client": _peer(writer), "error": repr(exc)})
        finally:
            writer.close()  # does not await, so a cancellation cannot skip it
            if task is not None:
                self._tasks.discard(task)

    async def _serve_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Relay the client to an upstream, or answer 503 when none accepts."""
        upstream, error = await self._connect()
        if upstream is None:
            log.error(
                "no upstream accepted the connection; answered 503",
                extra={"client": _peer(writer), "upstream": self._target(), "error": error},
            )
            await self._reply_unavailable(reader, writer)
            return
        await self._relay(reader, writer, *upstream)

    def _target(self) -> str:
        """Return ``host:port`` of the configured upstream."""
        return f"{self.config.upstream_host}:{self.config.upstream_port}"

    async def _relay(
        self,
        c_reader: asyncio.StreamReader,
        c_writer: asyncio.StreamWriter,
        u_reader: asyncio.StreamReader,
        u_writer: asyncio.StreamWriter,
    ) -> None:
        """Copy bytes both ways until both directions end or one fails."""
        up = asyncio.create_task(_pipe(c_reader, u_writer))
        down = asyncio.create_task(_pipe(u_reader, c_writer))
        try:
            done, _ = await asyncio.wait({up, down}, return_when=asyncio.FIRST_EXCEPTION)
            for finished in done:
                exc = finished.exception()
                if exc is not None and not isinstance(exc, ConnectionError):
                    raise exc
        finally:
            u_writer.close()
            for pipe in (up, down):
                pipe.cancel()
            await asyncio.gather(up, down, return_exceptions=True)

    async def _reply_unavailable(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Send a minimal HTTP 503 and close gracefully (drain the request first)."""
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
        with contextlib.suppress(OSError, ConnectionError):
            writer.write(head + body)
            await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
            # Read what the client sent so closing does not turn into a RST
            # that could destroy the response before the client reads it.
            async with asyncio.timeout(LINGER_S):
                while await reader.read(CHUNK):
                    pass


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy ``reader`` to ``writer``; on EOF half-close the writer."""
    while data := await reader.read(CHUNK):
        writer.write(data)
        await writer.drain()
    if writer.can_write_eof() and not writer.is_closing():
        writer.write_eof()


def _peer(writer: asyncio.StreamWriter) -> str:
    """Return the client's ``host:port`` for logs."""
    peer = writer.get_extra_info("peername")
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)


async def _run(config: GatewayConfig) -> None:
    """Run the gateway until SIGTERM or SIGINT."""
    gateway = Gateway(config)
    await gateway.start()
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
