"""`ablate serve` through Starlette's TestClient: every endpoint, the same numbers as `ablate
report`, ETag polls, the token rule, GET only, read-only (store bytes unchanged), bad inputs."""

from __future__ import annotations

import hashlib
import io
import json
import socket
import sqlite3
import threading
import time
import zipfile

import numpy as np
import pytest
import sqlalchemy as sa

pytest.importorskip("starlette")
pytest.importorskip("httpx")
from starlette.testclient import TestClient  # noqa: E402

from ablate.cli import main  # noqa: E402
from ablate.errors import StoreError  # noqa: E402
from ablate.report import build_report, render  # noqa: E402
from ablate.report.compare import settings_differences  # noqa: E402
from ablate.serve import prepare  # noqa: E402
from ablate.serve.app import build_app  # noqa: E402
from ablate.serve.readonly import ReadOnlyStore  # noqa: E402
from ablate.design.spec import spec_to_dict  # noqa: E402
from ablate.store import Store  # noqa: E402
from tests.conftest import tiny_spec  # noqa: E402
from tests.report.test_report import VALS, cumulative_spec, filled_store  # noqa: E402
from tests.report.test_report_html import factorial_values  # noqa: E402

LOCAL = "http://127.0.0.1"


def client(path, token=None, hosts=("127.0.0.1", "localhost", "[::1]")):
    return TestClient(build_app(ReadOnlyStore(path), token=token, allowed_hosts=list(hosts)), base_url=LOCAL)


def page(c, name: str) -> dict:
    """An experiment's JSON as the page uses it: its head (running trials) and its results (a
    big store's are built in the background: the page polls until they are there)."""
    deadline = time.monotonic() + 60
    while True:
        r = c.get(f"/api/experiment/{name}")
        assert r.status_code == 200, r.text
        d = r.json()
        if d["results"] is not None or time.monotonic() > deadline:
            return d | d.pop("results")
        time.sleep(0.1)


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def store_path(tmp_path):
    filled_store(tmp_path, cumulative_spec(), VALS, fail={(2, 1)})
    return tmp_path / "r.db"


def test_experiment_page_shows_what_ablate_report_shows(store_path):
    c = client(store_path)
    d = page(c, "tiny")
    report = build_report(Store(store_path), "tiny")
    header, rows = render.lift_rows(report.lift, extra_columns=report.columns)
    assert d["lift"]["header"] == header and d["lift"]["rows"] == rows
    assert d["lift"]["verdict"] == render.verdict(report.lift)
    assert d["lift"]["notes"] == render.footnotes(report.lift, report.plan.spec)
    assert d["kind"] == "design (cumulative)"
    assert [f["key"] for f in d["figures"]] == ["lift", "curves"]
    # the HTML report's own figures: learning curves with their seed bands, lifts with CIs
    from ablate.report.html import curves_figure, lift_figure

    assert d["figures"][0]["figure"] == json.loads(lift_figure(report).to_json())
    assert d["figures"][1]["figure"] == json.loads(curves_figure(report).to_json())
    assert any(t.get("fill") == "toself" for t in d["figures"][1]["figure"]["data"])
    trials = d["trials"]["rows"]
    assert len(trials) == len(report.outcomes)
    bad = next(t for t in trials if t["status"] == "diverged")
    assert (bad["arm"], bad["seed"]) == (2, 1) and bad["error"] == "training loss became nan in epoch 3" and bad["log"]
    log = c.get(f"/log/tiny/{bad['trial_id']}")
    assert log.status_code == 200 and "attempt 1: diverged" in log.text and "nan in epoch 3" in log.text


def test_effects_of_a_factorial_design(tmp_path):
    spec = tiny_spec(tricks={"cosine": {}, "label_smoothing": {}, "mixup": {}}, design={"kind": "full_factorial"},
                     seeds=3)
    filled_store(tmp_path, spec, factorial_values(spec, [1.0, 0.4, -0.6], 3))
    d = page(client(tmp_path / "r.db"), "tiny")
    report = build_report(Store(tmp_path / "r.db"), "tiny")
    assert [r[0] for r in d["effects"]["rows"]] == list(report.effects["term"])
    assert d["effects"]["rows"][0][1] == render.ci_text(*report.effects.iloc[0][["estimate", "ci_low", "ci_high"]])
    assert "effects" in [f["key"] for f in d["figures"]]


