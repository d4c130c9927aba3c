"""Unit tests of the modelapi TCP gateway: relay, half-close, failover, 503, shutdown."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from sandbox.modelapi.gateway import Gateway, GatewayConfig

SANDBOX_DIR = Path(__file__).resolve().parents[2] / "sandbox"
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def echo_until_eof(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Echo everything; after the client's EOF send a trailer, then close."""
    total = 0
    while data := await reader.read(65536):
        total += len(data)
        writer.write(data)
        await writer.drain()
    writer.write(f"|eof after {total} bytes".encode())
    await writer.drain()
    writer.close()


def identify(name: str) -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(name.encode())
        await writer.drain()
        writer.close()

    return handler


async def start_upstream(handler: Handler, port: int = 0) -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(handler, "127.0.0.1", port)
    return server, int(server.sockets[0].getsockname()[1])


async def start_gateway(upstream_port: int, timeout_s: float = 1.0) -> tuple[Gateway, int]:
    cfg = GatewayConfig(
        listen_host="127.0.0.1",
        port=0,
        upstream_host="127.0.0.1",
        upstream_port=upstream_port,
        connect_timeout_s=timeout_s,
    )
    gateway = Gateway(cfg)
    return gateway, await gateway.start()


async def read_all(reader: asyncio.StreamReader, timeout: float = 5.0) -> bytes:
    return await asyncio.wait_for(reader.read(), timeout)


def run(coro: Awaitable[None]) -> None:
    asyncio.run(asyncio.wait_for(coro, 30))


def test_config_from_env() -> None:
    cfg = GatewayConfig.from_env({})
    assert (cfg.port, cfg.upstream_host, cfg.upstream_port, cfg.connect_timeout_s) == (
        8000,
        "serving",
        8080,
        3.0,
    )
    cfg = GatewayConfig.from_env(
        {
            "GATEWAY_PORT": "9000",
            "UPSTREAM_HOST": "api",
            "UPSTREAM_PORT": "81",
            "GATEWAY_CONNECT_TIMEOUT_S": "0.5",
        }
    )
    assert (cfg.port, cfg.upstream_host, cfg.upstream_port, cfg.connect_timeout_s) == (
        9000,
        "api",
        81,
        0.5,
    )
    with pytest.raises(ValueError, match="GATEWAY_PORT=.eighty. is not a valid int"):
        GatewayConfig.from_env({"GATEWAY_PORT": "eighty"})


def test_bytes_pass_both_ways_with_half_close() -> None:
    async def scenario() -> None:
        upstream, up_port = await start_upstream(echo_until_eof)
        gateway, port = await start_gateway(up_port)
        try:
            payload = os.urandom(3 * 1024 * 1024)  # larger than any socket buffer
            reader, writer = await asyncio.open_connection("127.0.0.1", port)

            async def send() -> None:
                writer.write(payload)
                await writer.drain()
                writer.write_eof()  # half-close: we still expect the answer

            sender = asyncio.create_task(send())
            reply = await read_all(reader)
            await sender
            assert reply == payload + f"|eof after {len(payload)} bytes".encode()
            writer.close()
        finally:
            await gateway.close()
            upstream.close()

    run(scenario())


def test_503_when_no_upstream_accepts() -> None:
    async def scenario() -> None:
        gateway, port = await start_gateway(free_port(), timeout_s=0.3)
        try:
            start = time.monotonic()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
            await writer.drain()
            response = await read_all(reader)
            elapsed = time.monotonic() - start
            writer.close()
        finally:
            await gateway.close()
        head, _, body = response.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        assert lines[0] == "HTTP/1.1 503 Service Unavailable"
        assert "Content-Type: application/json" in lines and "Connection: close" in lines
        assert f"Content-Length: {len(body)}" in lines
        doc = json.loads(body)
        assert doc["ready"] is False and doc["reason"] == "no-ready-upstream"
        assert elapsed >= 0.3, "must keep retrying for the whole connect timeout"
        assert elapsed < 30, "then stop (a bound no machine speed reaches, not a speed test)"

    run(scenario())


