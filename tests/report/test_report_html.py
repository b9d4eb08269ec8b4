"""The HTML report: plain data checked directly; the page checked in real headless Chromium."""

from __future__ import annotations

import html
import io
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from ablate.design.plan import plan
from ablate.report import build_report, render, write_report
from ablate.report.html import (
    curve_bands,
    curves_figure,
    effect_points,
    interaction_matrix,
    lift_figure,
    lift_points,
    report_html,
    seed_differences,
    trial_rows,
)
from tests.conftest import tiny_spec
from tests.report.test_report import VALS, cumulative_spec, filled_store

CHROMIUM = (shutil.which("chromium") or shutil.which("chromium-browser")
            or next((p for p in ("/usr/bin/chromium",) if os.access(p, os.X_OK)), None))
HOSTILE = "<script>alert(1)</script>"


def cumulative_report(tmp_path, **kw):
    store, _ = filled_store(tmp_path, cumulative_spec(), VALS, **kw)
    return build_report(store, "tiny")


def factorial_values(spec, effects, seeds, noise=0.2, seed=3):
    """90 + half the effect per +1 level of each trick, plus seed noise: (arms x seeds)."""
    levels = np.array([a.levels for a in plan(spec).arms], dtype=float)
    rng = np.random.default_rng(seed)
    return 90 + (levels @ np.asarray(effects, dtype=float) / 2)[:, None] + rng.normal(0, noise, (len(levels), seeds))


def factorial_report(tmp_path):
    spec = tiny_spec(tricks={"cosine": {}, "label_smoothing": {}, "mixup": {}}, design={"kind": "full_factorial"},
                     seeds=3)
    store, _ = filled_store(tmp_path, spec, factorial_values(spec, [1.0, 0.4, -0.6], 3))
    return build_report(store, "tiny")


def fractional_report(tmp_path):
    """2^(4-1), resolution IV: every two-trick interaction is aliased with another one."""
    spec = tiny_spec(tricks={"cosine": {}, "label_smoothing": {}, "mixup": {}, "ema": {}},
                     design={"kind": "fractional_factorial", "resolution": 4}, seeds=2)
    store, _ = filled_store(tmp_path, spec, factorial_values(spec, [1.0, 0.4, -0.6, 0.2], 2))
    return build_report(store, "tiny")


def hostile_report(tmp_path):
    """User text that would run as script if it were not escaped."""
    spec = tiny_spec(tricks={"cosine": {}, "label_smoothing": {}},
                     design={"kind": "explicit", "arms": [[], {"label": HOSTILE, "tricks": ["cosine"]},
                                                          ["cosine", "label_smoothing"]]},
                     seeds=3, description="<img src=x onerror=alert(2)> & more")
    store, _ = filled_store(tmp_path, spec, VALS[:3, :3], fail={(2, 1)})
    return build_report(store, "tiny")


# -- plain data ---------------------------------------------------------------------------------

def test_lift_points_are_the_table_values(tmp_path):
    r = cumulative_report(tmp_path)
    pts = lift_points(r)
    f = r.lift.frame
    assert pts.label.tolist() == f.label.tolist()[1:]
    for col in ("lift", "lift_low", "lift_high", "p_holm", "step_lift", "step_low", "step_high"):
        assert pts[col].tolist() == pytest.approx(f[col].tolist()[1:]), col


def test_lift_figure_draws_the_table_values(tmp_path):
    r = cumulative_report(tmp_path)
    f = r.lift.frame.iloc[1:]
    lift, step, dots = lift_figure(r).data
    assert list(lift.y) == f.label.tolist()
    assert list(lift.x) == pytest.approx(f.lift.tolist())
    assert list(lift.error_x.array) == pytest.approx((f.lift_high - f.lift).tolist())
    assert list(lift.error_x.arrayminus) == pytest.approx((f.lift - f.lift_low).tolist())
    assert list(step.x) == pytest.approx(f.step_lift.tolist())
    assert list(step.error_x.array) == pytest.approx((f.step_high - f.step_lift).tolist())
    assert len(dots.x) == 3 * 4 and lift.orientation == "h"
    filled = [s == "diamond" for s in lift.marker.symbol]
    assert filled == f.significant.tolist()


def test_seed_differences_are_paired(tmp_path):
    r = cumulative_report(tmp_path, fail={(2, 1)})
    d = seed_differences(r)
    assert len(d) == 3 * 4            # the diverged seed is paired at its chance score
    assert d[(d.arm == 2) & (d.seed == 1)].difference.iloc[0] == pytest.approx(10.0 - VALS[0, 1])
    row = d[(d.arm == 3) & (d.seed == 2)].iloc[0]
    assert row.difference == pytest.approx(VALS[3, 2] - VALS[0, 2])
    # their mean is the lift of the table
    assert d[d.arm == 2].difference.mean() == pytest.approx(r.lift.frame.lift[2])