def test_overview_lists_kinds_counts_and_running_trials(store_path, tmp_path):
    store = Store(store_path)
    spec = tiny_spec(seeds=2).with_changes(name="other")
    from ablate.design.plan import plan

    p = plan(spec)
    store.save_experiment("other", json.dumps(spec_to_dict(spec)), None)
    store.add_trials("other", list(p.trials))
    t = p.trials[0]
    store.start_trial("other", t.id, {})
    store.add_epoch("other", t.id, {"epoch": 1, "val_acc": 50.0})
    d = client(store_path).get("/api/overview").json()
    by = {e["name"]: e for e in d["experiments"]}
    assert by["tiny"]["counts"] == {"complete": 15, "diverged": 1} and by["tiny"]["kind"] == "design (cumulative)"
    assert by["other"]["counts"] == {"pending": len(p.trials) - 1, "running": 1}
    run = by["other"]["running"]
    assert [(r["label"], r["seed"], r["epoch"], r["epochs"]) for r in run] == [(t.label, t.seed, 1, 2)]
    assert run[0]["elapsed_s"] >= 0 and run[0]["eta_s"] is not None
    # no complete trial yet: the page still lists the trials and says why there is no table
    e = page(client(store_path), "other")
    assert e["lift"] is None and "no complete trials yet" in e["lift_message"]
    assert [r["status"] for r in e["trials"]["rows"]].count("running") == 1


