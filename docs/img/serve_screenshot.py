"""docs/img/serve.png: the dashboard of a real quickstart run, taken in headless Chromium.

    ablate run quickstart --store qs.db &           # the run the picture shows
    python docs/img/serve_screenshot.py qs.db --after 16

starts `ablate serve` on the store, opens the quickstart's page, waits until `--after` trials
are complete (the run still going: a running trial, a partial lift table) and saves a PNG
reduced to a 256-colour palette (< 200 KB).
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright

OUT = Path(__file__).resolve().parent / "serve.png"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("store")
    ap.add_argument("--experiment", default="quickstart")
    ap.add_argument("--after", type=int, default=16, help="complete trials to wait for")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    args = ap.parse_args()
    server = subprocess.Popen([sys.executable, "-m", "ablate", "serve", "--store", args.store, "--port", "0"],
                              stdout=subprocess.PIPE, text=True)
    try:
        url = server.stdout.readline().rsplit(" at ", 1)[1].strip()
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, args=["--headless=new", "--no-sandbox"])
            page = browser.new_page(viewport={"width": 1180, "height": 1000}, device_scale_factor=1)
            page.goto(f"{url}#/e/{args.experiment}")
            page.wait_for_function(f"document.querySelectorAll('#trials-table tr.complete').length >= {args.after}",
                                   timeout=3_600_000, polling=1000)
            page.wait_for_function("document.querySelectorAll('.js-plotly-plot svg.main-svg').length >= 2")
            page.wait_for_timeout(1500)
            png = page.screenshot(full_page=False)
            browser.close()
        img = Image.open(io.BytesIO(png)).convert("RGB").quantize(256)
        img.save(OUT, optimize=True)
        print(f"wrote {OUT} ({OUT.stat().st_size / 1024:.0f} KB)")
    finally:
        server.terminate()
        server.wait(timeout=20)


if __name__ == "__main__":
    main()