def test_curve_bands_are_mean_plus_minus_std(tmp_path):
    r = cumulative_report(tmp_path)
    band = [b for b in curve_bands(r, "val_acc") if b["arm"] == 2][0]
    m, s = VALS[2].mean(), VALS[2].std(ddof=1)
    assert band["mean"][-1] == pytest.approx(m) and band["high"][-1] == pytest.approx(m + s)
    assert band["low"][-1] == pytest.approx(m - s) and band["epoch"] == [1, 2]
    loss = curve_bands(r, "train_loss")[0]
    assert loss["mean"] == pytest.approx([1.0, 0.5]) and loss["low"] == loss["high"] == loss["mean"]
    # in the figure: a closed band (high out, low back) and the mean line, per arm and panel
    fig = curves_figure(r)
    shade = [t for t in fig.data if t.fill == "toself"]
    assert len(shade) == len(fig.data) / 2 == 2 * 4
    assert list(shade[2].y) == pytest.approx(band["high"] + band["low"][::-1])


def test_effect_points_sorted_by_size(tmp_path):
    e = effect_points(factorial_report(tmp_path))
    sizes = e.estimate.abs().tolist()
    assert sizes == sorted(sizes, reverse=True) and e.term[0] == "cosine"
    assert effect_points(cumulative_report(tmp_path / "c")).empty


def test_interaction_matrix_of_a_factorial(tmp_path):
    r = factorial_report(tmp_path)
    keys, m, hover = interaction_matrix(r)
    assert keys == ["cosine", "label_smoothing", "mixup"]
    main = r.effects.set_index("term").estimate
    assert m[0, 0] == pytest.approx(main["cosine"]) and m[2, 2] == pytest.approx(main["mixup"])
    assert m[0, 1] == m[1, 0] == pytest.approx(main["cosine x label_smoothing"])
    assert m[0, 0] == pytest.approx(1.0, abs=0.3)
    assert hover[0][1].startswith("cosine x label_smoothing: ")


def test_interaction_matrix_shows_aliases(tmp_path):
    r = fractional_report(tmp_path)
    keys, m, hover = interaction_matrix(r)
    eff = r.effects.set_index("term")
    estimated = [t for t in eff.index if " x " in t]
    assert len(estimated) == 3, "2^(4-1) IV: three estimable pairs, each aliased with another"
    for term in estimated:
        alias = eff.loc[term, "aliases"]
        i, j = (keys.index(k) for k in term.split(" x "))
        a, b = (keys.index(k) for k in alias.split(" x "))
        assert m[i, j] == m[a, b] == pytest.approx(eff.loc[term, "estimate"])
        assert f"aliased with {alias}" in hover[i][j] and "not separable" in hover[a][b]
    assert not np.isnan(m).any()


def test_trial_rows_mark_failures(tmp_path):
    r = cumulative_report(tmp_path, fail={(2, 1)})
    header, rows, classes = trial_rows(r.trials)
    assert len(rows) == 16 and header[3] == "Status"
    bad = [row for row, c in zip(rows, classes) if c == "bad"]
    assert len(bad) == 1 and bad[0][3] == "diverged" and bad[0][-1] == "training loss became nan in epoch 3"
    assert bad[0][4] == "–" and rows[0][:4] == ["0", "ResNet8-w8", "0", "complete"]


# -- page ----------------------------------------------------------------------------------------

def test_page_is_self_contained(tmp_path):
    from plotly.offline import get_plotlyjs

    page = report_html(cumulative_report(tmp_path))
    assert not re.search(r"<script[^>]*\ssrc\s*=", page, re.I), "no external scripts"
    assert not re.search(r"<link\b", page, re.I), "no stylesheets or fonts to fetch"
    assert not re.search(r"@import|url\(\s*['\"]?(https?:)?//", page), "no CSS fetches"
    assert page.count(get_plotlyjs()[:300]) == 1, "plotly.js embedded once"
    assert page.count("Plotly.newPlot") == 2, "lift chart and learning curves"
    assert "ablate report tiny --format html" in page
    assert page.index("<h2>Lift table</h2>") < page.index("<h2>Lift</h2>") < page.index("<h2>Trials</h2>")


def test_page_escapes_user_text(tmp_path):
    page = report_html(hostile_report(tmp_path))
    assert HOSTILE not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(2)&gt; &amp; more" in page
    # the only <script> tags are plotly's and the figures'
    assert len(re.findall(r"<script\b", page)) == 1 + page.count("Plotly.newPlot")