def test_poll_answers_304_until_the_store_changes(store_path):
    c = client(store_path)
    page(c, "tiny")
    first = c.get("/api/experiment/tiny")
    etag = first.headers["etag"]
    again = c.get("/api/experiment/tiny", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    store = Store(store_path)
    t = next(x for x in build_report(store, "tiny").outcomes.itertuples() if x.status == "diverged")
    store.start_trial("tiny", t.trial_id, {})
    store.finish_trial("tiny", t.trial_id, "complete", metrics={"val_acc": 99.0, "test_acc": 99.0})
    # the first poll after the write answers at once (the last results, rebuilt in the background);
    # a later poll brings the new lift table
    rows = first.json()["results"]["lift"]["rows"]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        changed = c.get("/api/experiment/tiny", headers={"If-None-Match": etag})
        if changed.status_code == 200:
            etag = changed.headers["etag"]
            if changed.json()["results"]["lift"]["rows"] != rows:
                break
        time.sleep(0.05)
    assert changed.json()["results"]["lift"]["rows"] != rows
    assert changed.json()["results"]["lift"]["rows"] == render.lift_rows(build_report(store, "tiny").lift)[1]
    assert c.get("/api/experiment/tiny", headers={"If-None-Match": etag}).status_code == 304
    over = c.get("/api/overview")
    assert c.get("/api/overview", headers={"If-None-Match": over.headers["etag"]}).status_code == 304


def test_a_changed_view_is_answered_at_once_and_rebuilt_in_the_background(store_path):
    from ablate.serve.app import Views

    views = Views(ReadOnlyStore(store_path))
    gate = threading.Event()
    calls = []

    def build():
        calls.append(1)
        if len(calls) > 1:
            gate.wait(10)
        return {"n": len(calls)}

    assert json.loads(views.body(("k",), "s1", build)) == {"n": 1}            # first: built while waiting
    assert views.generation == 1
    t0 = time.monotonic()
    assert json.loads(views.body(("k",), "s2", build)) == {"n": 1}            # stale, at once
    assert time.monotonic() - t0 < 1 and views.generation == 1
    deadline = time.monotonic() + 10
    while len(calls) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert json.loads(views.body(("k",), "s3", build)) == {"n": 1}            # still the last one
    assert len(calls) == 2                                                    # one build at a time
    gate.set()
    deadline = time.monotonic() + 10
    while views.generation == 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert views.generation == 2 and json.loads(views.body(("k",), "s2", build)) == {"n": 2}


def test_a_slow_first_build_answers_none_then_the_view(store_path):
    from ablate.serve.app import Views

    views = Views(ReadOnlyStore(store_path), wait_s=0.05)
    gate = threading.Event()

    def build():
        gate.wait(10)
        return {"ok": True}

    assert views.body(("k",), "s1", build) is None                           # the page says "building"
    gate.set()
    deadline = time.monotonic() + 10
    while views.generation == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert json.loads(views.body(("k",), "s1", build)) == {"ok": True}

    def broken():
        raise ValueError("boom")

    views.body(("bad",), "s1", broken)
    while ("bad",) in views.building:
        time.sleep(0.01)
    assert json.loads(views.body(("bad",), "s1", broken)) == {"error": "could not build this view: ValueError: boom"}


def test_compare_uses_the_report_compare_functions(tmp_path):
    a = tmp_path / "a"
    a.mkdir()
    filled_store(a, cumulative_spec(), VALS)
    store = Store(a / "r.db")
    spec = cumulative_spec().with_changes(name="tiny2", recipe={"lr": 0.2})
    from ablate.design.plan import plan

    p = plan(spec)
    store.save_experiment("tiny2", json.dumps(spec_to_dict(spec)), None)
    store.add_trials("tiny2", list(p.trials))
    for t in p.trials:
        store.start_trial("tiny2", t.id, {})
        store.finish_trial("tiny2", t.id, "complete", metrics={"val_acc": VALS[t.arm, t.seed] + 1, "test_acc": 90.0})
    c = client(a / "r.db")
    d = c.get("/api/compare?a=tiny&b=tiny2").json()
    while d.get("building"):
        time.sleep(0.1)
        d = c.get("/api/compare?a=tiny&b=tiny2").json()
    diffs = settings_differences([build_report(store, "tiny"), build_report(store, "tiny2")])
    assert [(x["setting"], x["values"]) for x in d["differences"]] == [(k, [str(v) for v in vals]) for k, vals in diffs]
    assert any(x["setting"] == "recipe.lr" for x in d["differences"])
    assert d["header"][0] == "Tricks" and len(d["rows"]) == 4
    assert c.get("/api/compare?a=tiny").status_code == 400
    md = c.get("/download/_compare/md?a=tiny&b=tiny2")
    assert md.status_code == 200 and md.text.startswith("## tiny vs tiny2")


@pytest.mark.parametrize("fmt, name, starts", [("md", "lift.md", "## tiny"), ("latex", "lift.tex", "\\begin{table}"),
                                              ("html", "report.html", "<!doctype html>"), ("json", "report.json", "{")])
def test_downloads_are_the_report_writers_files(store_path, fmt, name, starts):
    r = client(store_path).get(f"/download/tiny/{fmt}")
    assert r.status_code == 200 and f'filename="{name}"' in r.headers["content-disposition"]
    assert r.text.lower().startswith(starts.lower())
    if fmt == "md":
        assert r.text == build_report(Store(store_path), "tiny").markdown()


def test_csv_download_of_a_factorial_design_is_a_zip_of_its_files(tmp_path):
    spec = tiny_spec(tricks={"cosine": {}, "label_smoothing": {}}, design={"kind": "full_factorial"}, seeds=3)
    filled_store(tmp_path, spec, factorial_values(spec, [1.0, 0.4], 3))
    r = client(tmp_path / "r.db").get("/download/tiny/csv")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    assert sorted(zipfile.ZipFile(io.BytesIO(r.content)).namelist()) == ["effects.csv", "lift.csv"]


def test_search_page_and_downloads(tmp_path):
    from ablate.api import run_experiment
    from ablate.runner.inprocess import InProcessExecutor
    from tests.search_helpers import fake_train, search_spec

    store = Store(tmp_path / "s.db", create=True)
    run_experiment(search_spec(n_trials=4), store, executor=InProcessExecutor(run_fn=fake_train))
    before = digest(tmp_path / "s.db")
    c = client(tmp_path / "s.db")
    d = page(c, "srch")
    assert d["kind"] == "search" and d["search"]["studies"][0]["trials"] == 4
    titles = [f["key"] for f in d["figures"]]
    assert {"optimisation history", "parallel coordinates", "intermediate values"} <= set(titles)
    assert d["search"]["finalists"][0]["rows"][0][0] == "finalist 1"
    assert d["optuna_dashboard"].startswith("optuna-dashboard 'sqlite:///")
    assert c.get("/download/srch/md").text.startswith("# srch: search")
    assert c.get("/download/srch/latex").status_code == 404     # the search writers have no LaTeX
    assert digest(tmp_path / "s.db") == before


def test_search_without_a_study_yet_says_so_and_creates_nothing(tmp_path):
    from ablate.design.plan import plan
    from tests.search_helpers import search_spec

    spec = search_spec()
    store = Store(tmp_path / "s.db", create=True)
    store.save_experiment(spec.name, json.dumps(spec_to_dict(spec)), None)
    plan(spec)
    d = page(client(tmp_path / "s.db"), "srch")
    assert d["search"] is None and "no Optuna study" in d["notes"][0]
    names = set(sa.inspect(sa.create_engine(f"sqlite:///{tmp_path / 's.db'}")).get_table_names())
    assert "studies" not in names


def test_every_endpoint_and_errors(store_path):
    c = client(store_path)
    page = c.get("/")
    assert page.status_code == 200 and "/assets/plotly.min.js" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "http" not in page.text.replace("http-equiv", "")      # no address elsewhere
    for name, kind in (("app.js", "javascript"), ("app.css", "css"), ("plotly.min.js", "javascript")):
        r = c.get(f"/assets/{name}")
        assert r.status_code == 200 and kind in r.headers["content-type"]
    js = c.get("/assets/app.js").text
    assert "http://" not in js and "https://" not in js
    assert c.get("/assets/nope.js").status_code == 404
    assert c.get("/assets/..%2Fapp.py").status_code == 404
    r = c.get("/api/experiment/nope")
    assert r.status_code == 404 and "no experiment 'nope'" in r.json()["error"] and "tiny" in r.json()["error"]
    assert c.get("/download/tiny/docx").status_code == 404
    assert "unknown download format 'docx'" in c.get("/download/tiny/docx").text
    assert c.get("/log/tiny/nope").status_code == 404
    assert c.get("/nothing").status_code == 404


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_get_only(store_path, method):
    c = client(store_path)
    for path in ("/", "/api/overview", "/api/experiment/tiny", "/download/tiny/md", "/api/compare?a=tiny&b=tiny"):
        assert c.request(method, path).status_code == 405


def test_browsing_leaves_the_store_bytes_unchanged(store_path):
    Store(store_path).engine.dispose()
    files = {p: digest(p) for p in store_path.parent.glob("r.db*") if p.stat().st_size}
    c = client(store_path)
    for path in ("/", "/api/overview", "/api/experiment/tiny", "/download/tiny/md", "/download/tiny/html",
                 "/download/tiny/csv", "/api/compare?a=tiny&b=tiny"):
        c.get(path)
    trial = page(c, "tiny")["trials"]["rows"][0]["trial_id"]
    c.get(f"/log/tiny/{trial}")
    c.app  # noqa: B018
    assert {p: digest(p) for p in files} == files


def test_the_read_only_store_cannot_write(store_path):
    ro = ReadOnlyStore(store_path)
    with pytest.raises(StoreError, match="read-only"):
        ro.save_experiment("x", "{}", None)
    with ro.engine.connect() as conn, pytest.raises(sa.exc.OperationalError, match="readonly"):
        conn.exec_driver_sql("DELETE FROM ablate_trials")


def test_an_old_schema_is_refused_not_migrated(tmp_path):
    db = tmp_path / "old.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE ablate_meta (key TEXT PRIMARY KEY, value TEXT)")
        conn.execute("INSERT INTO ablate_meta VALUES ('schema', 'ablate-store/1')")
    before = digest(db)
    with pytest.raises(StoreError, match="older ablate.*ablate status"):
        ReadOnlyStore(db)
    assert digest(db) == before


