"""Opens the live dashboard in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright
from PyPI: no browser download), watches its figures change, and saves a screenshot.

usage: check_dashboard.py URL SCREENSHOT.png

Prints one JSON object: the figures read at two moments and what the page showed.
"""

import json
import os
import sys
import tempfile
import time

from playwright.sync_api import sync_playwright

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# Without the background-networking flags Chromium keeps trying Google's hosts, which a closed
# network refuses.
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def number(page, element_id):
    text = page.inner_text(f"#{element_id}").split(" ")[0]
    return int(text.replace(",", ""))


def main():
    url, screenshot = sys.argv[1], sys.argv[2]
    if not os.path.exists(CHROMIUM):
        sys.exit(f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as profile, sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=ARGS, viewport={"width": 1400, "height": 1100}
        )
        page = browser.new_page()
        page.goto(url)
        page.wait_for_function("document.getElementById('status').textContent === 'running'", timeout=20000)
        page.wait_for_function("Number(document.getElementById('kpi-processed').textContent.replace(/,/g, '')) > 0",
                               timeout=30000)
        first = {k: number(page, f"kpi-{k}") for k in ("produced", "processed", "events", "orders")}
        # The figures must move while the job runs.
        deadline = time.time() + 20
        second = first
        while time.time() < deadline and (second["produced"] <= first["produced"]
                                          or second["processed"] <= first["processed"]):
            time.sleep(0.5)
            second = {k: number(page, f"kpi-{k}") for k in ("produced", "processed", "events", "orders")}
        # Let the charts gather a few points, then look at what they drew.
        page.wait_for_function("document.querySelectorAll('#throughput path').length >= 2", timeout=20000)
        time.sleep(2)
        charts = page.evaluate(
            """() => Object.fromEntries(['throughput', 'orders', 'revenue', 'funnel', 'products', 'categories',
                 'shards', 'quarantine'].map(id => {
                 const el = document.getElementById(id);
                 return [id, el.querySelectorAll('path, rect').length];
            }))"""
        )
        status = page.inner_text("#status")
        page.screenshot(path=screenshot, full_page=True)
        browser.close()
    print(json.dumps({"first": first, "second": second, "charts": charts, "status": status}))


if __name__ == "__main__":
    main()
