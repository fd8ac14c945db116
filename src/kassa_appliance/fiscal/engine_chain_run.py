"""The engine's side of a receipt chain (:mod:`kassa_appliance.fiscal.engine_chain`).

Owns starting a chain in the register thread under the per-call timeout, the hooks the
chain calls back into (its own journal connection, preparing the next job, whether the
engine lets it go on, the fiscalised transition), and taking in the chain's committed
results while it runs and after it ends, so status and ``wait_for`` follow each receipt.
"""

from __future__ import annotations

import asyncio

from kassa_appliance.fiscal.engine_base import EngineBase, MustWait
from kassa_appliance.fiscal.engine_chain import ChainEnd, ChainHooks, ChainStep, ReceiptChain
from kassa_appliance.fiscal.journal import Journal
from kassa_appliance.registers.base import RegisterError


class ChainRunning(EngineBase):
    async def _run_chain(self, first: ChainStep) -> ChainEnd:
        """Fiscalise ``first`` and the fresh receipts queued behind it in the register
        thread (see :mod:`kassa_appliance.fiscal.engine_chain`)."""
        chain = ReceiptChain(first, self._register, self._chain_hooks(), self._caller.timeout)
        follower = asyncio.create_task(self._follow_chain(chain))
        call = None
        try:
            call = self._caller.start(chain.run)
            end: ChainEnd = await self._caller.finish_watched(
                call, chain.call_deadline, fiscal=True
            )
        except RegisterError as error:
            # A call outlived its timeout (or an earlier one still has not come back):
            # nothing more is sent or committed by the chain; the receipt that was with
            # the register waits for the FD check.
            lost = chain.abort()
            if lost is None:
                raise MustWait(
                    "register is not answering (a driver call is hung)", "hung"
                ) from None
            return ChainEnd(failed=lost, error=error)
        finally:
            if call is not None and not call.done():
                chain.abort()  # cancelled: the call in flight is the last one sent
            follower.cancel()
            self._note_chain_progress(chain)
        return end

    def _chain_hooks(self) -> ChainHooks:
        return ChainHooks(
            journal=self._journal_for_thread,
            prepare=self._prepare_quietly,
            may_continue=self._may_chain,
            fiscalized=self._fiscalized_transition,
        )

    def _journal_for_thread(self) -> Journal:
        if self._thread_journal is None:
            self._thread_journal = Journal(self._journal.path)
        return self._thread_journal

    def _may_chain(self) -> bool:
        if not self._settings.chain_receipts:
            return False
        return not self._stopping and not self._progress.print_pending and self._available.is_set()

    async def _follow_chain(self, chain: ReceiptChain) -> None:
        """Take in the chain's committed results while it runs (status, wait_for, the
        Bitrix24 write-back follow each receipt, at most ``progress_interval`` late)."""
        while True:
            await asyncio.sleep(self._settings.progress_interval)
            self._note_chain_progress(chain)

    def _note_chain_progress(self, chain: ReceiptChain) -> None:
        committed = chain.take_committed()
        for job, result in committed:
            self._note_fiscalized(job, result)
        step = chain.in_register
        if step is not None:
            self._progress.current_job = step.job.id
        if committed:
            self._changed.set()
            self._publish_status()
