"""The web console at /ui, in a real browser (Debian's headless Chromium driven by
Selenium through Debian's chromedriver) against the real two-worker fleet."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.browser import chromium, console_errors, go, sign_in, texts, wait_for
from tests.fleet import Fleet
from tests.helpers import unique
from tests.integration.test_approval_faults import published_approvals

pytestmark = pytest.mark.integration

NS, TENANT = "it", "ui"  # a tenant of its own: other tests' data does not crowd the pages


async def ok(http: aiohttp.ClientSession, method: str, url: str, body: Any = None) -> Any:
    async with http.request(method, url, json=body) as r:
        assert r.status < 300, f"{method} {url}: {r.status} {await r.text()}"
        return await r.json()


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    driver = chromium()
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def admin_browser(browser: webdriver.Chrome, fleet: Fleet) -> webdriver.Chrome:
    """Signed in with the fleet's admin key, on worker 1 (the console is the same on any)."""
    sign_in(browser, fleet.urls[1], fleet.admin_key, f"{NS}/{TENANT}")
    console_errors(browser)
    return browser


@pytest.fixture(scope="module")
async def agents(fleet: Fleet, http: aiohttp.ClientSession) -> dict[str, str]:
    """A caller and a callee with a plain tool and one that requires approval."""
    url = fleet.urls[0]
    caller, callee = unique("caller"), unique("callee")
    tools = [
        {"name": "add", "input_schema": {"type": "object"}, "output_schema": {"type": "object"}},
        {"name": "pay", "input_schema": {"type": "object"}, "requires_approval": True},
    ]
    for agent_id, capabilities in ((caller, []), (callee, tools)):
        spec = {"namespace": NS, "tenant": TENANT, "id": agent_id, "capabilities": capabilities}
        await ok(http, "POST", f"{url}/v1/agents", spec)
    return {"caller": caller, "callee": callee}


async def conversation(fleet: Fleet, http: aiohttp.ClientSession) -> str:
    conv_id = unique("conv")
    await ok(
        http, "POST", f"{fleet.urls[0]}/v1/conversations", {"namespace": NS, "tenant": TENANT, "id": conv_id}
    )
    return conv_id


async def test_static_assets_need_no_key_and_stay_inside(
    fleet: Fleet, anonymous: aiohttp.ClientSession
) -> None:
    url = fleet.urls[0]
    async with anonymous.get(f"{url}/ui/") as r:
        assert r.status == 200 and r.content_type == "text/html"
        assert "script-src 'self'" in r.headers["Content-Security-Policy"]
        etag = r.headers["ETag"]
    async with anonymous.get(f"{url}/ui/", headers={"If-None-Match": etag}) as r:
        assert r.status == 304
    async with anonymous.get(f"{url}/ui/js/app.js") as r:
        assert r.status == 200 and r.content_type == "text/javascript"
    async with anonymous.get(f"{url}/ui/css/console.css") as r:
        assert r.status == 200 and r.content_type == "text/css"
    for path in ("/ui/../bus/main.py", "/ui/%2e%2e/web.py", "/ui/..%2fweb.py", "/ui/js", "/ui/nothing.js"):
        async with anonymous.get(f"{url}{path}") as r:
            assert r.status == 404, path
    async with anonymous.get(f"{url}/v1/whoami") as r:
        assert r.status == 401  # the data is not public; only the assets are


