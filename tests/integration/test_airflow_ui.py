"""The Airflow UI in a real browser: sign in, the DAG list, and a lakehouse_daily run triggered from the UI.

Headless Debian chromium (``make setup-browser``) driven by Playwright's sync API; Playwright's own browser
download is never used. Selectors are roles and visible text, as a person finds them; the React app is
waited for through the elements it renders, and the run is watched by reopening its page every 30 s until
the state badge says Success or Failed. The REST API v2 confirms what the UI shows. Each run writes
screenshots (see ``SCREENSHOTS``) (the sign-in page, the DAG list, the successful run's grid).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import APIRequestContext, Browser, BrowserContext, Page, Playwright, expect, sync_playwright

from spark_jobs import seed_day

from hybrid_platform import config, names
from hybrid_platform.config import PlatformConfig

pytestmark = pytest.mark.integration

CHROMIUM = Path(os.environ.get("HDP_CHROMIUM", "/usr/bin/chromium"))
#: No sandbox (root in containers), no GPU, and none of chromium's own network traffic.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: Each run's screenshots go to $HDP_SCREENSHOTS (CI artifacts), else to the git-ignored state folder;
#: HDP_SCREENSHOTS=docs/images refreshes the ones the README shows.
SCREENSHOTS = Path(os.environ.get("HDP_SCREENSHOTS") or config.load().home / "screenshots").resolve()
VIEWPORT = {"width": 1440, "height": 900}
#: The button the UI shows beside the DAG count (and on the home page) while a DAG file fails to import;
#: also matched as its translation key (``dagImportError_one``), should it paint before the translations.
IMPORT_ERRORS = re.compile(r"Dag Import Error|dagImportError", re.IGNORECASE)

DAG_ID = "lakehouse_daily"
#: The day the UI run builds (its `date` param): apart from the days other tests publish.
UI_DAY = date(2026, 10, 20)
TRANSACTIONS = 20_000
ALL_LABELS_KNOWN = 4_102_444_800_000  # 2100-01-01
#: Spark, GX and dbt on 2 shared cores: about 3 minutes alone, much more beside other work.
RUN_TIMEOUT_S = 20 * 60
PARSE_TIMEOUT_S = 5 * 60
POLL_S = 30


def _expected_dag_ids() -> list[str]:
    """One DAG per file in dags/, named after the file."""
    return sorted(path.stem for path in (config.REPO_ROOT / "dags").glob("*.py") if not path.name.startswith("_"))


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as instance:
        yield instance


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"no chromium at {CHROMIUM}: run `make setup-browser`, or set HDP_CHROMIUM to a Chrome/Chromium")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def api(playwright: Playwright, local_runtime: PlatformConfig) -> Iterator[APIRequestContext]:
    """Airflow's REST API v2 with a JWT from ``POST /auth/token``: the UI's claims, checked at the source."""
    anonymous = playwright.request.new_context(base_url=local_runtime.airflow_url)
    response = anonymous.post(
        "/auth/token",
        data={"username": local_runtime.airflow_user, "password": local_runtime.airflow_password},
    )
    assert response.ok, f"POST /auth/token: {response.status} {response.text()}"
    token = response.json()["access_token"]
    anonymous.dispose()
    context = playwright.request.new_context(
        base_url=local_runtime.airflow_url, extra_http_headers={"Authorization": f"Bearer {token}"}
    )
    yield context
    context.dispose()


def _get(api: APIRequestContext, path: str, **params: Any) -> Any:
    response = api.get(path, params=params or None)
    assert response.ok, f"GET {path}: {response.status} {response.text()}"
    return response.json()


def _sign_in(page: Page, cfg: PlatformConfig, password: str) -> None:
    page.get_by_label("Username").fill(cfg.airflow_user)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


@pytest.fixture(scope="module")
def signed_in(browser: Browser, local_runtime: PlatformConfig) -> Iterator[BrowserContext]:
    """A browser context signed in with the documented credentials (the UI keeps the JWT in a cookie)."""
    context = browser.new_context(base_url=local_runtime.airflow_url, viewport=VIEWPORT)
    page = context.new_page()
    page.goto("/")
    _sign_in(page, local_runtime, local_runtime.airflow_password)
    expect(page.get_by_role("heading", name="Welcome")).to_be_visible(timeout=60_000)
    page.close()
    yield context
    context.close()


@pytest.fixture(scope="module")
def dags_parsed(api: APIRequestContext) -> list[str]:
    """Wait until the DAG processor has parsed every file in dags/ (or reported an import error)."""
    expected = _expected_dag_ids()
    assert expected, "no DAG files in dags/"
    deadline = time.monotonic() + PARSE_TIMEOUT_S
    while True:
        found = {dag["dag_id"] for dag in _get(api, "/api/v2/dags", limit=100)["dags"]}
        errors = _get(api, "/api/v2/importErrors")["total_entries"]
        if set(expected) <= found or errors or time.monotonic() > deadline:
            return expected
        time.sleep(3)


def test_sign_in_with_the_documented_credentials(browser: Browser, local_runtime: PlatformConfig) -> None:
    context = browser.new_context(base_url=local_runtime.airflow_url, viewport=VIEWPORT)
    try:
        page = context.new_page()
        page.goto("/")
        expect(page).to_have_url(re.compile(r"/auth/login"))  # authentication stays on
        expect(page.get_by_role("button", name="Sign in")).to_be_visible()
        page.screenshot(path=SCREENSHOTS / "airflow-login.png")

        _sign_in(page, local_runtime, "not-the-password")
        expect(page.get_by_text("Invalid credentials")).to_be_visible()
        expect(page).to_have_url(re.compile(r"/auth/login"))

        _sign_in(page, local_runtime, local_runtime.airflow_password)
        expect(page.get_by_role("heading", name="Welcome")).to_be_visible(timeout=60_000)
        expect(page).not_to_have_url(re.compile(r"/auth/login"))
        expect(page.get_by_role("link", name="Dags", exact=True)).to_be_visible()
    finally:
        context.close()


def test_the_dag_list_shows_every_dag_and_no_import_error(
    signed_in: BrowserContext, api: APIRequestContext, dags_parsed: list[str]
) -> None:
    errors = _get(api, "/api/v2/importErrors")
    assert errors["total_entries"] == 0, [(e["filename"], e["stack_trace"]) for e in errors["import_errors"]]
    found = {dag["dag_id"] for dag in _get(api, "/api/v2/dags", limit=100)["dags"]}
    assert set(dags_parsed) <= found

    page = signed_in.new_page()
    try:
        page.goto("/dags")
        for dag_id in dags_parsed:
            expect(page.get_by_role("link", name=dag_id, exact=True)).to_be_visible(timeout=60_000)
        expect(page.get_by_role("heading", name=f"{len(found)} Dags")).to_be_visible()
        page.wait_for_load_state("networkidle")  # every query of the page answered, import errors included
        expect(page.get_by_role("button", name=IMPORT_ERRORS)).to_have_count(0)
        page.screenshot(path=SCREENSHOTS / "airflow-dags.png")
        page.goto("/")
        expect(page.get_by_role("heading", name="Stats")).to_be_visible()
        page.wait_for_load_state("networkidle")
        expect(page.get_by_role("button", name=IMPORT_ERRORS)).to_have_count(0)
    finally:
        page.close()


def _ui_datetime(moment: datetime) -> str:
    """How the trigger form shows a date and time (dayjs ``MMM DD, YYYY HH:mm``: ``Nov 04, 2026 00:00``)."""
    return f"{moment:%b %d, %Y %H:%M}"


def _run_state_in_ui(page: Page, run_id: str) -> str:
    """The state badge beside the run's name on its page (``Queued``, ``Running``, ``Success``, ``Failed``)."""
    page.goto(f"/dags/{DAG_ID}/runs/{run_id}")
    badge = page.get_by_role("heading", name=run_id, exact=True).locator("..").get_by_test_id("state-badge")
    expect(badge).to_be_visible(timeout=60_000)
    # Translations load after the first paint: until then the badge shows its key (``states.running``).
    expect(badge).not_to_have_text(re.compile(r"^\s*states\."), timeout=30_000)
    return badge.inner_text().strip()