def test_factorial_page_has_effects_and_heatmap(tmp_path):
    page = report_html(factorial_report(tmp_path))
    for section in ("Lift table", "Lift", "Learning curves", "Effects", "Interactions", "Trials"):
        assert f"<h2>{section}</h2>" in page
    assert '"type":"heatmap"' in page and page.count("Plotly.newPlot") == 4


def test_failed_trials_are_shown(tmp_path):
    report = cumulative_report(tmp_path, fail={(2, 1)})
    page = report_html(report)
    assert 'class="bad"' in page and "training loss became nan in epoch 3" in page
    assert f"<strong>Verdict:</strong> {html.escape(render.verdict(report.lift))}" in page
    assert "each scores 10.00 pp" in page and "Setup: model cifar_resnet" in page


def test_factorial_effects_score_diverged_runs_like_the_lifts(tmp_path):
    import statsmodels.formula.api as smf

    spec = tiny_spec(tricks={"cosine": {}, "label_smoothing": {}}, design={"kind": "full_factorial"}, seeds=3)
    values = factorial_values(spec, [1.0, -0.5], 3)
    store, p = filled_store(tmp_path, spec, values, fail={(3, 0)})
    scored = values.copy()
    scored[3, 0] = 10.0                                   # digits: chance accuracy
    levels = np.array([a.levels for a in p.arms], dtype=float)
    rows = [{"y": scored[a, s], "A": levels[a, 0], "B": levels[a, 1], "seed": str(s)}
            for a in range(4) for s in range(3)]
    fit = smf.ols("y ~ A * B + C(seed)", data=pd.DataFrame(rows)).fit()
    eff = build_report(store, "tiny").effects.set_index("term")
    assert eff.loc["cosine", "estimate"] == pytest.approx(2 * fit.params["A"])
    assert eff.loc["cosine x label_smoothing", "estimate"] == pytest.approx(2 * fit.params["A:B"])
    excluded = build_report(store, "tiny", diverged="exclude").effects.set_index("term")
    assert abs(excluded.loc["cosine", "estimate"] - 1.0) < 1.0 < abs(eff.loc["cosine", "estimate"] - 1.0)


def test_plotly_is_imported_lazily():
    code = "import sys, ablate.report.html, ablate.report.compare; print('plotly' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- headless Chromium ----------------------------------------------------------------------------

def chromium_or_skip():
    """(sync_playwright, chromium path); skips without them unless ABLATE_REQUIRE_BROWSER=1."""
    required = os.environ.get("ABLATE_REQUIRE_BROWSER") == "1"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if required:
            pytest.fail("playwright is not installed but ABLATE_REQUIRE_BROWSER=1 (pip install -e '.[test]')")
        pytest.skip("playwright is not installed (pip install -e '.[test]'); set ABLATE_REQUIRE_BROWSER=1 to fail")
    if CHROMIUM is None:
        if required:
            pytest.fail("chromium is not installed but ABLATE_REQUIRE_BROWSER=1 (apt-get install chromium)")
        pytest.skip("no chromium on PATH (apt-get install chromium); set ABLATE_REQUIRE_BROWSER=1 to fail")
    return sync_playwright, CHROMIUM


