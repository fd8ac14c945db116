"""Property: whatever TASK and REPLY texts KASSAJOB items carry, every item ends ``done`` or
``failed`` in Bitrix24, the link's loops keep running without an unexpected error, and a
valid job stored after the garbage prints.

Random JSON, random text, nesting thousands of levels deep, lone surrogates as JSON escapes,
tasks whose ``type`` is a list or an object. One emulator, journal, engine, simulator and
in-process JobLink serve every example (setting them up per example would cost seconds)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bitrix_support import oauth_client
from kassa_appliance.bitrix.jobs import JOB_ENTITY, EngineAdapter, JobLink, publish_job
from kassa_appliance.fiscal.engine import Engine
from kassa_appliance.fiscal.journal import Journal
from kassa_appliance.registers.simulator import SimulatorRegister
from kassa_appliance.registers.simulator_state import load_state
from kassa_appliance.testbeds.bitrix24.app import Emulator
from kassa_appliance.testbeds.bitrix24.state import CASHIER_USER_ID
from sample_tasks import sell
from test_jobs import FAST_ENGINE, KASSA

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


def deep(depth: int, opening: str, closing: str, inner: str = "") -> str:
    return opening * depth + inner + closing * depth


TEXTS = st.one_of(
    JSON_VALUES.map(json.dumps),
    st.text(max_size=200),
    st.integers(30, 3000).map(lambda n: deep(n, "[", "]")),
    st.integers(30, 3000).map(lambda n: deep(n, '{"a":', "}", "1")),
    st.sampled_from(
        ['{"type":"sell","x":"\\ud800"}', '"\\udfff"', '{"\\ud800": 1}', '["\\udc00"]']
    ),
    st.fixed_dictionaries({"type": JSON_VALUES}).map(json.dumps),
    st.integers(30, 1200).map(
        lambda n: json.dumps(sell())[:-1] + ', "companyInfo": ' + deep(n, '{"a":', "}", "{}") + "}"
    ),
)
ITEMS = st.lists(st.tuples(TEXTS, st.just("") | TEXTS, st.booleans()), min_size=1, max_size=4)
DEADLINE = 30.0


class Appliance:
    """The emulated portal and a linked appliance, driven on one private event loop."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.loop = asyncio.new_event_loop()

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    async def start(self) -> None:
        self.emulator = Emulator()
        await self.emulator.start()
        self.journal = Journal(self.root / "journal.sqlite3")
        self.engine = Engine(self.journal, SimulatorRegister(self.root / "simulator"), FAST_ENGINE)
        self.worker = asyncio.create_task(self.engine.run())
        self.rest = oauth_client(self.emulator, self.root / "appliance.json")
        self.producer = oauth_client(
            self.emulator,
            self.root / "producer.json",
            pairing=self.emulator.credentials(user_id=CASHIER_USER_ID),
        )
        self.link = JobLink(
            self.rest,
            EngineAdapter(self.engine),
            kassa_id=KASSA,
            reconcile_interval=0.1,
            sweep_interval=0.05,
            retry_base=0.01,
            retry_max=0.05,
            heartbeat_min_gap=0.05,
        )
        await self.link.ensure_storage()
        self.link_task = asyncio.create_task(self.link.run())

    async def stop(self) -> None:
        self.link_task.cancel()
        await asyncio.gather(self.link_task, return_exceptions=True)
        await self.engine.stop()
        await self.worker
        await self.producer.aclose()
        await self.rest.aclose()
        self.journal.close()
        await self.emulator.stop()

    def state_of(self, job_id: str) -> str:
        items = self.emulator.state.entities[JOB_ENTITY].items.values()
        return next(str(i.properties.get("STATE")) for i in items if i.name == job_id)

    async def settle(self, job_ids: list[str]) -> None:
        deadline = self.loop.time() + DEADLINE
        while not all(self.state_of(j) in {"done", "failed"} for j in job_ids):
            states = {j: self.state_of(j) for j in job_ids}
            assert self.loop.time() < deadline, f"items never answered: {states}"
            assert not self.link_task.done(), "the link ended"
            await asyncio.sleep(0.02)

    async def store(self, items: list[tuple[str, str, bool]]) -> list[str]:
        job_ids = []
        for task, reply, ring in items:
            job_id = str(uuid.uuid4())
            await self.producer.result(
                "entity.item.add",
                {
                    "ENTITY": JOB_ENTITY,
                    "NAME": job_id,
                    "PROPERTY_VALUES": {
                        "KASSA": KASSA,
                        "STATE": "new",
                        "TASK": task,
                        "REPLY": reply,
                    },
                },
            )
            if ring:  # the doorbell handler must not raise either
                await self.link.on_doorbell({"job": job_id, "kassa": KASSA})
            job_ids.append(job_id)
        return job_ids


@pytest.fixture
def appliance(tmp_path: Path) -> Iterator[Appliance]:
    appliance = Appliance(tmp_path)
    appliance.run(appliance.start())
    try:
        yield appliance
    finally:
        appliance.run(appliance.stop())
        appliance.loop.close()


def test_any_kassajob_texts_end_final_and_the_link_keeps_working(appliance: Appliance) -> None:
    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        database=None,
    )
    @given(ITEMS)
    def every_item_is_answered(items: list[tuple[str, str, bool]]) -> None:
        job_ids = appliance.run(appliance.store(items))
        appliance.run(appliance.settle(job_ids))

    every_item_is_answered()

    good = str(uuid.uuid4())
    appliance.run(publish_job(appliance.producer, job_id=good, kassa=KASSA, task=sell()))
    appliance.run(appliance.settle([good]))
    assert appliance.state_of(good) == "done"
    state = load_state(appliance.root / "simulator")
    assert state is not None and state.document_counts.get("sell", 0) >= 1
    assert not appliance.link_task.done()
    assert not any(task.done() for task in appliance.link.tasks())
    assert appliance.link.health.snapshot()["loops"] == {}, "an unexpected error in the link"
