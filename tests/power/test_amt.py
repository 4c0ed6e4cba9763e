"""Intel AMT wake: our WS-Management messages against recorded request/response pairs.

NOT real firmware: no AMT device or emulator exists here (DESIGN §7). A loopback HTTP server with
real Digest authentication checks that ``AmtWake`` sends exactly the recorded request (after
filling in its MessageID and address) and answers with a recorded response; see
amt_exchanges/README.md for where the recordings come from.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from xml.etree import ElementTree

import pytest

from consolidator.power.amt import AmtWake, parse_return_value
from consolidator.power.meters import Credentials, MeterAuthError, MeterError

EXCHANGES = Path(__file__).with_name("amt_exchanges")
REALM = "Digest:A3829B3827DE4D33D4449B366831FD01"


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324 - HTTP Digest is defined on MD5


def _canonical(xml: str) -> str:
    root = ElementTree.fromstring(xml.encode())
    for el in root.iter():  # the recording is indented; whitespace between elements is not content
        el.text = el.text.strip() if el.text else None
        el.tail = None
    return ElementTree.canonicalize(ElementTree.tostring(root))


class FakeAmt(ThreadingHTTPServer):
    """Answers POST /wsman behind Digest auth with a recorded response; records what it received."""

    def __init__(self, password: str, response_file: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.password = password
        self.response = (EXCHANGES / response_file).read_text()
        self.nonce = secrets.token_hex(16)
        self.bodies: list[str] = []
        self.unauthorised = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: FakeAmt

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
        if not self._authorised():
            self.server.unauthorised += 1
            self.send_response(401)
            self.send_header("WWW-Authenticate", f'Digest realm="{REALM}", nonce="{self.server.nonce}", '
                                                 'stale="false", qop="auth"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.server.bodies.append(body)
        message_id = re.search(r"uuid:([0-9a-f-]{36})", body)
        answer = self.server.response.replace("MESSAGE_ID", message_id.group(1) if message_id else "none")
        data = answer.encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/soap+xml;charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorised(self) -> bool:
        header = self.headers.get("Authorization", "")
        if not header.startswith("Digest "):
            return False
        f = dict(re.findall(r'(\w+)="?([^",]*)"?', header[7:]))
        if f.get("username") != "admin" or f.get("realm") != REALM or f.get("nonce") != self.server.nonce:
            return False
        ha1 = _md5(f"admin:{REALM}:{self.server.password}")
        ha2 = _md5(f"POST:{f.get('uri')}")
        expected = _md5(f"{ha1}:{f['nonce']}:{f.get('nc')}:{f.get('cnonce')}:{f.get('qop')}:{ha2}")
        return secrets.compare_digest(expected, f.get("response", ""))


@pytest.fixture()
def amt_factory() -> Iterator[object]:
    servers: list[FakeAmt] = []

    def make(response_file: str, password: str = "amt-Pw1!") -> FakeAmt:
        server = FakeAmt(password, response_file)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield make
    for s in servers:
        s.shutdown()
        s.server_close()


def test_power_on_sends_the_recorded_request(amt_factory) -> None:  # type: ignore[no-untyped-def]
    server = amt_factory("power_on_response_ok.xml")
    AmtWake(server.address, Credentials("admin", "amt-Pw1!")).send()
    assert server.unauthorised == 1  # the Digest challenge, then the authenticated request
    [body] = server.bodies
    message_id = re.search(r"uuid:([0-9a-f-]{36})", body).group(1)  # type: ignore[union-attr]
    recorded = (EXCHANGES / "power_on_request.xml").read_text()
    recorded = recorded.replace("MESSAGE_ID", message_id).replace("TO_URL", f"http://{server.address}/wsman")
    assert _canonical(body) == _canonical(recorded)


def test_refusal_and_fault_are_reported(amt_factory) -> None:  # type: ignore[no-untyped-def]
    refused = amt_factory("power_on_response_refused.xml")
    with pytest.raises(MeterError, match="returned 2"):
        AmtWake(refused.address, Credentials("admin", "amt-Pw1!")).send()
    fault = amt_factory("fault_response.xml")
    with pytest.raises(MeterError, match="Selectors for the resource were not valid"):
        AmtWake(fault.address, Credentials("admin", "amt-Pw1!")).send()


def test_wrong_password_is_an_auth_error(amt_factory) -> None:  # type: ignore[no-untyped-def]
    server = amt_factory("power_on_response_ok.xml")
    with pytest.raises(MeterAuthError, match="credentials refused"):
        AmtWake(server.address, Credentials("admin", "wrong")).send()
    assert server.bodies == []


def test_unreachable_and_malformed() -> None:
    with pytest.raises(MeterError, match="no answer"):
        AmtWake("127.0.0.1:9", Credentials("admin", "x"), timeout_s=1.0).send()
    with pytest.raises(MeterError, match="malformed XML"):
        parse_return_value(b"<not-xml")
    assert parse_return_value((EXCHANGES / "power_on_response_ok.xml").read_bytes()) == 0
