"""Screenshots of every console page for docs/ui/, against a running fleet.

    .venv/bin/python -m tests.console_screens --url http://127.0.0.1:6066 [--seed] [--out docs/ui]

--seed first adds a little of everything the pages show (a topic with records, a schema
with two versions, a subscription with a dead letter) to the demo tenant demo/acme.
"""

from __future__ import annotations

import argparse
import json
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.browser import chromium, console_errors, go, sign_in
from tests.fleet import REPO

PAGES = [
    ("overview", "#/overview", "overview-stats"),
    ("topics", "#/topics", "topics"),
    ("topic", "#/topics/demo/acme/orders", "tail"),
    ("subscriptions", "#/subscriptions", "subscriptions"),
    ("subscription", "#/subscriptions/demo/acme/billing", "lag-table"),
    ("schemas", "#/schemas", "subjects"),
    ("schema", "#/schemas/demo/acme/orders", "diff-table"),
    ("agents", "#/agents", "agents"),
    ("agent", "#/agents/demo/acme/calculator", "inbox-depth"),
    ("conversations", "#/conversations", "conversations"),
    ("approvals", "#/approvals", "approvals-pending"),
    ("audit", "#/audit", "audit-table"),
    ("keys", "#/keys", "keys"),
    ("rules", "#/rules/demo/acme", "rules-editor"),
]


def call(url: str, key: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, method=method)
    request.add_header("Authorization", f"Bearer {key}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def seed(url: str, key: str) -> None:
    call(
        url,
        key,
        "POST",
        "/v1/topics",
        {"namespace": "demo", "tenant": "acme", "name": "orders", "partitions": 3},
    )
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {"total": {"type": "number"}},
        "required": ["total"],
    }
    call(url, key, "POST", "/v1/schemas/demo/acme/orders/versions", {"schema": schema})
    call(url, key, "PUT", "/v1/schemas/demo/acme/orders/config", {"compatibility": "NONE"})
    v2 = {
        "type": "object",
        "properties": {"total": {"type": "number", "minimum": 0}, "currency": {"enum": ["EUR", "USD"]}},
        "required": ["total", "currency"],
    }
    call(url, key, "POST", "/v1/schemas/demo/acme/orders/versions", {"schema": v2})
    sub = {"namespace": "demo", "tenant": "acme", "id": "billing", "topic": "orders", "start": "earliest"}
    call(url, key, "POST", "/v1/subscriptions", {**sub, "ack_deadline_ms": 5000, "max_deliveries": 2})
    for i in range(6):
        record = {
            "topic": "demo/acme/orders",
            "key": f"order-{i}",
            "payload": {"total": 10 * i, "currency": "EUR"},
        }
        call(url, key, "POST", "/v1/publish", {**record, "headers": {"source": "shop"}})
    _, pulled = call(
        url, key, "POST", "/v1/subscriptions/demo/acme/billing/pull", {"max_records": 3, "wait_ms": 3000}
    )
    ids = [d["delivery_id"] for d in pulled["deliveries"]]
    if ids:
        call(url, key, "POST", "/v1/subscriptions/demo/acme/billing/ack", {"delivery_ids": ids[:1]})
        nack = {"delivery_ids": ids[1:2], "action": "dead_letter", "reason": "cannot bill a zero total"}
        call(url, key, "POST", "/v1/subscriptions/demo/acme/billing/nack", nack)
    call(url, key, "PUT", "/v1/topics/demo/acme/orders/schema", {"subject": "orders", "version": "latest"})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="http://127.0.0.1:6066")
    parser.add_argument("--key-file", default=str(REPO / ".data" / "admin-key"))
    parser.add_argument("--out", default=str(REPO / "docs" / "ui"))
    parser.add_argument("--seed", action="store_true")
    parser.add_argument("--conversation", help="namespace/tenant/id of a conversation to show")
    args = parser.parse_args()
    key = Path(args.key_file).read_text().strip()
    if args.seed:
        seed(args.url, key)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pages = list(PAGES)
    if args.conversation:
        pages.insert(10, ("conversation", f"#/conversations/{args.conversation}", "thread"))
    for width, height, suffix in ((1280, 800, ""), (390, 844, "-phone")):
        driver = chromium(width, height)
        try:
            sign_in(driver, args.url, key)
            driver.execute_script("sessionStorage.setItem('agentbus.tenant', 'demo/acme')")
            for name, path, ready in pages:
                if suffix and name not in ("overview", "conversation", "approvals"):
                    continue
                go(driver, path, ready)
                if name == "topic":  # show the records there are, not only new ones
                    driver.execute_script("document.getElementById('tail-from').value = 'earliest'")
                    driver.execute_script("document.getElementById('tail-go').click()")
                time.sleep(2.5)  # let the live parts fill in
                driver.save_screenshot(str(out / f"{name}{suffix}.png"))
                errors = console_errors(driver)
                print(f"{name}{suffix}: {'console errors: ' + repr(errors) if errors else 'ok'}")
        finally:
            driver.quit()


if __name__ == "__main__":
    main()
