"""The whole Bitrix24 link for the daemon in one context manager::

    async with bitrix_link(config.bitrix, config.kassa.id, data_dir, engine):
        ...  # jobs flow in (doorbell + reconciliation), results flow back

It builds the REST client (OAuth with ``<data_dir>/tokens.json``, or an inbound webhook
for REST-only use), the :class:`~kassa_appliance.bitrix.jobs.JobLink` and — with OAuth —
the Push&Pull client whose ``kassa.job`` doorbells and (re)connects drive the link. With no
Bitrix24 settings it does nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from kassa_appliance import __version__
from kassa_appliance.bitrix.auth import (
    TOKEN_FILE_NAME,
    Auth,
    OAuthAuth,
    OAuthCredentials,
    TokenFile,
    WebhookAuth,
)
from kassa_appliance.bitrix.budget import RestBudget
from kassa_appliance.bitrix.central_settings import (
    CONFIG_COMMAND,
    AppliedSettings,
    Applier,
    CentralSettings,
)
from kassa_appliance.bitrix.departments import DepartmentDirectory
from kassa_appliance.bitrix.jobs import EngineAdapter, EnginePort, JobLink
from kassa_appliance.bitrix.notifications import CONFIRM_SECONDS, ProblemNotifier
from kassa_appliance.bitrix.pairing import debug_pause_before_token_save
from kassa_appliance.bitrix.pull import PullClient, PullMessage, doorbell
from kassa_appliance.bitrix.rest import RestClient
from kassa_appliance.bitrix.settings import BitrixConfig
from kassa_appliance.bitrix.supervisor import LinkHealth, supervised

log = logging.getLogger(__name__)

FINAL_REPORT_SECONDS = 5.0


def make_auth(bitrix: BitrixConfig, data_dir: Path) -> Auth | None:
    """OAuth when client id/secret are set, else a webhook, else None (no link)."""
    if bitrix.portal and bitrix.client_id and bitrix.client_secret:
        credentials = OAuthCredentials(
            portal=bitrix.portal,
            client_id=bitrix.client_id,
            client_secret=bitrix.client_secret.get_secret_value(),
            refresh_token=(
                bitrix.refresh_token.get_secret_value() if bitrix.refresh_token else None
            ),
            token_url=bitrix.token_url,
        )
        return OAuthAuth(
            credentials,
            TokenFile(data_dir / TOKEN_FILE_NAME),
            before_persist=debug_pause_before_token_save(),  # None unless a test sets it
        )
    if bitrix.webhook:
        return WebhookAuth(bitrix.webhook.get_secret_value())
    return None


def engine_status_dict(engine: Any) -> Callable[[], dict[str, Any]]:
    """The KASSADEV ``STATUS``: the engine's status with the register's facts as flat
    fleet fields (app/README.md "Fleet fields"), once they are known."""

    def status() -> dict[str, Any]:
        try:
            snapshot = dict(asdict(engine.status()))
        except Exception:  # a status snapshot must never break the heartbeat
            return {}
        device = snapshot.pop("device", None) or {}
        firmware = device.pop("firmware", None)
        snapshot.update(device)
        waiting = snapshot.get("waiting")
        snapshot["blocked"] = bool(waiting)
        snapshot["blocked_reason"] = waiting or None
        snapshot["versions"] = {"appliance": __version__, "firmware": firmware}
        return snapshot

    return status


@contextlib.asynccontextmanager
async def bitrix_link(
    settings: BitrixConfig,
    kassa_id: str,
    data_dir: Path,
    engine: EnginePort,
    *,
    on_health_change: Callable[[], None] | None = None,
    central: Applier | None = None,
    notify_confirm_after: float = CONFIRM_SECONDS,
) -> AsyncIterator[JobLink | None]:
    """``on_health_change`` is called when the link's health (``link.health``) has news,
    e.g. so the daemon rewrites its status file. ``central`` validates and applies a
    version of the kassa's central settings (KASSACFG, ``bitrix/central_settings.py``):
    with it the link reads them at start, on a ``kassa.config`` doorbell and on every
    push (re)connect. ``notify_confirm_after``: how long a problem holds before the admins
    are notified (bitrix/notifications.py)."""
    auth = make_auth(settings, data_dir)
    if auth is None:
        log.info("no Bitrix24 link configured")
        yield None
        return
    health = LinkHealth(on_change=on_health_change or (lambda: None))
    # One budget for every REST caller of this portal (bitrix/budget.py): status shows it.
    budget = RestBudget(settings.rest_rate, settings.rest_burst, on_change=health.changed)
    health.add_section("rest_budget", budget.snapshot)
    rest = RestClient(auth, budget=budget)
    pull: PullClient | None = None
    notifier = ProblemNotifier(
        rest,
        kassa_id=kassa_id,
        data_dir=data_dir,
        tagged=isinstance(auth, OAuthAuth),
        confirm_after=notify_confirm_after,
        recipients=settings.notify_users,
    )
    engine_status = engine_status_dict(engine)

    def device_status() -> dict[str, Any]:
        """Each status the heartbeat takes is also shown to the admins' notifier."""
        snapshot = engine_status()
        notifier.observe(snapshot)
        return snapshot

    link = JobLink(
        rest,
        EngineAdapter(engine),
        kassa_id=kassa_id,
        allowed_users=frozenset(settings.allowed_users),
        device_status=device_status,
        health=health,
        live=lambda: pull is not None and pull.status.connected,
    )
    # Creators' departments are looked up off the intake's path (bitrix/departments.py).
    directory = DepartmentDirectory(rest, on_answer=link.request_reconcile, backoff=link.backoff)
    link.set_allowed_departments(frozenset(settings.allowed_departments), directory)
    health.add_section("creator_lookups", directory.snapshot)

    def on_applied(applied: AppliedSettings) -> None:
        link.set_allowed_users(applied.allowed_users)
        link.set_allowed_departments(applied.allowed_departments)
        notifier.set_recipients(applied.notify_users)

    settings_reader: CentralSettings | None = None
    if central is not None:
        settings_reader = CentralSettings(
            rest, kassa_id=kassa_id, apply=central, on_applied=on_applied
        )
        health.add_section("central_settings", settings_reader.snapshot)

    async def on_message(message: PullMessage) -> None:
        """A doorbell is only noted here (the doorbell loop reads it with the others rung
        meanwhile), so the push connection goes straight on to the next frame."""
        if message.command == CONFIG_COMMAND:  # central settings: read the item again
            if settings_reader is not None:
                settings_reader.ring(message.params)
            return
        bell = doorbell(message)
        if bell is None:
            return
        job_id, kassa = bell
        try:
            link.ring({"job": job_id, "kassa": kassa})
        except Exception as error:  # whatever goes wrong, reconciliation looks again
            log.exception("doorbell for job %r failed unexpectedly", job_id)
            health.record_error("doorbell", error)
            link.request_reconcile()

    async def fetch_config() -> Any:
        return await rest.result("pull.application.config.get", {"CACHE": "N"})

    async def on_connect() -> None:
        if settings_reader is not None:  # a kassa.config doorbell may have been missed
            settings_reader.wanted.set()
        await link.on_connect()

    tasks = [
        asyncio.create_task(link.run(), name="bitrix-jobs"),
        asyncio.create_task(
            supervised("admin notifications", notifier.run, health, link.backoff),
            name="bitrix-notifications",
        ),
        asyncio.create_task(
            supervised("creator lookups", directory.run, health, link.backoff),
            name="bitrix-creator-lookups",
        ),
    ]
    if settings_reader is not None:
        tasks.append(
            asyncio.create_task(
                supervised("central settings", settings_reader.run, health, link.backoff),
                name="bitrix-central-settings",
            )
        )
    if isinstance(auth, OAuthAuth):  # Push&Pull needs application auth
        pull = PullClient(
            fetch_config,
            on_message,
            on_connect=on_connect,
            on_overflow=link.request_reconcile,
        )
        tasks.append(
            asyncio.create_task(
                supervised("push connection", pull.run, health, link.backoff), name="bitrix-pull"
            )
        )
    else:
        log.warning("Bitrix24 webhook configured: no Push&Pull, jobs found by polling only")
    try:
        yield link
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # Outcomes that came in while stopping (the engine finishes its receipt first)
        # are written back now if Bitrix24 answers quickly; otherwise on the next start.
        try:
            async with asyncio.timeout(FINAL_REPORT_SECONDS):
                await link.report_pending()
        except Exception as error:  # the journal keeps them for the next start
            log.info("write-back at shutdown not finished (%s); it resumes on start", error)
        await rest.aclose()