DRAWN = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(d => ({
    svg: d.querySelectorAll('svg.main-svg').length,
    points: d.querySelectorAll('.scatterlayer .trace path.point').length,
    lines: d.querySelectorAll('.scatterlayer .trace path.js-line').length,
    heatmap: d.querySelectorAll('.heatmaplayer .hm image').length,
    yticks: Array.from(d.querySelectorAll('.ytick text')).map(t => t.textContent)}))"""


def open_pages(paths, min_plots):
    """Open each file in headless Chromium; per page: errors, network requests, dialogs, drawn
    plots (DRAWN) and a full-page PNG."""
    sync_playwright, chromium = chromium_or_skip()
    results = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=[
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        try:
            for path, n in zip(paths, min_plots):
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                seen = {"errors": [], "requests": [], "dialogs": []}
                page.on("console", lambda m, s=seen: s["errors"].append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda e, s=seen: s["errors"].append(str(e)))
                page.on("dialog", lambda d, s=seen: (s["dialogs"].append(d.message), d.dismiss()))
                page.on("request", lambda r, s=seen: s["requests"].append(r.url)
                        if not r.url.startswith(("file:", "data:", "blob:")) else None)
                page.goto(path.resolve().as_uri())
                page.wait_for_function(
                    f"Array.from(document.querySelectorAll('.js-plotly-plot')).filter("
                    f"d => d.querySelector('svg.main-svg')).length >= {n}", timeout=20000)
                seen["plots"] = page.evaluate(DRAWN)
                seen["text"] = page.evaluate("() => document.body.innerText")
                seen["png"] = page.screenshot(full_page=True)
                results.append(seen)
                page.close()
        finally:
            browser.close()
    return results


def assert_not_blank(png: bytes) -> None:
    from PIL import Image

    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.int32)
    assert (img < 250).any(axis=2).mean() > 0.03, "screenshot is blank"
    colours = np.unique((img[..., 0] << 16) | (img[..., 1] << 8) | img[..., 2])
    assert len(colours) > 50, "screenshot has no charts' colours"


@pytest.mark.browser
def test_page_draws_in_headless_chromium(tmp_path):
    factorial = write_report(factorial_report(tmp_path / "f"), tmp_path / "f" / "out", ("html",))[0]
    hostile = write_report(hostile_report(tmp_path / "h"), tmp_path / "h" / "out", ("html",))[0]
    fac, hos = open_pages([factorial, hostile], [4, 2])
    for seen in (fac, hos):
        assert seen["errors"] == [] and seen["dialogs"] == [], (seen["errors"], seen["dialogs"])
        assert seen["requests"] == [], f"the page fetched from the network: {seen['requests']}"
        assert_not_blank(seen["png"])
    lift, curves, effects, heat = fac["plots"]
    assert all(p["svg"] > 0 for p in fac["plots"]), fac["plots"]
    assert lift["points"] >= 7 + 7 * 3 and curves["lines"] >= 8 * 2 and effects["points"] == 6
    assert heat["heatmap"] == 1 and sorted(heat["yticks"]) == ["cosine", "label_smoothing", "mixup"]
    assert len(hos["plots"]) == 2 and hos["plots"][0]["points"] > 0
    assert HOSTILE in hos["plots"][0]["yticks"], "the label is shown as text, not run"
    (tmp_path / "screenshot.png").write_bytes(fac["png"])


@pytest.mark.browser
def test_search_page_has_everything_the_markdown_has_and_draws_in_headless_chromium(tmp_path):
    # a per-arm search with hand-picked values: every paragraph, list item and table cell of the
    # markdown is on the page, with the trials table and Optuna's figures titled by arm label
    from ablate.api import run_experiment
    from ablate.runner.inprocess import InProcessExecutor
    from ablate.report.search import build_search_report, search_blocks, write_search_report
    from ablate.store import Store
    from tests.search_helpers import fake_train, search_dict, search_spec

    d = search_dict(params={"recipe.lr": {"type": "float", "low": 0.01, "high": 1.0, "log": True}},
                    per_arm=True, n_trials=4, validate={"top_k": 2, "select_seeds": 1}, compare_to={"recipe.lr": 0.5})
    d["seeds"] = 4
    d["design"] = {"kind": "explicit", "arms": [[], {"label": HOSTILE, "tricks": ["mixup"]}]}
    store = Store(tmp_path / "s.db", create=True)
    p, _ = run_experiment(search_spec(d), store, executor=InProcessExecutor(run_fn=fake_train))
    report = build_search_report(store, p, confidence=0.9)
    page = write_search_report(report, tmp_path / "out", ("html",))[0]
    text = page.read_text()
    for title in ("optimisation history", "parallel coordinates", "intermediate values"):
        assert f"<h2>{title} ({html.escape(HOSTILE)})</h2>" in text, "figures are titled by arm label"
    assert "srch/arm" not in text.replace("study &#x27;srch/arm", ""), "a figure titled by its study name"
    (seen,) = open_pages([page], [8])
    assert seen["errors"] == [] and seen["dialogs"] == [] and seen["requests"] == [], seen["errors"]
    assert_not_blank(seen["png"])
    history = seen["plots"][0]
    assert history["svg"] > 0 and history["points"] >= 4, "one point per complete trial"
    shown = seen["text"]
    blocks = search_blocks(report)
    kinds = {b[0] for b in blocks}
    assert {"table", "ul", "p", "h2"} <= kinds
    for b in blocks:
        pieces = [c for row in b[2] for c in row] + b[1] if b[0] == "table" else b[1] if b[0] == "ul" else [b[1]]
        for piece in pieces:
            assert piece.replace("**", "") in shown, f"the page lacks {piece!r} of the markdown"
    for words in ("Each arm's tuned values", "Lift table over each arm's tuned configuration", "Search trials",
                  "Hand-picked vs searched", "Tuned per arm", "PED-ANOVA", "90% CI", "report: winner",
                  "select: finalist 2", "search: study trial 0"):
        assert words in shown, words
    setup = next(x for x in shown.splitlines() if x.startswith("Setup:"))
    assert "lr" not in setup.split("recipe:")[1], "the setup line shows the base recipe's searched lr"
