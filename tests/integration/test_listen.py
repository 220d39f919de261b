"""`posthorn serve --listen HOST:PORT`, repeated: the server listens on every address
given (IPv4 and IPv6 loopback, two ports), and the flags replace `server.listen` from
the config file rather than adding to it."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from support.raw import RawClient
from support.server import Server, free_port, wait_for

pytestmark = pytest.mark.timeout(60)


def _free_v6_port() -> int:
    with socket.socket(socket.AF_INET6) as s:
        s.bind(("::1", 0))
        return int(s.getsockname()[1])


def _refused(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), 2).close()
    except ConnectionRefusedError:
        return True
    return False


def test_listen_given_twice_listens_on_both(tmp_path: Path) -> None:
    v6_port, config_port = _free_v6_port(), free_port()
    config = f'[server]\nhostname = "mx.test"\nlisten = ["127.0.0.1:{config_port}"]\n'
    # The harness passes --listen 127.0.0.1:<port> and waits for it; this is the second.
    server = Server(tmp_path / "mx", config, extra_args=("--listen", f"[::1]:{v6_port}"))
    server.start()
    try:
        for host, port in ((server.host, server.port), ("::1", v6_port)):
            wait_for(lambda h=host, p=port: not _refused(h, p), what=f"[{host}]:{port}")
            with RawClient(host, port) as client:
                assert client.reply() == "220 mx.test ESMTP Posthorn"
                assert client.command(b"EHLO client.test").startswith("250-mx.test Hello")
                assert client.command(b"QUIT") == "221 2.0.0 Bye"
        listening = [line for line in server.log().splitlines() if "listening on" in line]
        assert any(f"listening on 127.0.0.1:{server.port} (smtp)" in x for x in listening)
        assert any(f"listening on [::1]:{v6_port} (smtp)" in x for x in listening), listening
        # --listen replaces the config's listen list.
        assert _refused("127.0.0.1", config_port)
        assert len(listening) == 2, listening
    finally:
        server.stop()