def test_upstream_that_appears_during_the_wait_is_used() -> None:
    async def scenario() -> None:
        up_port = free_port()
        gateway, port = await start_gateway(up_port, timeout_s=3.0)
        upstream = None
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            await asyncio.sleep(0.4)  # the gateway is re-resolving / retrying meanwhile
            upstream, _ = await start_upstream(identify("late"), up_port)
            assert await read_all(reader) == b"late"
            writer.close()
        finally:
            await gateway.close()
            if upstream is not None:
                upstream.close()

    run(scenario())


def test_round_robin_and_failover_across_resolved_addresses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One host cannot give DNS several A records, so stub the resolver (ports differ)."""

    async def scenario() -> None:
        a, a_port = await start_upstream(identify("a"))
        b, b_port = await start_upstream(identify("b"))
        dead = free_port()
        gateway, port = await start_gateway(a_port)
        addresses = [("127.0.0.1", a_port), ("127.0.0.1", b_port), ("127.0.0.1", dead)]

        async def resolve() -> list[tuple[str, int]]:
            return addresses

        monkeypatch.setattr(gateway, "_resolve", resolve)
        try:
            seen = []
            for _ in range(6):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                seen.append((await read_all(reader)).decode())
                writer.close()
            # starting points rotate a, b, dead; a dead address fails over to the next (a)
            assert seen == ["a", "b", "a", "a", "b", "a"]
        finally:
            await gateway.close()
            a.close()
            b.close()

    run(scenario())


def test_close_cancels_live_connections_without_leaking_tasks() -> None:
    async def scenario() -> None:
        hold = asyncio.Event()

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await hold.wait()
            writer.close()

        upstream, up_port = await start_upstream(silent)
        gateway, port = await start_gateway(up_port)
        before = asyncio.all_tasks()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"hello")
        await writer.drain()
        await asyncio.sleep(0.1)
        assert len(gateway._live) == 1
        await gateway.close()
        assert gateway._live == set() and gateway._tasks == set()
        assert await read_all(reader, timeout=2) == b"", "client sees the connection closed"
        writer.close()
        hold.set()
        upstream.close()
        await upstream.wait_closed()
        await asyncio.sleep(0.05)
        leaked = {t for t in asyncio.all_tasks() - before if not t.done()}
        assert leaked == set()
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", port)

    run(scenario())


def _http_get(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    return data


def test_gateway_process_relays_503s_and_stops_cleanly_on_sigterm() -> None:
    """``python -m modelapi gateway`` as the image runs it, with SIGTERM during a live relay."""
    backlog_only = socket.create_server(("127.0.0.1", 0))
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(SANDBOX_DIR),
        "GATEWAY_PORT": str(port),
        "UPSTREAM_HOST": "127.0.0.1",
        "UPSTREAM_PORT": str(backlog_only.getsockname()[1]),
        "GATEWAY_CONNECT_TIMEOUT_S": "0.2",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelapi", "gateway"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    live = upstream_side = None
    try:
        deadline = time.monotonic() + 20
        while live is None:
            assert proc.poll() is None
            try:
                live = socket.create_connection(("127.0.0.1", port), timeout=5)
            except ConnectionRefusedError:
                assert time.monotonic() < deadline, "gateway did not start"
                time.sleep(0.05)
        live.sendall(b"hello")
        backlog_only.settimeout(5)
        upstream_side, _ = backlog_only.accept()
        backlog_only.close()  # from now on, new upstream connections are refused
        upstream_side.settimeout(5)
        assert upstream_side.recv(10) == b"hello"
        assert _http_get(port).startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
        backlog_only.close()
    assert live.recv(10) == b"", "the live client connection is closed on shutdown"
    assert upstream_side.recv(10) == b"", "and so is its upstream connection"
    live.close()
    upstream_side.close()
    assert proc.returncode == 0, err
    assert not err.strip(), err
    records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert len(records) == len(out.splitlines()), out
    assert records[0]["msg"].startswith("gateway listening on 0.0.0.0:")
    refused = [r for r in records if r["level"] == "error"]
    assert len(refused) == 1, out
    assert "ConnectionRefusedError" in refused[0]["error"]
    assert records[-1]["msg"] == "gateway stopping", out
