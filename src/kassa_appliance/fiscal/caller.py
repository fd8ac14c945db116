"""Runs a blocking register backend in its own worker thread, with a timeout.

The event loop never waits on the driver directly: every call goes to a single-thread
executor (one per register, so calls stay in order and the backend stays
thread-confined). A call that outlives its timeout is reported as a lost connection —
ambiguous for a fiscal task — and the thread is left to finish; the next call waits for
it first, because a driver handle cannot serve two calls at once.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Callable
from typing import Any

from kassa_appliance.registers.base import (
    CONNECTION_LOST,
    NO_CONNECTION,
    JsonDict,
    Register,
    RegisterError,
)


class RegisterCaller:
    def __init__(self, register: Register, timeout: float) -> None:
        self.register = register
        self.timeout = timeout
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"register-{register.name}"
        )
        self._stuck: concurrent.futures.Future[Any] | None = None

    @property
    def hung(self) -> bool:
        """True while a call that timed out is still running in the worker thread."""
        return self._stuck is not None and not self._stuck.done()

    async def _settle_stuck_call(self) -> None:
        if self._stuck is not None:
            await asyncio.wrap_future(self._stuck)
            self._stuck = None

    def start(self, func: Any, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        """Hand a call to the worker thread now; collect it with :meth:`finish`."""
        if self.hung:
            raise RegisterError(NO_CONNECTION, "register is still busy with a call that timed out")
        self._stuck = None
        return self._executor.submit(func, *args, **kwargs)

    async def finish(self, future: concurrent.futures.Future[Any], *, fiscal: bool = False) -> Any:
        """The call's result; a lost connection if it outlives the timeout."""
        try:
            async with asyncio.timeout(self.timeout):  # not wait_for: see kassa_appliance.aio
                return await asyncio.wrap_future(future)
        except TimeoutError:
            self._stuck = future
            raise self._timed_out(fiscal) from None

    def _timed_out(self, fiscal: bool) -> RegisterError:
        code = CONNECTION_LOST if fiscal else NO_CONNECTION
        return RegisterError(code, f"register did not answer within {self.timeout:g} s")

    async def run(self, func: Any, *args: Any, fiscal: bool = False, **kwargs: Any) -> Any:
        return await self.finish(self.start(func, *args, **kwargs), fiscal=fiscal)

    async def finish_watched(
        self,
        future: concurrent.futures.Future[Any],
        call_deadline: Callable[[], float | None],
        *,
        fiscal: bool = False,
    ) -> Any:
        """:meth:`finish` for a job that makes several register calls in a row.

        The timeout applies to each call: ``call_deadline()`` is the monotonic time by which
        the call in progress must end, or None between calls.
        """
        wrapped = asyncio.wrap_future(future)
        while True:
            deadline = call_deadline()
            wait = self.timeout if deadline is None else deadline - time.monotonic()
            if wait > 0:
                done, _ = await asyncio.wait({wrapped}, timeout=wait)
                if done:
                    return wrapped.result()
                continue
            self._stuck = future
            raise self._timed_out(fiscal)

    def start_process(
        self, task: JsonDict, *, request_id: str | None = None
    ) -> concurrent.futures.Future[Any]:
        """Send one task to the worker thread now."""
        if request_id is None:
            return self.start(self.register.process, task)
        return self.start(self.register.process, task, request_id=request_id)

    async def process(
        self, task: JsonDict, *, fiscal: bool = False, request_id: str | None = None
    ) -> JsonDict:
        result: JsonDict = await self.finish(
            self.start_process(task, request_id=request_id), fiscal=fiscal
        )
        return result

    async def wait_until_free(self) -> None:
        """Wait for a timed-out call to come back (used when stopping)."""
        try:
            await self._settle_stuck_call()
        except Exception:
            self._stuck = None

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
