"""The process-wide HTTP client takes the way out of the environment it is called in: a client
made for a grading box's control socket is never handed to code outside the box (a test that
plays the box in-process ran the endpoint's own calls through the socket and broke every later
test of its worker)."""

from __future__ import annotations

import socketserver
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

from sandbox.client import shared_http
from sandbox.control.client import SOCKET_ENV, TOKEN_ENV


def _handler(answer: str) -> type[BaseHTTPRequestHandler]:
    class Answer(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            body = f"{answer} {self.headers.get('Authorization', '-')}".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    return Answer


class _UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self):  # BaseHTTPRequestHandler wants a (host, port) client address
        request, _ = super().get_request()
        return request, ("box", 0)


def test_the_client_follows_the_environment_it_is_called_in(tmp_path, monkeypatch):
    host = HTTPServer(("127.0.0.1", 0), _handler("host"))
    box = _UnixHTTPServer(str(tmp_path / "control.sock"), _handler("box"))
    for server in (host, box):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{host.server_address[1]}/readyz"
    try:
        monkeypatch.delenv(SOCKET_ENV, raising=False)
        assert shared_http().get(url).text == "host -"
        monkeypatch.setenv(SOCKET_ENV, str(tmp_path / "control.sock"))
        monkeypatch.setenv(TOKEN_ENV, "t0k")
        assert shared_http().get(url).text == "box Bearer t0k"  # in a box: the socket, with its token
        monkeypatch.delenv(SOCKET_ENV)
        monkeypatch.delenv(TOKEN_ENV)
        assert shared_http().get(url).text == "host -"  # out of it again: never the box's client
        assert shared_http() is shared_http()  # still one client per way out
    finally:
        host.shutdown()
        box.shutdown()
