"""`ablate serve` in real headless Chromium while a real `ablate run` writes to the store: the
page shows the experiment, trials finishing and the lift table changing, all without a reload;
no request goes anywhere but this machine's server; a screenshot is kept as the test's artifact."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from urllib.parse import urlparse

import pytest

from ablate.store import Store
from tests.report.test_report_html import assert_not_blank, chromium_or_skip

pytest.importorskip("starlette")

# quickstart-like at toy scale: 9 trials of a few seconds each on digits, arm by arm (long enough that
# the 2 s polls and the background rebuild show the lift table between trials, also on a loaded machine)
LIVE_SPEC = """\
name: live
data: {name: digits, image_size: 8, train_size: 128}
model: {name: cifar_resnet, depth: 8, width: 8}
recipe: {epochs: 20, batch_size: 32, lr: 0.05}
tricks:
  cosine: {}
  label_smoothing: {eps: 0.1}
design: {kind: one_at_a_time}
seeds: 3
metric: {name: val_acc}
"""
LOCAL_HOSTS = ("127.0.0.1", "localhost")
# every distinct text the lift table and the count of complete trials show, kept in the page
WATCH = """() => {
  window.__loaded = window.__loaded || Date.now();
  window.__lifts = []; window.__complete = [];
  const look = () => {
    const lift = document.querySelector('#lift-table');
    if (lift && window.__lifts[window.__lifts.length - 1] !== lift.textContent) window.__lifts.push(lift.textContent);
    const done = document.querySelectorAll('#trials-table tr.complete').length;
    if (window.__complete[window.__complete.length - 1] !== done) window.__complete.push(done);
  };
  new MutationObserver(look).observe(document.body, {subtree: true, childList: true, characterData: true});
  look();
}"""


def ablate_cmd(*args) -> list[str]:
    return [sys.executable, "-m", "ablate", *args]


def start_server(store_path, env) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(ablate_cmd("serve", "--store", str(store_path), "--port", "0"), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = proc.stdout.readline()
    if "read-only, at http://" not in line:
        proc.kill()
        pytest.fail(f"ablate serve did not start: {line}{proc.stdout.read()}")
    return proc, line.rsplit(" at ", 1)[1].strip()


def test_the_page_follows_a_running_experiment_without_reload(tmp_path):
    sync_playwright, chromium = chromium_or_skip()
    store_path = tmp_path / "live.db"
    Store(store_path, create=True).engine.dispose()        # an empty store: the page waits for the run
    (tmp_path / "live.yaml").write_text(LIVE_SPEC)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")]))}
    server, url = start_server(store_path, env)
    run = None
    elsewhere: list[str] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=[
                "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"])
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))

                def guard(route):
                    host = urlparse(route.request.url).hostname
                    if host not in LOCAL_HOSTS:
                        elsewhere.append(route.request.url)
                        route.abort()
                    else:
                        route.continue_()

                page.route("**/*", guard)
                page.goto(url)
                page.wait_for_selector("text=no experiments in this store yet", timeout=20000)
                page.evaluate("window.__marker = 'no reload'")
                run = subprocess.Popen(ablate_cmd("run", str(tmp_path / "live.yaml"), "--store", str(store_path),
                                                  "--no-report"), env=env, cwd=tmp_path,
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                # the experiment appears in the list by itself; its page is one click (a hash change) away
                page.click("#experiments-table a:text('live')", timeout=180000)
                page.evaluate(WATCH)
                deadline = time.monotonic() + 300
                while time.monotonic() < deadline:
                    lifts = page.evaluate("window.__lifts")
                    if len(lifts) >= 2 and run.poll() is not None:
                        break
                    time.sleep(0.5)
                page.wait_for_timeout(2500)        # one more poll after the run's last write
                lifts = page.evaluate("window.__lifts")
                complete = page.evaluate("window.__complete")
                assert page.evaluate("window.__marker") == "no reload"
                shot = tmp_path / "serve.png"
                png = page.screenshot(full_page=True, path=str(shot))
                print(f"\nscreenshot: {shot}")
                drawn = page.evaluate("document.querySelectorAll('.js-plotly-plot svg.main-svg').length")
                verdict = page.text_content("#verdict")
            finally:
                browser.close()
        out = run.communicate(timeout=120)[0]
        assert run.returncode == 0, out
        assert not elsewhere, f"requests left the machine: {elsewhere}"
        assert not errors, errors
        # trials finished while the page watched, and the lift table changed with them
        assert complete[-1] == 9 and len(complete) >= 2 and complete == sorted(complete), complete
        assert len(lifts) >= 2 and lifts[-1] != lifts[0], lifts
        assert "(3)" in lifts[-1] and verdict.startswith("Verdict:")
        assert drawn >= 2
        assert_not_blank(png)
    finally:
        for proc in (run, server):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=20)
