"""The HTML report: plain data checked directly; the page checked in real headless Chromium."""

from __future__ import annotations

import io
import os
import re
import shutil

import numpy as np
import pytest

from ablate.report import build_report, write_report
from ablate.report.html import curve_bands, interaction_matrix, lift_points, report_html, seed_differences
from tests.test_report import VALS, cumulative_spec, filled_store
from tests.conftest import tiny_spec

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def cumulative_report(tmp_path, **kw):
    store, _ = filled_store(tmp_path, cumulative_spec(), VALS, **kw)
    return build_report(store, "tiny")


def factorial_report(tmp_path):
    spec = tiny_spec(tricks={"cosine": {}, "label_smoothing": {}, "mixup": {}}, design={"kind": "full_factorial"},
                     seeds=3)
    rng = np.random.default_rng(3)
    levels = np.array([[1 if k in a else -1 for k in spec.tricks] for a in
                       [t for t in __import__("ablate.plan", fromlist=["arm_tricks"]).arm_tricks(spec)]])
    values = 90 + levels @ np.array([1.0, 0.4, -0.6])[:, None] / 2 + rng.normal(0, 0.2, (8, 3))
    store, _ = filled_store(tmp_path, spec, values)
    return build_report(store, "tiny")


def test_lift_points_are_the_table_values(tmp_path):
    r = cumulative_report(tmp_path)
    pts = lift_points(r)
    f = r.lift.frame
    assert pts.label.tolist() == f.label.tolist()[1:]
    assert pts.lift_low.tolist() == f.lift_low.tolist()[1:] and pts.step_lift.tolist() == f.step_lift.tolist()[1:]


def test_seed_differences_are_paired(tmp_path):
    r = cumulative_report(tmp_path, fail={(2, 1)})
    d = seed_differences(r)
    assert len(d) == 3 * 4 - 1
    row = d[(d.arm == 3) & (d.seed == 2)].iloc[0]
    assert row.difference == pytest.approx(VALS[3, 2] - VALS[0, 2])


def test_curve_bands_are_mean_plus_minus_std(tmp_path):
    r = cumulative_report(tmp_path)
    band = [b for b in curve_bands(r, "val_acc") if b["arm"] == 2][0]
    m, s = VALS[2].mean(), VALS[2].std(ddof=1)
    assert band["mean"][-1] == pytest.approx(m) and band["high"][-1] == pytest.approx(m + s)
    assert band["low"][-1] == pytest.approx(m - s) and band["epoch"] == [1, 2]


def test_interaction_matrix_of_a_factorial(tmp_path):
    r = factorial_report(tmp_path)
    keys, m, hover = interaction_matrix(r)
    assert keys == ["cosine", "label_smoothing", "mixup"]
    main = r.effects.set_index("term").estimate
    assert m[0, 0] == pytest.approx(main["cosine"]) and m[2, 2] == pytest.approx(main["mixup"])
    assert m[0, 1] == m[1, 0] == pytest.approx(main["cosine x label_smoothing"])
    assert m[0, 0] == pytest.approx(1.0, abs=0.3)


def test_page_is_self_contained_and_escapes_text(tmp_path):
    r = cumulative_report(tmp_path)
    r.plan.arms[1].__dict__  # arms are frozen dataclasses: relabel through the frame instead
    r.lift.frame.loc[1, "label"] = "<script>alert(1)</script>"
    page = report_html(r)
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert not re.search(r"<script[^>]+src=", page), "no external scripts"
    assert not re.search(r"<link[^>]+href=['\"]?https?:", page), "no external stylesheets"
    assert page.count("Plotly.newPlot") >= 2 and "ablate report tiny --format html" in page


def test_factorial_page_has_effects_and_heatmap(tmp_path):
    page = report_html(factorial_report(tmp_path))
    assert "<h2>Effects</h2>" in page and "<h2>Interactions</h2>" in page and '"type":"heatmap"' in page


def test_failed_trials_are_shown(tmp_path):
    page = report_html(cumulative_report(tmp_path, fail={(2, 1)}))
    assert 'class="bad"' in page and "training loss became nan in epoch 3" in page


@pytest.mark.browser
def test_page_draws_in_headless_chromium(tmp_path):
    required = os.environ.get("ABLATE_REQUIRE_BROWSER") == "1"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if required:
            pytest.fail("playwright is not installed but ABLATE_REQUIRE_BROWSER=1")
        pytest.skip("playwright is not installed (pip install -e '.[test]')")
    if CHROMIUM is None:
        if required:
            pytest.fail("chromium is not installed but ABLATE_REQUIRE_BROWSER=1 (apt-get install chromium)")
        pytest.skip("Debian's chromium is not installed")
    from PIL import Image

    report = factorial_report(tmp_path)
    path = write_report(report, tmp_path / "out", ("html",))[0]
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url) if not r.url.startswith(("file:", "data:")) else None)
        page.goto(path.resolve().as_uri())
        page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 4", timeout=20000)
        plots = page.evaluate("""() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(d => ({
            svg: d.querySelectorAll('svg.main-svg').length,
            marks: d.querySelectorAll('.scatterlayer .trace, .heatmaplayer .hm, image').length}))""")
        png = page.screenshot(full_page=True)
        browser.close()
    assert errors == [], errors
    assert requests == [], f"the page fetched from the network: {requests}"
    assert len(plots) == 4 and all(p["svg"] > 0 and p["marks"] > 0 for p in plots), plots
    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    assert (img < 250).any(axis=2).mean() > 0.03, "screenshot is blank"
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 50, "screenshot has no charts' colours"
    (tmp_path / "out" / "screenshot.png").write_bytes(png)
