"""Poison KASSAJOB items: a TASK or REPLY that no parser should take (nested thousands of
levels deep, a lone surrogate ``\\ud800`` as a JSON escape, not an object) is written back
``failed`` with its reason, by doorbell and by reconciliation, and the link keeps working:
the valid job after it prints, is written back, and the heartbeat goes on.

Real emulator over loopback, real journal, engine and simulator (fixtures of test_jobs and
test_bitrix_link); nothing of ours is mocked."""

# The fixtures imported from test_jobs/test_bitrix_link are parameters of the same name.
# ruff: noqa: F811

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest

from kassa_appliance.bitrix.jobs import DEVICE_ENTITY, publish_job
from kassa_appliance.fiscal.journal import JobState
from sample_tasks import sell
from test_bitrix_link import LinkedAppliance, linked  # noqa: F401
from test_jobs import KASSA, World, props, running, wait_until, world  # noqa: F401

DEEP = "[" * 5000 + "]" * 5000
SURROGATE_TASK = '{"type": "sell", "items": [], "operator": {"name": "\\ud800"}}'
VALID_TASK = json.dumps(sell("5.00"))

POISONS: dict[str, tuple[str, str, str]] = {
    # name: (TASK, REPLY, what the reason must mention)
    "deep-task": (DEEP, "", "TASK: nested"),
    "surrogate-task": (SURROGATE_TASK, "", "lone surrogate"),
    "deep-reply": (VALID_TASK, DEEP, "REPLY: nested"),
    "surrogate-reply": (VALID_TASK, '{"chat": "\\ud800"}', "REPLY"),
    "list-task": ("[1, 2]", "", "got a list"),
}


async def store(world: World, job_id: str, task: str, reply: str, *, ring: bool) -> None:
    """What a producer does, with raw TASK/REPLY texts."""
    await world.producer.result(
        "entity.item.add",
        {
            "ENTITY": "KASSAJOB",
            "NAME": job_id,
            "PROPERTY_VALUES": {
                "KASSA": KASSA,
                "STATE": "new",
                "TASK": task,
                "SOURCE": "test",
                "REPLY": reply,
            },
        },
    )


def error_of(world: World, job_id: str) -> dict[str, Any]:
    error: dict[str, Any] = json.loads(props(world.item(job_id))["ERROR"] or "")
    return error


def device_status(linked: LinkedAppliance) -> str:
    items = list(linked.emulator.state.entities[DEVICE_ENTITY].items.values())
    return str(items[0].properties.get("STATUS")) if items else ""


@pytest.mark.parametrize("poison", sorted(POISONS))
async def test_a_poison_item_found_by_reconciliation_fails_and_the_link_goes_on(
    world: World, poison: str
) -> None:
    task, reply, reason = POISONS[poison]
    link = world.link(reconcile_interval=0.2)
    await link.ensure_storage()
    bad = f"bad-{uuid.uuid4()}"
    await store(world, bad, task, reply, ring=False)
    async with running(link) as running_link:
        await wait_until(lambda: props(world.item(bad)).get("STATE") == "failed")
        assert reason in error_of(world, bad)["message"]
        # The link is still alive: a valid job stored afterwards prints and is written back.
        good = str(uuid.uuid4())
        await publish_job(world.producer, job_id=good, kassa=KASSA, task=sell(), ring=False)
        await wait_until(lambda: props(world.item(good)).get("STATE") == "done")
        assert world.receipts() == 1
        assert not any(t.done() for t in running_link.tasks()), "a link loop ended"
        assert running_link.health.snapshot()["loops"] == {}  # no unexpected error at all


@pytest.mark.parametrize("poison", ["deep-task", "surrogate-task", "deep-reply"])
async def test_a_poison_item_rung_over_push_fails_and_the_link_goes_on(
    linked: LinkedAppliance,
    poison: str,
) -> None:
    task, reply, reason = POISONS[poison]
    bad = f"bad-{uuid.uuid4()}"
    await linked.producer.result(
        "entity.item.add",
        {
            "ENTITY": "KASSAJOB",
            "NAME": bad,
            "PROPERTY_VALUES": {"KASSA": "kassa-9", "STATE": "new", "TASK": task, "REPLY": reply},
        },
    )
    await linked.ring(bad)
    await wait_until_item(linked, bad, "failed")
    error = json.loads(linked.item(bad).properties["ERROR"] or "")
    assert reason in error["message"]
    assert linked.journal.state_of(bad) is JobState.REPORTED or (
        linked.journal.state_of(bad) is JobState.FAILED
    )
    good = str(uuid.uuid4())
    await linked.publish(good, sell("7.00"))
    await linked.done_in_bitrix(good)
    assert linked.sells_on_the_register() == 1
    # The heartbeat goes on after the poison: the good job changed the engine status.
    await wait_until_true(lambda: '"processed":1' in device_status(linked))


async def wait_until_item(linked: LinkedAppliance, job_id: str, state: str) -> None:
    await wait_until_true(lambda: linked.item(job_id).properties.get("STATE") == state)


async def wait_until_true(predicate: Any, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition never became true"
        await asyncio.sleep(0.02)


async def test_an_item_whose_job_id_is_unusable_is_failed_in_place_and_not_taken_again(
    world: World,
) -> None:
    """A NAME (the job id) with a control character is no id an operator can type: the item
    is answered ``failed`` by its item id, without a journal row, and never taken again."""
    link = world.link(reconcile_interval=0.1)
    await link.ensure_storage()
    bad = "bad\x00id"
    await store(world, bad, VALID_TASK, "", ring=False)
    async with running(link):
        await wait_until(lambda: props(world.item(bad)).get("STATE") == "failed")
        assert "NAME" in error_of(world, bad)["message"]
        good = str(uuid.uuid4())
        await publish_job(world.producer, job_id=good, kassa=KASSA, task=sell(), ring=False)
        await wait_until(lambda: props(world.item(good)).get("STATE") == "done")
        await asyncio.sleep(0.3)  # several reconciliations
    assert world.journal.get(bad) is None
    assert world.receipts() == 1


async def test_a_producer_item_named_like_a_local_job_is_refused_and_the_mirror_is_left(
    world: World,
) -> None:
    """``lan:``/``kkm:``/``relay:`` ids belong to jobs that arrive by other channels; their
    KASSAJOB items are mirror records written by the appliance. A producer's new item under
    such a NAME is answered ``failed`` in place (no journal row, so the LAN job of that id is
    untouched), and a final mirror record under such a NAME is left as it is."""
    link = world.link(reconcile_interval=0.1)
    await link.ensure_storage()
    await store(world, "lan:stolen-uuid", VALID_TASK, "", ring=False)
    await world.producer.result(
        "entity.item.add",
        {
            "ENTITY": "KASSAJOB",
            "NAME": "kkm:mirror-1",
            "PROPERTY_VALUES": {"KASSA": KASSA, "STATE": "done", "TASK": VALID_TASK},
        },
    )
    async with running(link):
        await wait_until(lambda: props(world.item("lan:stolen-uuid")).get("STATE") == "failed")
        await asyncio.sleep(0.3)  # several reconciliations
    error = error_of(world, "lan:stolen-uuid")
    assert error["code"] == "reserved-job-id"
    assert "'lan:'" in error["message"] and "reserved" in error["message"]
    assert world.journal.get("lan:stolen-uuid") is None
    assert props(world.item("kkm:mirror-1")).get("STATE") == "done"
    assert world.receipts() == 0
