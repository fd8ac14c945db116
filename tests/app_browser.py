"""Helpers of the Kassa app's end-to-end tests: Debian's headless Chromium driven by Selenium
(chromedriver), against the Bitrix24 emulator's portal page (in this process, on an event
loop of its own thread, since Selenium blocks) and, for receipts, the real daemon process on
the simulator (:class:`~kassa_appliance.testbeds.demo_stack.ApplianceStack`).

A test skips (with the reason) only when Chromium, chromedriver, Selenium or the built app
is missing; every wait is bounded. Each test saves a screenshot under ``build/screenshots/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from kassa_appliance.testbeds.bitrix24.portal_page import BUILD_HINT, default_app_dist

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "build" / "screenshots"
CHROMIUM = os.environ.get("KASSA_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("KASSA_CHROMEDRIVER", "/usr/bin/chromedriver")
WAIT = 20.0
"""Seconds any one thing on the page may take to appear."""
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None."""
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not (Path(path).is_file() or shutil.which(path)):
            return f"{path} not found: install Debian's {package} (scripts/install-system-deps)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed: pip install -e '.[test]'"
    if not (default_app_dist() / "index.html").is_file():
        return f"the Kassa app is not built at {default_app_dist()}: {BUILD_HINT}"
    return None


def require_browser() -> None:
    reason = missing_browser()
    if reason is not None:
        pytest.skip(reason)


class BackgroundLoop:
    """An asyncio loop in a thread: the emulator and the stack live there."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the loop's thread (the emulator's state is not thread-safe)."""

        async def wrapper() -> T:
            return fn()

        return self.run(wrapper())

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


PHONE = {"width": 390, "height": 844, "pixelRatio": 3.0}
"""A phone's viewport in CSS pixels (an iPhone 12-15 class screen)."""
PHONE_USER_AGENT = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Mobile Safari/537.36"
)


def make_driver(profile: Path, *, width: int = 1280, height: int = 900, phone: bool = False) -> Any:
    """Headless Chromium; ``phone`` emulates a phone (:data:`PHONE` viewport, touch, a
    mobile user agent) instead of a desktop window of ``width`` × ``height``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    if phone:
        options.add_experimental_option(
            "mobileEmulation", {"deviceMetrics": PHONE, "userAgent": PHONE_USER_AGENT}
        )
        width, height = PHONE["width"], PHONE["height"] + 100
    options.add_argument(f"--window-size={int(width)},{int(height)}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(WAIT)
    driver.set_script_timeout(WAIT)
    return driver


@contextlib.contextmanager
def browser(profile: Path, **size: Any) -> Iterator[Any]:
    driver = make_driver(profile, **size)
    try:
        yield driver
    finally:
        driver.quit()


def screenshot(driver: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    driver.save_screenshot(str(path))  # the whole window, whichever frame is current
    return path


def enter_app(driver: Any, url: str) -> None:
    """Open the portal page and switch into the app's iframe."""
    driver.get(url)
    frame = wait_for(driver, lambda: driver.find_element("css selector", "iframe#app"))
    driver.switch_to.frame(frame)


