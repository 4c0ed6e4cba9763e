"""Host power control: wake by an ordered list of methods with retry, backoff, verification, fall-back.

``HostWaker.wake()`` tries each method in turn (WoL, IPMI, Redfish, AMT, in the order given), each
up to ``attempts_per_method`` times with exponential backoff. An attempt succeeds only when the
verification (the host's agent answers, or the BMC reports power on) passes within
``verify_timeout_s``. A refused password skips to the next method at once (retrying cannot help).
When every attempt fails the host is reported ``PowerState.FAILED`` so the planner routes around it.
Suspend goes through the host agent (``Suspender``); ``PowerController`` is the ``Waker`` the
manager's ``RemoteCluster`` takes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from consolidator.domain.errors import UserError
from consolidator.domain.types import PowerState
from consolidator.power.meters import MeterAuthError, MeterError
from consolidator.power.registry import RETRY_DEFAULTS

log = logging.getLogger(__name__)

Verify = Callable[[], Awaitable[bool]]


class WakeMethod(Protocol):
    """One way to power a host on. ``send`` blocks, raises on a refused or unanswered request."""

    name: str

    def send(self) -> None: ...

    def describe(self) -> str: ...


class Suspender(Protocol):
    """Suspends a host to RAM through its agent (``systemctl suspend``); the agent owner implements it."""

    async def suspend(self, host: str) -> None: ...


class WakeFailed(Exception):
    """Every wake method and attempt failed; the host is to be treated as failed."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Attempts and timing; the defaults a configuration may change are ``power.registry.RETRY``'s."""

    attempts_per_method: int = int(RETRY_DEFAULTS["attempts_per_method"])
    backoff_s: float = float(RETRY_DEFAULTS["backoff_s"])
    backoff_factor: float = 2.0
    backoff_max_s: float = 30.0
    send_timeout_s: float = 15.0
    verify_timeout_s: float = float(RETRY_DEFAULTS["verify_timeout_s"])
    verify_poll_s: float = 1.0

    def __post_init__(self) -> None:
        if self.attempts_per_method < 1:
            raise UserError("attempts_per_method must be >= 1", field="attempts")
        if min(self.backoff_s, self.send_timeout_s, self.verify_timeout_s, self.verify_poll_s) < 0:
            raise UserError("retry timings must be >= 0", field="retry")


@dataclass(frozen=True, slots=True)
class WakeAttempt:
    method: str
    attempt: int
    ok: bool
    error: str | None
    elapsed_s: float


@dataclass(frozen=True, slots=True)
class WakeResult:
    """How a wake went: every attempt, the method that worked, and the host's resulting state."""

    host: str
    ok: bool
    attempts: tuple[WakeAttempt, ...]
    method: str | None
    state: PowerState

    def summary(self) -> str:
        if self.ok:
            return f"{self.host} woke by {self.method} after {len(self.attempts)} attempt(s)"
        errors = "; ".join(f"{a.method}#{a.attempt}: {a.error}" for a in self.attempts)
        return f"{self.host} did not wake after {len(self.attempts)} attempt(s): {errors}"


class HostWaker:
    """Wakes one host. ``sleep`` and ``clock`` are injected (tests pass fast ones)."""

    def __init__(self, host: str, methods: Sequence[WakeMethod], verify: Verify | None = None,
                 policy: RetryPolicy = RetryPolicy(),
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not methods:
            raise UserError(f"no wake method configured for host {host!r}", field="wake")
        self.host = host
        self.methods = tuple(methods)
        self.verify = verify
        self.policy = policy
        self._sleep = sleep
        self._clock = clock

    async def wake(self) -> WakeResult:
        """Try every method in order until one is verified; never hangs (every step has a timeout)."""
        attempts: list[WakeAttempt] = []
        for method in self.methods:
            delay = self.policy.backoff_s
            for n in range(1, self.policy.attempts_per_method + 1):
                started = self._clock()
                error, final = await self._attempt(method)
                attempts.append(WakeAttempt(method.name, n, error is None, error, self._clock() - started))
                if error is None:
                    log.info("%s woke by %s (attempt %d)", self.host, method.name, n)
                    return WakeResult(self.host, True, tuple(attempts), method.name, PowerState.ON)
                log.warning("waking %s by %s, attempt %d: %s", self.host, method.name, n, error)
                if final:
                    break
                if n < self.policy.attempts_per_method:
                    await self._sleep(delay)
                    delay = min(delay * self.policy.backoff_factor, self.policy.backoff_max_s)
        return WakeResult(self.host, False, tuple(attempts), None, PowerState.FAILED)

    async def _attempt(self, method: WakeMethod) -> tuple[str | None, bool]:
        """(error or None, whether retrying this method is pointless)."""
        try:
            await asyncio.wait_for(asyncio.to_thread(method.send), self.policy.send_timeout_s)
        except MeterAuthError as exc:
            return str(exc), True
        except TimeoutError:
            return f"{method.describe()}: no answer within {self.policy.send_timeout_s:g} s", False
        except (MeterError, OSError) as exc:
            return str(exc) or type(exc).__name__, False
        if await self._verified():
            return None, False
        return f"sent, but the host did not answer within {self.policy.verify_timeout_s:g} s", False

    async def _verified(self) -> bool:
        if self.verify is None:
            return True
        deadline = self._clock() + self.policy.verify_timeout_s
        while True:
            try:
                left = max(0.0, deadline - self._clock())
                if await asyncio.wait_for(self.verify(), max(left, self.policy.verify_poll_s)):
                    return True
            except (TimeoutError, OSError, MeterError) as exc:
                log.debug("verifying %s: %s", self.host, exc)
            if self._clock() >= deadline:
                return False
            await self._sleep(self.policy.verify_poll_s)


def tcp_answers(host: str, port: int, timeout_s: float = 1.0) -> Verify:
    """A verification: the host accepts a TCP connection on ``port`` (its agent, or ssh)."""

    async def check() -> bool:
        try:
            _reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
        except (OSError, TimeoutError):
            return False
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass
        return True

    return check


def in_thread(check: Callable[[], bool]) -> Verify:
    """Wrap a blocking check (e.g. ``RedfishWake.powered_on``) as a verification."""

    async def run() -> bool:
        return await asyncio.to_thread(check)

    return run


@dataclass
class PowerController:
    """Wakes and suspends the cluster's hosts; implements the manager's ``Waker`` (``await wake(host)``).

    A host whose wake failed stays in ``failed`` (PowerState.FAILED) until a later wake succeeds.
    """

    wakers: dict[str, HostWaker]
    suspender: Suspender | None = None
    results: dict[str, WakeResult] = field(default_factory=dict)
    failed: set[str] = field(default_factory=set)

    async def wake(self, host: str) -> None:
        """Wake ``host``; raises WakeFailed (with every attempt's error) when it cannot be woken."""
        result = await self.wake_with_result(host)
        if not result.ok:
            raise WakeFailed(result.summary())

    async def wake_with_result(self, host: str) -> WakeResult:
        waker = self.wakers.get(host)
        if waker is None:
            raise WakeFailed(f"no wake methods configured for host {host!r}")
        result = await waker.wake()
        self.results[host] = result
        (self.failed.discard if result.ok else self.failed.add)(host)
        return result

    async def suspend(self, host: str) -> None:
        if self.suspender is None:
            raise RuntimeError("no Suspender configured (the host agent suspends hosts)")
        await self.suspender.suspend(host)

    def state(self, host: str) -> PowerState | None:
        """FAILED for a host whose last wake failed, else None (the cluster's events know the rest)."""
        return PowerState.FAILED if host in self.failed else None
