"""The engine's connection to its register.

Owns opening the register before work (unplugged, hung or unreachable registers make the
queue wait; an unusable driver raises an alert), closing it when the engine stops, the
FD-number queries (the cached last FD and the fresh one the FD check needs), and
printing a fiscalised document the printer could not print (``continuePrint``).
"""

from __future__ import annotations

import logging

from kassa_appliance.fiscal.engine_base import EngineBase, MustWait
from kassa_appliance.fiscal.engine_status import wait_reason
from kassa_appliance.registers.base import ErrorCategory, RegisterError

log = logging.getLogger("kassa_appliance.fiscal.engine")


class RegisterConnection(EngineBase):
    async def _ensure_ready(self) -> None:
        if not self._available.is_set():
            raise MustWait("register unplugged: jobs wait until it is connected again", "offline")
        if self._caller.hung:
            raise MustWait("register is not answering (a driver call is hung)", "hung") from None
        if not self._opened:
            try:
                await self._caller.run(self._register.open)
            except RegisterError as error:
                self._progress.register_online = False
                self._note_error(error)
                if getattr(error, "health", None) == "blocked":
                    # e.g. libfptr10.so missing: waiting will not fix it, a person must.
                    # Short: it becomes the snap health message (≤ 70 characters); the
                    # full reason is in last_error and the log.
                    alert = "register driver unusable; see kassa-appliance status"
                    log.error("register backend unusable: %s", error.description)
                    if alert not in self._progress.alerts:
                        self._progress.alerts.append(alert)
                raise MustWait(f"register not reachable: {error.description}", "offline") from None
            self._opened = True
            self._last_fd = None
            self._progress.register_online = True
            self._publish_status()
        if self._progress.print_pending:
            await self._try_continue_print(raise_wait=True)

    async def _close_register(self) -> None:
        try:
            await self._caller.run(self._register.close)
        except Exception as error:
            log.warning("closing the register failed: %s", error)
        self._opened = False

    # -- register queries ----------------------------------------------------------------

    async def _last_fd_number(self) -> int:
        if self._last_fd is not None:
            return self._last_fd
        self._last_fd = await self._query_last_fd()
        return self._last_fd

    async def _query_last_fd(self) -> int:
        status = await self._caller.process({"type": "getFnStatus"})
        return int(status["fnStatus"]["fiscalDocumentNumber"])

    async def _try_continue_print(self, raise_wait: bool = False) -> None:
        try:
            await self._caller.process({"type": "continuePrint"})
        except RegisterError as error:
            self._progress.print_pending = True
            if raise_wait and error.category is ErrorCategory.WAIT:
                raise MustWait(
                    "a fiscalised document is waiting to be printed: " + wait_reason(error),
                    f"atol-{error.code}",
                ) from None
            return
        self._progress.print_pending = False