def wait_for(driver: Any, probe: Callable[[], T], timeout: float = WAIT, what: str = "") -> T:
    """Poll ``probe`` until it returns something truthy without raising; bounded."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = probe()
            if value:
                return value
        except Exception as exc:  # the element is not there yet
            last = exc
        time.sleep(0.05)
    logs = browser_log(driver)
    raise AssertionError(f"timed out waiting for {what or probe!r} ({last!r})\n{logs}")


def by_test(driver: Any, name: str) -> Any:
    return driver.find_element("css selector", f'[data-test="{name}"]')


def all_by_test(driver: Any, name: str) -> list[Any]:
    return list(driver.find_elements("css selector", f'[data-test="{name}"]'))


def browser_log(driver: Any) -> str:
    try:
        entries = driver.get_log("browser")
    except Exception:
        return ""
    return "\n".join(str(e.get("message", "")) for e in entries[-30:])


ADMIN = 1
CASHIER = 2


async def preinstall(emulator: Any) -> None:
    """What the app's install leaves behind, without the browser: the storages of
    ``bitrix/storage.json`` with their properties, and the portal out of install mode."""
    import json

    from kassa_appliance.testbeds.bitrix24.state import ADMIN_USER_ID

    state = emulator.state
    rotated = state.rotate(state.issue_refresh_token(ADMIN_USER_ID))
    assert rotated is not None
    token = rotated[0]
    definitions = Path(ROOT / "src/kassa_appliance/bitrix/storage.json").read_text("utf-8")
    for entity in json.loads(definitions)["entities"]:
        code = entity["entity"]
        if code not in state.entities:
            await emulator.api.handle(
                "entity.add",
                {"ENTITY": code, "NAME": entity["name"], "ACCESS": entity["access"], "auth": token},
            )
        for prop in entity["properties"]:
            if prop not in state.entities[code].properties:
                await emulator.api.handle(
                    "entity.item.property.add",
                    {"ENTITY": code, "PROPERTY": prop, "NAME": prop, "auth": token},
                )
    emulator.frames.installed = True


def horizontal_overflow(driver: Any) -> dict[str, int] | None:
    """How far the current document is wider than its viewport, or None if it is not."""
    sizes: dict[str, int] = driver.execute_script(
        "const e = document.scrollingElement || document.documentElement;"
        "return {scrollWidth: e.scrollWidth, innerWidth: window.innerWidth};"
    )
    return None if sizes["scrollWidth"] <= sizes["innerWidth"] else sizes


def set_value(driver: Any, name: str, value: str) -> None:
    """Type into the input marked ``data-test=name`` (the UI kit wraps it in a div)."""
    element = by_test(driver, name)
    if element.tag_name.lower() not in ("input", "select", "textarea"):
        element = element.find_element("css selector", "input")
    element.clear()
    element.send_keys(value)


@contextlib.contextmanager
def running_portal(
    setup: Callable[[Any], Coroutine[Any, Any, None]] | None = None,
) -> Iterator[tuple[BackgroundLoop, Any]]:
    """The Bitrix24 emulator and its push server on a background loop, with ``setup``
    (e.g. :func:`preinstall`) run on the emulator before it is handed out."""
    from kassa_appliance.testbeds.bitrix24.app import Emulator
    from kassa_appliance.testbeds.bitrix24.push import PushServer, PushSettings

    require_browser()
    loop = BackgroundLoop()
    push = PushServer(PushSettings(buffer_delay=(0.0, 0.0)))
    emulator = Emulator(push=push)

    async def start() -> None:
        await push.start("127.0.0.1", 0)
        await emulator.start()
        if setup is not None:
            await setup(emulator)

    async def stop() -> None:
        await emulator.stop()
        await push.stop()

    loop.run(start())
    try:
        yield loop, emulator
    finally:
        loop.run(stop())
        loop.close()


@contextlib.contextmanager
def running_appliance(
    settings: Any, before_start: Callable[[Path], None] | None = None
) -> Iterator[tuple[BackgroundLoop, Any]]:
    """An installed portal and the real daemon on the simulator
    (:class:`~kassa_appliance.testbeds.demo_stack.ApplianceStack`), handed out once the
    kassa's first heartbeat is in KASSADEV. ``before_start`` gets the daemon's data
    directory before the daemon starts (e.g. to set the simulator up with its CLI)."""
    from kassa_appliance.bitrix.protocol import DEVICE_ENTITY
    from kassa_appliance.testbeds.demo_stack import ApplianceStack

    require_browser()
    loop = BackgroundLoop()
    appliance = ApplianceStack(settings)
    if before_start is not None:
        before_start(appliance.data_dir)
    loop.run(appliance.start(), timeout=60)
    try:
        emulator = appliance.emulator
        assert emulator is not None
        loop.run(preinstall(emulator))

        def kassa_seen() -> bool:
            entity = emulator.state.entities.get(DEVICE_ENTITY)
            return bool(entity and any(i.name == settings.kassa_id for i in entity.items.values()))

        wait_for(None, lambda: loop.call(kassa_seen), timeout=30, what="first heartbeat")
        yield loop, appliance
    finally:
        loop.run(appliance.stop(), timeout=60)
        loop.close()
