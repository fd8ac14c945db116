"""The LAN API's lock-out after repeated wrong passwords, on a controlled clock."""

from __future__ import annotations

from kassa_appliance.channels.lan.throttle import ADDRESSES, LoginThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_failures_within_the_window_lock_out_for_the_lockout_time() -> None:
    clock = Clock()
    throttle = LoginThrottle(failures=3, window=60, lockout=30, clock=clock)
    for _ in range(2):
        throttle.failed("10.0.0.5")
    assert throttle.retry_after("10.0.0.5") is None
    throttle.failed("10.0.0.5")
    assert throttle.retry_after("10.0.0.5") == 30
    assert throttle.retry_after("10.0.0.6") is None  # only that address
    clock.now += 29
    assert throttle.retry_after("10.0.0.5") == 1
    clock.now += 1
    assert throttle.retry_after("10.0.0.5") is None
    assert throttle.lockouts == 1


def test_slow_failures_and_a_right_password_do_not_add_up() -> None:
    clock = Clock()
    throttle = LoginThrottle(failures=3, window=60, lockout=30, clock=clock)
    for _ in range(5):  # one a minute: never three within the window
        throttle.failed("10.0.0.5")
        clock.now += 61
    assert throttle.retry_after("10.0.0.5") is None
    throttle.failed("10.0.0.5")
    throttle.failed("10.0.0.5")
    throttle.succeeded("10.0.0.5")
    throttle.failed("10.0.0.5")
    assert throttle.retry_after("10.0.0.5") is None


def test_memory_is_bounded_by_the_number_of_addresses() -> None:
    throttle = LoginThrottle(failures=2, window=60, lockout=30, clock=Clock())
    for n in range(ADDRESSES * 3):
        throttle.failed(f"10.{n // 65536}.{n // 256 % 256}.{n % 256}")
    assert len(throttle._recent) <= ADDRESSES