def _task_states(api: APIRequestContext, run_id: str) -> dict[str, str | None]:
    instances = _get(api, f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances", limit=100)["task_instances"]
    return {ti["task_id"]: ti["state"] for ti in instances}


def test_trigger_lakehouse_daily_from_the_ui_and_watch_it_succeed(
    signed_in: BrowserContext, api: APIRequestContext, dags_parsed: list[str], spark: Any
) -> None:
    assert DAG_ID in dags_parsed
    seeded = seed_day.seed(spark, UI_DAY, TRANSACTIONS, seed_value=11, labels_as_of_ms=ALL_LABELS_KNOWN)

    dag = _get(api, f"/api/v2/dags/{DAG_ID}")
    # Unpausing a paused DAG makes the scheduler create its due run (catchup is off: the latest one). The UI
    # run takes that run's logical date and the DAG is switched on only after it exists, so the scheduler
    # counts it as that run instead of starting a second one beside it.
    due = dag["next_dagrun_logical_date"]
    logical = datetime.fromisoformat(due.replace("Z", "+00:00")) if due else None
    take_due_slot = bool(dag["is_paused"] and logical and logical <= datetime.now(UTC))
    run_id = f"ui_test_{datetime.now(UTC):%Y%m%dT%H%M%S}"

    page = signed_in.new_page()
    try:
        page.goto(f"/dags/{DAG_ID}")
        page.get_by_role("button", name="Trigger Dag").click()
        dialog = page.get_by_role("dialog").filter(has=page.get_by_role("heading", name=f"Trigger Dag - {DAG_ID}"))
        expect(dialog.get_by_role("radio", name="Single Run")).to_be_checked()
        if take_due_slot:
            assert logical is not None
            dialog.get_by_test_id("datetime-input").click()
            picker = page.get_by_role("dialog").filter(has=page.get_by_role("textbox", name="HH:mm"))
            picker.get_by_role("textbox", name="Logical Date").fill(f"{logical:%Y/%m/%d}")
            picker.get_by_role("textbox", name="HH:mm").fill(f"{logical:%H:%M}")
            dialog.get_by_role("heading", name=f"Trigger Dag - {DAG_ID}").click()  # closes the picker
            expect(picker).to_be_hidden()
            expect(dialog.get_by_test_id("datetime-input")).to_have_text(_ui_datetime(logical))
            unpause = dialog.get_by_role("checkbox", name=f"Unpause {DAG_ID} on trigger")
            dialog.get_by_text(f"Unpause {DAG_ID} on trigger").click()
            expect(unpause).not_to_be_checked()
        # The DAG's `date` param, rendered by the trigger form as a date field.
        params = dialog.get_by_role("group").filter(has=page.get_by_text("date", exact=True))
        params.get_by_role("textbox").fill(UI_DAY.isoformat())
        dialog.get_by_role("button", name="Advanced Options").click()
        dialog.get_by_role("textbox", name="Run ID").fill(run_id)
        dialog.get_by_role("button", name="Trigger", exact=True).click()

        expect(page).to_have_url(re.compile(rf"/dags/{DAG_ID}/runs/{run_id}$"))
        run = _get(api, f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}")
        assert (run["run_type"], run["triggered_by"], run["conf"]) == ("manual", "ui", {"date": UI_DAY.isoformat()})
        switch = page.get_by_role("navigation", name="breadcrumb").get_by_role("checkbox")  # the pause switch
        if take_due_slot:
            assert run["logical_date"] == due
            expect(switch).not_to_be_checked()  # paused, as the API says
            switch.click(force=True)  # the input is visually hidden behind the switch
        expect(switch).to_be_checked()  # switched on here, or by the form's "Unpause ... on trigger"
        deadline = time.monotonic() + 30
        while _get(api, f"/api/v2/dags/{DAG_ID}")["is_paused"]:
            assert time.monotonic() < deadline, f"{DAG_ID} still paused after the trigger"
            time.sleep(1)

        started = time.monotonic()
        seen: list[str] = []
        while True:
            state = _run_state_in_ui(page, run_id)
            if not seen or seen[-1] != state:
                seen.append(state)
                print(f"{time.monotonic() - started:6.0f} s  {run_id}: {state}")
            if state in {"Success", "Failed"} or time.monotonic() - started > RUN_TIMEOUT_S:
                break
            # Between looks the tab is parked on a blank page: the run page refreshes itself every few
            # seconds, which costs a renderer a fifth of a core for the whole run on a 2-core machine.
            page.goto("about:blank")
            time.sleep(POLL_S)
        elapsed = time.monotonic() - started
        run = _get(api, f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}")
        states = _task_states(api, run_id)
        assert state == "Success", f"UI shows {seen} after {elapsed:.0f} s; API: {run['state']}, tasks {states}"
        assert run["state"] == "success"
        assert set(states.values()) <= {"success", "skipped"}, states
        print(f"{run_id} succeeded in the UI after {elapsed:.0f} s ({len(states)} tasks)")

        _run_state_in_ui(page, run_id)
        # The grid's toolbar renders after the run's task instances load (seconds on a busy 2-core machine).
        page.wait_for_load_state("networkidle")
        expand = page.get_by_role("button", name="Expand all task groups")
        expect(expand).to_be_visible(timeout=90_000)
        expand.click()  # the dbt models, one row each
        page.wait_for_load_state("networkidle")
        page.screenshot(path=SCREENSHOTS / "airflow-lakehouse-daily-run.png")
    finally:
        page.close()

    silver = spark.table(names.SILVER_TRANSACTIONS).where(f"event_date = DATE '{UI_DAY}'").count()
    assert silver == seeded["transactions"]
