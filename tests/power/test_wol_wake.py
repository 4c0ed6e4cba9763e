"""Wake-on-LAN on a real UDP socket, and the waker's retry, verification, fall-back and failed state.

The "host" here is a thread with a UDP socket on 127.0.0.1: it checks each magic packet byte by
byte, can drop the first ones (a lost packet), and once woken answers on a TCP port, which is what
the waker's verification checks.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from consolidator.domain.errors import UserError
from consolidator.domain.types import PowerState
from consolidator.power.meters import MeterAuthError, MeterError
from consolidator.power.wake import HostWaker, PowerController, RetryPolicy, WakeFailed, tcp_answers
from consolidator.power.wol import WolWake, check_mac, magic_packet

MAC = "52:54:00:ab:cd:ef"
EXPECTED = b"\xff" * 6 + bytes([0x52, 0x54, 0x00, 0xAB, 0xCD, 0xEF]) * 16
FAST = RetryPolicy(attempts_per_method=3, backoff_s=0.05, verify_timeout_s=1.0, verify_poll_s=0.05)


class SleepingHost:
    """Receives UDP on 127.0.0.1; wakes (listens on TCP) after ``drop`` valid packets were lost."""

    def __init__(self, mac_bytes: bytes, drop: int) -> None:
        self.expected = b"\xff" * 6 + mac_bytes * 16
        self.drop = drop
        self.packets: list[bytes] = []
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.udp.settimeout(0.1)
        self.udp_port = self.udp.getsockname()[1]
        self.tcp = socket.socket()
        self.tcp.bind(("127.0.0.1", 0))
        self.tcp_port = self.tcp.getsockname()[1]
        self.awake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.udp.recv(2048)
            except TimeoutError:
                continue
            self.packets.append(data)
            valid = [p for p in self.packets if p == self.expected]
            if data == self.expected and len(valid) > self.drop and not self.awake.is_set():
                self.tcp.listen(4)  # the host's agent now answers
                self.awake.set()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.udp.close()
        self.tcp.close()


@pytest.fixture()
def host_factory() -> Iterator[object]:
    hosts: list[SleepingHost] = []

    def make(drop: int) -> SleepingHost:
        hosts.append(SleepingHost(bytes.fromhex(MAC.replace(":", "")), drop))
        return hosts[-1]

    yield make
    for h in hosts:
        h.close()


def test_magic_packet_is_sent_byte_for_byte(host_factory) -> None:  # type: ignore[no-untyped-def]
    host = host_factory(drop=0)
    WolWake(MAC, "127.0.0.1", host.udp_port).send()
    assert host.awake.wait(2.0)
    assert host.packets == [EXPECTED] and len(EXPECTED) == 102
    assert magic_packet("52-54-00-AB-CD-EF") == EXPECTED


def test_a_lost_packet_is_retried_until_the_host_answers(host_factory) -> None:  # type: ignore[no-untyped-def]
    host = host_factory(drop=1)
    waker = HostWaker("pm1", [WolWake(MAC, "127.0.0.1", host.udp_port)],
                      tcp_answers("127.0.0.1", host.tcp_port, 0.2), FAST)
    result = asyncio.run(waker.wake())
    assert result.ok and result.method == "wol" and result.state is PowerState.ON
    assert [a.ok for a in result.attempts] == [False, True]
    assert "did not answer" in (result.attempts[0].error or "")
    assert host.packets == [EXPECTED, EXPECTED]


def test_every_packet_lost_ends_failed_in_bounded_time(host_factory) -> None:  # type: ignore[no-untyped-def]
    host = host_factory(drop=100)
    waker = HostWaker("pm1", [WolWake(MAC, "127.0.0.1", host.udp_port)],
                      tcp_answers("127.0.0.1", host.tcp_port, 0.2), FAST)
    start = time.monotonic()
    result = asyncio.run(waker.wake())
    assert not result.ok and result.state is PowerState.FAILED and len(result.attempts) == 3
    assert time.monotonic() - start < 3 * FAST.verify_timeout_s + 2.0
    assert len(host.packets) == 3


class Scripted:
    """A wake method double (the real ones are tested against their peers): fails as scripted."""

    def __init__(self, name: str, outcomes: list[Exception | None], on_success: threading.Event) -> None:
        self.name, self.outcomes, self.on_success, self.calls = name, outcomes, on_success, 0

    def send(self) -> None:
        outcome = self.outcomes[min(self.calls, len(self.outcomes) - 1)]
        self.calls += 1
        if outcome is not None:
            raise outcome
        self.on_success.set()

    def describe(self) -> str:
        return self.name


def _verify(flag: threading.Event):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return flag.is_set()
    return check


@pytest.mark.parametrize(("first", "second", "ok", "first_calls", "second_calls"), [
    ([MeterError("timeout")], [None], True, 3, 1),  # first method exhausted, falls back
    ([MeterAuthError("refused")], [None], True, 1, 1),  # a refused password is not retried
    ([MeterError("x"), None], [None], True, 2, 0),  # retry of the first method succeeds
    ([MeterError("x")], [OSError("unreachable")], False, 3, 3),  # all fail: FAILED
])
def test_fall_back_in_order(first, second, ok, first_calls, second_calls) -> None:  # type: ignore[no-untyped-def]
    up = threading.Event()
    a, b = Scripted("ipmi", first, up), Scripted("redfish", second, up)
    result = asyncio.run(HostWaker("pm2", [a, b], _verify(up), FAST).wake())
    assert (result.ok, a.calls, b.calls) == (ok, first_calls, second_calls)
    assert result.method == (("redfish" if second_calls else "ipmi") if ok else None)


def test_backoff_grows_and_is_capped() -> None:
    pauses: list[float] = []

    async def sleep(s: float) -> None:
        pauses.append(s)

    policy = RetryPolicy(attempts_per_method=5, backoff_s=1.0, backoff_factor=3.0, backoff_max_s=5.0,
                         verify_timeout_s=0.0)
    never = Scripted("wol", [MeterError("lost")], threading.Event())
    asyncio.run(HostWaker("pm3", [never], None, policy, sleep=sleep).wake())
    assert pauses == [1.0, 3.0, 5.0, 5.0]


def test_a_hanging_method_times_out() -> None:
    class Hangs:
        name = "amt"

        def send(self) -> None:
            time.sleep(1.0)

        def describe(self) -> str:
            return "hangs"

    policy = RetryPolicy(attempts_per_method=1, send_timeout_s=0.1)

    async def timed() -> tuple[object, float]:
        start = time.monotonic()
        res = await HostWaker("pm4", [Hangs()], None, policy).wake()
        return res, time.monotonic() - start

    # asyncio.run itself waits for the abandoned thread at exit; the wake returned long before
    result, elapsed = asyncio.run(timed())
    assert not result.ok and "no answer within 0.1 s" in (result.attempts[0].error or "")  # type: ignore[attr-defined]
    assert elapsed < 0.9


def test_power_controller_marks_failed_and_recovers() -> None:
    up = threading.Event()
    flaky = Scripted("ipmi", [MeterError("down"), MeterError("down"), MeterError("down"), None], up)
    ctl = PowerController({"pm5": HostWaker("pm5", [flaky], _verify(up), FAST)})
    with pytest.raises(WakeFailed, match="pm5 did not wake after 3 attempt"):
        asyncio.run(ctl.wake("pm5"))
    assert ctl.state("pm5") is PowerState.FAILED
    asyncio.run(ctl.wake("pm5"))
    assert ctl.state("pm5") is None and ctl.results["pm5"].ok
    with pytest.raises(WakeFailed, match="no wake methods"):
        asyncio.run(ctl.wake("unknown"))


def test_bad_configuration_is_a_user_error() -> None:
    with pytest.raises(UserError, match="MAC"):
        check_mac("52:54:00:ab:cd")
    with pytest.raises(UserError, match="no wake method"):
        HostWaker("pm6", [])
    with pytest.raises(UserError):
        RetryPolicy(attempts_per_method=0)