def test_token_rule(store_path):
    token = "t" * 20
    c = client(store_path, token=token, hosts=[])
    assert c.get("/").status_code == 401
    assert c.get("/api/overview").status_code == 401
    assert c.get("/api/overview?token=wrong-token-wrong").status_code == 401
    assert c.get("/api/overview", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert c.get("/api/overview", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert c.get("/api/overview", headers={"X-Ablate-Token": token}).status_code == 200
    first = c.get(f"/?token={token}", follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/"
    assert "httponly" in first.headers["set-cookie"].lower() and "samesite=strict" in first.headers["set-cookie"].lower()
    assert c.get("/api/overview").status_code == 200            # the cookie from now on
    c.cookies.clear()
    assert c.get("/api/overview").status_code == 401


def test_loopback_answers_loopback_host_names_only(store_path):
    c = client(store_path)
    assert c.get("/api/overview", headers={"Host": "127.0.0.1:8080"}).status_code == 200
    assert c.get("/api/overview", headers={"Host": "localhost:8080"}).status_code == 200
    assert c.get("/api/overview", headers={"Host": "[::1]:8080"}).status_code == 200
    # a page elsewhere that re-points its name at 127.0.0.1 (DNS rebinding) gets nothing
    assert c.get("/api/overview", headers={"Host": "evil.example"}).status_code == 400


def test_a_non_loopback_bind_gets_a_generated_token(store_path):
    ready = prepare(str(store_path), host="0.0.0.0", port=0)
    try:
        assert ready.token and len(ready.token) >= 16 and ready.url.endswith(f"?token={ready.token}")
        c = TestClient(ready.app, base_url="http://example.lan")
        assert c.get("/api/overview").status_code == 401
        assert c.get(f"/api/overview?token={ready.token}").status_code == 200
    finally:
        ready.sock.close()
        ready.store.close()
    ready = prepare(str(store_path), host="127.0.0.1", port=0)
    ready.sock.close()
    assert ready.token is None and ready.loopback


def test_an_empty_store_serves_an_empty_list(tmp_path):
    Store(tmp_path / "e.db", create=True)
    d = client(tmp_path / "e.db").get("/api/overview").json()
    assert d["experiments"] == []


def _serve_error(capsys, *args) -> str:
    assert main(["serve", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def test_bad_inputs_exit_2_with_one_line(tmp_path, capsys):
    Store(tmp_path / "ok.db", create=True)
    ok = str(tmp_path / "ok.db")
    assert "does not exist" in _serve_error(capsys, "--store", str(tmp_path / "none.db"))
    assert not (tmp_path / "none.db").exists()
    assert "cannot use store" in _serve_error(capsys, "--store", "foo://bar")
    (tmp_path / "text.db").write_text("hello")
    assert "not an ablate database" in _serve_error(capsys, "--store", str(tmp_path / "text.db"))
    with sqlite3.connect(tmp_path / "other.db") as conn:
        conn.execute("CREATE TABLE things (x)")
    assert "not an ablate database" in _serve_error(capsys, "--store", str(tmp_path / "other.db"))
    with sqlite3.connect(tmp_path / "blank.db") as conn:
        conn.execute("PRAGMA user_version=1")
    assert "empty (no ablate tables)" in _serve_error(capsys, "--store", str(tmp_path / "blank.db"))
    assert "--port must be in 0..65535" in _serve_error(capsys, "--store", ok, "--port", "70000")
    assert "--port must be in 0..65535" in _serve_error(capsys, "--store", ok, "--port", "-1")
    assert "neither an IP address nor a name" in _serve_error(capsys, "--store", ok, "--host", "no such host!")
    assert "--host is empty" in _serve_error(capsys, "--store", ok, "--host", "")
    assert "--token must be 16 to 200" in _serve_error(capsys, "--store", ok, "--token", "short")
    assert "with ' '" in _serve_error(capsys, "--store", ok, "--token", "a token with spaces in it")
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        port = str(busy.getsockname()[1])
        assert "port is in use" in _serve_error(capsys, "--store", ok, "--port", port)
    finally:
        busy.close()


def test_pages_values_are_json_clean(store_path):
    # NaN (a missing std, a missing metric) reaches the page as null, never as NaN (invalid JSON)
    c = client(store_path)
    page(c, "tiny")
    text = c.get("/api/experiment/tiny").text
    assert "NaN" not in text and "Infinity" not in text
    json.loads(text)
    assert np.isnan(float("nan"))


def test_a_postgresql_store_is_served_read_only(pg_url):
    spec = cumulative_spec()
    from ablate.design.plan import plan

    store = Store(pg_url, create=True)
    p = plan(spec)
    store.save_experiment(spec.name, json.dumps(spec_to_dict(spec)), None)
    store.add_trials(spec.name, list(p.trials))
    for t in p.trials:
        store.start_trial(spec.name, t.id, {})
        store.add_epoch(spec.name, t.id, {"epoch": 1, "val_acc": VALS[t.arm, t.seed] - 5})
        store.finish_trial(spec.name, t.id, "complete", metrics={"val_acc": VALS[t.arm, t.seed], "test_acc": 90.0})
    ro = ReadOnlyStore(pg_url)
    c = TestClient(build_app(ro, allowed_hosts=["127.0.0.1"]), base_url=LOCAL)
    d = page(c, "tiny")
    assert d["lift"]["rows"] == render.lift_rows(build_report(store, "tiny").lift)[1]
    etag = c.get("/api/experiment/tiny").headers["etag"]
    assert c.get("/api/experiment/tiny", headers={"If-None-Match": etag}).status_code == 304
    store.add_epoch(spec.name, p.trials[0].id, {"epoch": 2, "val_acc": 1.0})
    assert ro.stamp() not in etag                                   # a commit moves the stamp
    with ro.engine.connect() as conn, pytest.raises((sa.exc.DBAPIError, StoreError), match="read-only"):
        conn.exec_driver_sql("DELETE FROM ablate_trials")
    ro.close()