async def test_sign_in_and_scope_hiding_for_a_tenant_key(
    browser: webdriver.Chrome, fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    url = fleet.urls[0]
    topic = unique("t")
    await ok(http, "POST", f"{url}/v1/topics", {"namespace": NS, "tenant": TENANT, "name": topic})
    spec = {"name": unique("k"), "role": "tenant", "namespace": NS, "tenant": TENANT}
    reader = await ok(
        http, "POST", f"{url}/v1/keys", {**spec, "grants": [{"topics": "*", "actions": ["read"]}]}
    )

    sign_in(browser, url, reader["secret"])
    nav = texts(browser, "#nav a")
    assert "Topics" in nav and "Conversations" in nav and "Approvals" in nav
    assert "Keys" not in nav and "Audit" not in nav, nav
    assert browser.find_element(By.ID, "tenant").text == f"{NS}/{TENANT}"
    go(browser, "#/topics", "topics")
    wait_for(lambda: f"{NS}/{TENANT}/{topic}" in texts(browser, "#topics a"), message="the tenant's topic")
    assert not browser.find_elements(By.ID, "create-topic"), "no create form without manage"
    assert not browser.find_elements(By.CSS_SELECTOR, "#topics button"), "no delete without manage"
    # The key is in this tab's session storage only, never in the address.
    assert browser.execute_script("return sessionStorage.getItem('agentbus.key')") == reader["secret"]
    assert reader["secret"] not in browser.current_url
    # Keys are not reachable by typing the address either; the server refuses them anyway.
    go(browser, "#/keys", "overview-stats")
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {reader['secret']}"}) as as_reader:
        async with as_reader.get(f"{url}/v1/keys") as r:
            assert r.status == 403
        async with as_reader.delete(f"{url}/v1/topics/{NS}/{TENANT}/{topic}") as r:
            assert r.status == 403
    browser.find_element(By.ID, "sign-out").click()
    wait_for(lambda: browser.find_element(By.ID, "api-key"), message="the sign-in form again")
    assert browser.execute_script("return sessionStorage.getItem('agentbus.key')") is None
    assert console_errors(browser) == []

    # An admin sees everything, and the actions.
    sign_in(browser, url, fleet.admin_key, f"{NS}/{TENANT}")
    assert {"Keys", "Audit", "Rules"} <= set(texts(browser, "#nav a"))
    go(browser, "#/topics", "create-topic")
    assert console_errors(browser) == []


async def test_a_record_published_by_curl_appears_in_the_live_tail(
    admin_browser: webdriver.Chrome, fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    browser = admin_browser
    topic = unique("tail")
    await ok(http, "POST", f"{fleet.urls[0]}/v1/topics", {"namespace": NS, "tenant": TENANT, "name": topic})
    go(browser, f"#/topics/{NS}/{TENANT}/{topic}", "tail")
    wait_for(lambda: "(live)" in browser.find_element(By.ID, "tail-state").text, message="the tail to open")
    envelope = {"topic": f"{NS}/{TENANT}/{topic}", "key": "order-7", "payload": {"total": 42, "items": ["a"]}}
    curl = [
        "curl", "-sf", "-X", "POST", f"{fleet.urls[0]}/v1/publish",
        "-H", f"Authorization: Bearer {fleet.admin_key}", "-H", "Content-Type: application/json",
        "-d", json.dumps({**envelope, "headers": {"trace": "t-9"}}),
    ]  # fmt: skip
    done = await asyncio.to_thread(subprocess.run, curl, capture_output=True, check=True, text=True)
    receipt = json.loads(done.stdout)
    record = wait_for(
        lambda: browser.find_element(By.CSS_SELECTOR, f"#tail .record[data-offset='{receipt['offset']}']"),
        message="the record in the tail",
    )
    assert "order-7" in record.text and '"total": 42' in record.text  # pretty-printed
    # Filtering by key hides it; another key's record does not show.
    browser.find_element(By.ID, "tail-key").send_keys("nope")
    wait_for(lambda: not browser.find_elements(By.CSS_SELECTOR, "#tail .record"), message="the filter")
    assert console_errors(browser) == []


async def test_a_conversation_renders_in_order_while_it_happens(
    admin_browser: webdriver.Chrome, fleet: Fleet, http: aiohttp.ClientSession, agents: dict[str, str]
) -> None:
    browser = admin_browser
    a, b = fleet.urls
    conv_id = await conversation(fleet, http)
    conv = f"/v1/conversations/{NS}/{TENANT}/{conv_id}"
    caller, callee = agents["caller"], agents["callee"]
    go(browser, f"#/conversations/{NS}/{TENANT}/{conv_id}", "thread")

    await ok(http, "POST", f"{a}{conv}/messages", {"sender": caller, "payload": {"text": "add 2 and 3"}})
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#thread [data-seq='1']"), message="message 1")
    call = {
        "call_id": unique("c"),
        "tool": "add",
        "arguments": {"x": 2, "y": 3},
        "caller": caller,
        "callee": callee,
    }
    await ok(http, "POST", f"{b}{conv}/tool-calls", call)
    card = wait_for(
        lambda: browser.find_element(By.CSS_SELECTOR, f"#thread [data-call='{call['call_id']}']"),
        message="the tool call",
    )
    assert "pending" in card.text
    child = {**call, "call_id": unique("c"), "arguments": {"x": 1}, "parent_call_id": call["call_id"]}
    await ok(http, "POST", f"{a}{conv}/tool-calls", child)
    nested = wait_for(
        lambda: card.find_element(By.CSS_SELECTOR, f".children [data-call='{child['call_id']}']"),
        message="the child call nested under its parent",
    )
    result = {"call_id": call["call_id"], "sender": callee, "status": "ok", "result": {"sum": 5}}
    await ok(
        http, "POST", f"{b}{conv}/tool-results", {**result, "usage": {"input_tokens": 7, "output_tokens": 2}}
    )
    wait_for(lambda: card.get_attribute("data-status") == "ok", message="the result paired with its call")
    assert '"sum": 5' in card.text and "ok" in card.text
    assert nested.get_attribute("data-status") is None  # the child has no result yet

    stream_id = unique("s")
    await ok(
        http,
        "POST",
        f"{a}{conv}/messages",
        {"sender": callee, "payload": "answer", "metadata": {"stream_id": stream_id}},
    )
    chunks = f"{b}{conv}/stream-chunks"
    await ok(
        http, "POST", chunks, {"stream_id": stream_id, "sender": callee, "chunk_seq": 0, "data": "The sum"}
    )
    text = wait_for(
        lambda: browser.find_element(By.CSS_SELECTOR, f"[data-stream='{stream_id}'] .stream-text"),
        message="the stream",
    )
    wait_for(lambda: text.text == "The sum", message="the first chunk typed in")
    state = browser.find_element(By.CSS_SELECTOR, f"[data-stream='{stream_id}'] .stream-state")
    assert state.text == "live"
    await ok(
        http,
        "POST",
        chunks,
        {"stream_id": stream_id, "sender": callee, "chunk_seq": 1, "data": {"text": " is 5."}},
    )
    wait_for(lambda: text.text == "The sum is 5.", message="the second chunk typed in")
    assert state.text == "live", "not complete before its end"
    end = {"stream_id": stream_id, "sender": callee, "status": "complete", "last_chunk_seq": 1}
    await ok(http, "POST", f"{a}{conv}/stream-end", {**end, "usage": {"output_tokens": 3}})
    wait_for(lambda: state.text.startswith("complete"), message="the stream marked complete")

    seqs = [int(s) for s in browser.execute_script(
        "return [...document.querySelectorAll('#thread > [data-seq]')].map(e => e.dataset.seq)"
    )]  # fmt: skip
    assert seqs == sorted(seqs) and seqs[0] == 1, seqs
    usage = browser.find_element(By.ID, "usage-table").text
    assert callee in usage and "7" in usage
    assert console_errors(browser) == []


async def test_approving_from_the_ui_publishes_once_and_a_second_click_is_already_decided(
    admin_browser: webdriver.Chrome, fleet: Fleet, http: aiohttp.ClientSession, agents: dict[str, str]
) -> None:
    browser = admin_browser
    conv_id = await conversation(fleet, http)
    call = {
        "tool": "pay",
        "arguments": {"amount": 100},
        "caller": agents["caller"],
        "callee": agents["callee"],
    }
    parked = await ok(
        http, "POST", f"{fleet.urls[1]}/v1/conversations/{NS}/{TENANT}/{conv_id}/tool-calls", call
    )
    approval_id = parked["approval_id"]
    go(browser, "#/approvals", "approvals-pending")
    card = wait_for(
        lambda: browser.find_element(By.CSS_SELECTOR, f"#approvals-pending [data-approval='{approval_id}']"),
        message="the pending approval",
    )
    assert card.find_element(By.CSS_SELECTOR, ".digest").text == parked["approval_digest"]
    assert '"amount": 100' in card.find_element(By.CSS_SELECTOR, ".envelope").text
    card.find_element(By.CSS_SELECTOR, "input.reason").send_keys("within budget")
    approve = card.find_element(By.CSS_SELECTOR, "button.approve")
    approve.click()
    wait_for(lambda: "approved by bootstrap" in card.text, message="the decision")
    approve.click()  # the card is still on screen: a second click
    wait_for(lambda: "already decided" in card.text, message="already decided")

    decided = await ok(http, "GET", f"{fleet.urls[0]}/v1/approvals/{NS}/{TENANT}/{approval_id}")
    assert decided["state"] == "approved" and decided["reason"] == "within budget"
    published = await published_approvals(fleet)
    assert published[approval_id] == 1, "the gated call is on the conversations log exactly once"
    # The only console error is the browser's note of the refused second decision (409).
    assert console_errors(browser, allowed=("409",)) == []


async def test_redriving_a_dead_letter_from_the_ui(
    admin_browser: webdriver.Chrome, fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    browser = admin_browser
    url = fleet.urls[0]
    topic, sub_id = unique("dl"), unique("sub")
    await ok(
        http, "POST", f"{url}/v1/topics", {"namespace": NS, "tenant": TENANT, "name": topic, "partitions": 1}
    )
    sub = {"namespace": NS, "tenant": TENANT, "id": sub_id, "topic": topic, "start": "earliest"}
    await ok(http, "POST", f"{url}/v1/subscriptions", sub)
    await ok(http, "POST", f"{url}/v1/publish", {"topic": f"{NS}/{TENANT}/{topic}", "payload": {"n": 1}})
    path = f"{url}/v1/subscriptions/{NS}/{TENANT}/{sub_id}"
    pulled = await ok(http, "POST", f"{path}/pull", {"max_records": 1, "wait_ms": 5000})
    ids = [d["delivery_id"] for d in pulled["deliveries"]]
    await ok(http, "POST", f"{path}/nack", {"delivery_ids": ids, "action": "dead_letter", "reason": "poison"})

    go(browser, f"#/subscriptions/{NS}/{TENANT}/{sub_id}", "dead-letters")
    row = wait_for(
        lambda: browser.find_element(By.CSS_SELECTOR, "#dead-letters tr[data-dead-letter]"),
        message="the dead letter",
    )
    assert "poison" in row.text and f"{NS}/{TENANT}/{topic}" in row.text
    row.find_element(By.CSS_SELECTOR, "button.redrive-one").click()
    wait_for(
        lambda: (
            "redriven" in browser.find_element(By.CSS_SELECTOR, "#dead-letters tr[data-dead-letter]").text
        ),
        message="the dead letter marked redriven",
    )
    letters = await ok(http, "GET", f"{path}/dead-letters")
    assert [d["redriven"] for d in letters["dead_letters"]] == [True]
    again = await ok(http, "POST", f"{path}/pull", {"max_records": 1, "wait_ms": 10000})
    assert [d["payload"] for d in again["deliveries"]] == [{"n": 1}]
    assert "bus.redriven_from" in again["deliveries"][0]["headers"]
    assert console_errors(browser) == []


PAGES = [
    ("#/overview", "overview-stats"),
    ("#/topics", "topics"),
    ("#/subscriptions", "subscriptions"),
    ("#/schemas", "subjects"),
    ("#/agents", "agents"),
    ("#/conversations", "conversations"),
    ("#/approvals", "approvals-pending"),
    ("#/audit", "audit-table"),
    ("#/keys", "keys"),
    (f"#/rules/{NS}/{TENANT}", "rules-editor"),
]


@pytest.mark.parametrize("width,height", [(1280, 800), (390, 844)])
async def test_every_page_loads_without_console_errors(
    fleet: Fleet, http: aiohttp.ClientSession, agents: dict[str, str], width: int, height: int
) -> None:
    schema = {"schema": {"type": "object"}}
    await ok(http, "POST", f"{fleet.urls[0]}/v1/schemas/{NS}/{TENANT}/ui-subject/versions", schema)
    driver = chromium(width, height)
    try:
        sign_in(driver, fleet.urls[0], fleet.admin_key, f"{NS}/{TENANT}")
        pages = [
            *PAGES,
            (f"#/schemas/{NS}/{TENANT}/ui-subject", "schema-diff"),
            (f"#/agents/{NS}/{TENANT}/{agents['callee']}", "inbox-depth"),
        ]
        for path, ready in pages:
            go(driver, path, ready)
            await asyncio.sleep(1.0)  # the live parts connect and fill in
            assert console_errors(driver) == [], path
            overflow = driver.execute_script(
                "return document.documentElement.scrollWidth - window.innerWidth"
            )
            assert overflow <= 0, f"{path} scrolls sideways by {overflow}px at {width}px"
    finally:
        driver.quit()


async def test_a_10000_message_conversation_shows_in_seconds(
    fleet: Fleet, http: aiohttp.ClientSession, agents: dict[str, str]
) -> None:
    count = 10_000
    conv_id = await conversation(fleet, http)
    conv = f"{fleet.urls[0]}/v1/conversations/{NS}/{TENANT}/{conv_id}/messages"
    lanes = asyncio.Semaphore(32)

    async def append(i: int) -> None:
        async with lanes:
            await ok(
                http, "POST", conv, {"sender": agents["caller"], "payload": {"i": i, "text": f"message {i}"}}
            )

    await asyncio.gather(*(append(i) for i in range(count)))
    driver = chromium()
    try:
        sign_in(driver, fleet.urls[1], fleet.admin_key, f"{NS}/{TENANT}")
        started = time.monotonic()
        # The page asks the owner for the conversation, which answers once its view has
        # applied every append: on a busy machine that lags the appends by seconds.
        go(driver, f"#/conversations/{NS}/{TENANT}/{conv_id}", "thread", timeout=60)
        wait_for(
            lambda: driver.find_element(By.ID, "thread").get_attribute("data-count") == str(count),
            timeout=120,
            message=f"{count} messages",
        )
        first_render = time.monotonic() - started
        rendered = driver.execute_script("return document.querySelectorAll('#thread > [data-seq]').length")
        assert rendered == count
        print(f"\n{count}-message conversation: all shown {first_render:.1f} s after opening the page")
        assert first_render < 60
        assert console_errors(driver) == []
    finally:
        driver.quit()
