"""The Temporal Web UI shows a finished delegation: the summaries of its activities and of
its child, its static and current details, and a link to the child conversation. Checked in Debian's
chromium, headless, through chromium-driver, against the session's dev server and its UI.

`P2E_SCREENSHOT_DIR=docs .venv/bin/pytest tests/integration/test_web_ui.py` also saves the
conversation's page as docs/web-ui-conversation.png.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import (
    NoSuchFrameException,
    StaleElementReferenceException,
    TimeoutException,
)
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait
from temporalio.client import Client

from p2engine.contract.states import FinishReason, State
from p2engine.runtime.conversations import start_conversation
from p2engine.runtime.settings import Settings
from p2engine.runtime.temporal_server import DevServer
from tests.integration.helpers import agent, unique

pytestmark = pytest.mark.usefixtures("worker")

BROWSERS = ("chromium", "chromium-browser")
DRIVER = "chromedriver"
# The UI is a JS app that loads each page's data after it renders; a loaded server is slow.
PAGE_TIMEOUT_S = 30
SCREENSHOT = "web-ui-conversation.png"
HEADING = '[data-testid="workflow-id-heading"]'  # a workflow page's title: its id
EVENT_ROW = '[data-testid="event-summary-row"]'  # one event of the Event History


@dataclass(frozen=True)
class Delegation:
    """A finished conversation of agent_alpha that delegated to agent_helper."""

    url: str  # its page in the Web UI, without the tab
    child_id: str


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    chromium = next((path for name in BROWSERS if (path := shutil.which(name))), None)
    driver = shutil.which(DRIVER)
    if chromium is None or driver is None:
        missing = [
            f"{package} ({' or '.join(names)})"
            for package, names, path in (
                ("chromium", BROWSERS, chromium),
                ("chromium-driver", (DRIVER,), driver),
            )
            if path is None
        ]
        pytest.skip(
            f"the Web UI test needs {' and '.join(missing)} on PATH; "
            "`make test` installs them as root with apt-get"
        )
    options = Options()
    options.binary_location = chromium
    for argument in (
        "--headless=new",
        "--no-sandbox",  # chromium's sandbox refuses to run as root, as CI does
        "--disable-dev-shm-usage",  # containers have a small /dev/shm
        "--disable-gpu",
        "--window-size=1400,1000",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
    ):
        options.add_argument(argument)
    browser = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    try:
        yield browser
    finally:
        browser.quit()


@pytest.fixture(scope="module")
async def delegation(client: Client, settings: Settings, dev_server: DevServer) -> Delegation:
    handle, _ = await start_conversation(
        client,
        settings,
        agent(settings),
        "Delegate to agent_helper: what's the weather in Tokyo?",
        name=unique("web-ui"),
        evaluators=["gives_temperature"],
    )
    result = await handle.result()
    assert result.reason is FinishReason.DONE
    [child_id] = [e.child_id for e in result.stack if e.kind is State.AGENT_RESULT]
    assert child_id is not None
    run_id = (await handle.describe()).run_id
    ui = dev_server.config
    url = f"{ui.ui_url}/namespaces/{ui.namespace}/workflows/{handle.id}/{run_id}"
    return Delegation(url, child_id)


def shows(browser: WebDriver, *texts: str, frame: str | None = None, within: str = "body") -> None:
    """Wait until one element matching `within` holds every one of `texts`, on the page or
    in its iframe `frame` (the UI renders markdown in one); fail naming what is missing."""
    missing = list(texts)

    def found(_: WebDriver) -> bool:
        browser.switch_to.default_content()
        if frame is not None:
            browser.switch_to.frame(browser.find_element(By.ID, frame))
        # The markdown renderer types apostrophes as typographic ones.
        shown = [
            e.text.replace("\u2019", "'") for e in browser.find_elements(By.CSS_SELECTOR, within)
        ]
        gaps = [[t for t in texts if t not in text] for text in shown]
        missing[:] = min(gaps, key=len) if gaps else texts
        return not missing

    # The frame may be rendered again while it is read.
    waiting = WebDriverWait(
        browser,
        PAGE_TIMEOUT_S,
        ignored_exceptions=[StaleElementReferenceException, NoSuchFrameException],
    )
    try:
        waiting.until(found)
    except TimeoutException:
        where = f"{browser.current_url}{f' (frame {frame})' if frame else ''}"
        raise AssertionError(f"{where} does not show {missing}") from None
    finally:
        browser.switch_to.default_content()


def element(browser: WebDriver, by: str, value: str) -> WebElement:
    found: WebElement = WebDriverWait(browser, PAGE_TIMEOUT_S).until(
        lambda b: b.find_element(by, value)
    )
    return found


async def in_browser(check: Callable[[], None]) -> None:
    """Run a browser check off the event loop: the page asks the session's worker (on this
    loop) for the current details, and a blocked loop would never answer."""
    await asyncio.to_thread(check)


async def test_the_event_history_shows_the_summaries_of_the_steps_and_the_child(
    browser: WebDriver, delegation: Delegation
) -> None:
    def check() -> None:
        browser.get(f"{delegation.url}/history")
        for step in (1, 3):
            shows(
                browser,
                "Activity Task Scheduled",
                "llm_step",
                f"agent_alpha · scripted/default · step {step}",
                within=EVENT_ROW,
            )
        shows(
            browser,
            "Start Child Workflow Execution Initiated",
            "agent_helper: what's the weather in Tokyo?",
            within=EVENT_ROW,
        )

    await in_browser(check)


async def test_user_metadata_shows_the_summary_and_the_static_and_current_details(
    browser: WebDriver, delegation: Delegation
) -> None:
    def check() -> None:
        browser.get(f"{delegation.url}/user-metadata")
        shows(
            browser,
            "agent_alpha: Delegate to agent_helper: what's the weather in Tokyo?",
            frame="user-metadata-summary",
        )
        shows(
            browser,
            "agent_alpha on scripted/default",
            "evaluators: gives_temperature",
            frame="user-metadata-details",
        )
        shows(
            browser,
            "agent_alpha · state Finished (done) · step 3 · score 1.00",
            "last: AssistantMessage agent_helper says: In Tokyo it is 18°C",
            f"children: {delegation.child_id}",
            frame="user-metadata-current-details",
        )
        if directory := os.environ.get("P2E_SCREENSHOT_DIR"):
            Path(directory).mkdir(parents=True, exist_ok=True)
            assert browser.save_screenshot(str(Path(directory) / SCREENSHOT))

    await in_browser(check)


async def test_relationships_link_to_the_child_conversation(
    browser: WebDriver, delegation: Delegation
) -> None:
    def check() -> None:
        browser.get(f"{delegation.url}/relationships")
        element(browser, By.LINK_TEXT, delegation.child_id).click()
        # The app swaps the page in place: read the heading afresh until it names the child.
        WebDriverWait(
            browser, PAGE_TIMEOUT_S, ignored_exceptions=[StaleElementReferenceException]
        ).until(lambda b: b.find_element(By.CSS_SELECTOR, HEADING).text == delegation.child_id)

    await in_browser(check)
