"""`ablate serve` at scale: server time of the experiment page and of an update poll.

A synthetic store of 20,480 trials (a 2^10 full factorial x 20 seeds, as report_scale.py) x 20
epochs each, seven metrics per epoch (2.87 million epoch-metric rows, as the in-process trainer
writes them), filled in bulk through SQLAlchemy core (`report_scale.fill`, no training). Then,
through the app itself (Starlette's TestClient, in process), the median of several requests:

- the experiment page the first time (nothing cached): answered after at most half a second
  with the running trials, the lift table, verdict, effects, figures and trial table following
  from a background build (its time is the second row);
- the experiment page after an epoch was written (what a live poll costs while trials train:
  the running trials are read again, the results, which an epoch does not change, are not);
- the experiment page after a trial finished: answered at once with the last results while
  they are rebuilt in the background (the rebuild's time is how long the new lift table takes
  to appear);
- an update poll of an unchanged store (If-None-Match: 304);
- the experiments list.

Targets: the page < 1 s, a poll < 100 ms.

    python benchmarks/serve_scale.py
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from starlette.testclient import TestClient  # noqa: E402

from ablate.design.plan import plan  # noqa: E402
from ablate.serve.app import build_app  # noqa: E402
from ablate.serve.readonly import ReadOnlyStore  # noqa: E402
from ablate.design.spec import spec_to_dict  # noqa: E402
from ablate.store import Store  # noqa: E402
from benchmarks.report_scale import fill, spec  # noqa: E402

HOSTS = ["127.0.0.1"]


def timed(get, n: int) -> float:
    """Median seconds of `n` calls of `get` (each must answer as it should)."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        get()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "serve.db"
        store = Store(path, create=True)
        s = spec(10, 20)
        p = plan(s)
        store.save_experiment(s.name, json.dumps(spec_to_dict(s)), None)
        t0 = time.perf_counter()
        fill(store, p, 20)
        print(f"store: {len(p.trials):,} trials x 20 epochs x 7 metrics "
              f"({len(p.trials) * 20 * 7:,} epoch-metric rows), filled in {time.perf_counter() - t0:.1f} s")
        # one trial of a new seed trains: its epochs arrive while the page is watched
        extra = p.spec.with_changes(seeds=list(range(21)))
        live = next(t for t in plan(extra).trials if t.seed == 20)
        store.add_trials(s.name, [live])
        store.start_trial(s.name, live.id, {})
        ro = ReadOnlyStore(path)
        url = f"/api/experiment/{s.name}"

        def new_client():
            return TestClient(build_app(ro, allowed_hosts=HOSTS), base_url="http://127.0.0.1")


        def cold_page():
            """(answered, built): the first request's time, and the time until the results are there."""
            c = new_client()
            t0 = time.perf_counter()
            r = c.get(url)
            answered = time.perf_counter() - t0
            while r.json()["results"] is None:
                time.sleep(0.02)
                r = c.get(url)
            assert r.json()["results"]["lift"] is not None, r.text[:300]
            return answered, time.perf_counter() - t0

        cold_page()                    # imports (scipy, plotly) once, as a server does at its first page
        client = new_client()
        while client.get(url).json()["results"] is None:
            time.sleep(0.02)
        epoch = iter(range(1, 10_000))

        def after_epoch():
            store.add_epoch(s.name, live.id, {"epoch": next(epoch), "val_acc": 50.0})
            t0 = time.perf_counter()
            r = client.get(url)
            took = time.perf_counter() - t0
            assert r.status_code == 200 and r.json()["running"][0]["epoch"] >= 1
            return took

        def after_trial():
            t = p.trials[len(times_trial)]
            store.start_trial(s.name, t.id, {})
            store.finish_trial(s.name, t.id, "complete", metrics={"val_acc": 80.0, "test_acc": 80.0})
            old = client.get(url)
            t0 = time.perf_counter()
            r = client.get(url, headers={"If-None-Match": old.headers["etag"]})
            answered = time.perf_counter() - t0
            while r.status_code == 304 or r.json()["results"] == old.json()["results"]:
                time.sleep(0.02)
                r = client.get(url, headers={"If-None-Match": r.headers["etag"]})
            return answered, client.app.state.views.cache[("results", s.name)].took

        def poll():
            r = client.get(url, headers={"If-None-Match": etag})
            assert r.status_code == 304

        def overview():
            assert new_client().get("/api/overview").status_code == 200

        firsts = [cold_page() for _ in range(3)]
        page_s = statistics.median(a for a, _ in firsts)
        built_s = statistics.median(b for _, b in firsts)
        epoch_s = statistics.median(after_epoch() for _ in range(10))
        times_trial: list[float] = []
        rebuilds = []
        for _ in range(3):
            answered, took = after_trial()
            times_trial.append(answered)
            rebuilds.append(took)
        rebuild_s = statistics.median(rebuilds)
        etag = client.get(url).headers["etag"]
        poll_s = timed(poll, 50)
        overview_s = timed(overview, 5)
        rows = [("experiment page, first open (nothing cached)", page_s, "< 1 s", page_s < 1.0),
                ("  its results there (built in the background)", built_s, "", None),
                ("experiment page after an epoch was written", epoch_s, "< 1 s", epoch_s < 1.0),
                ("experiment page after a trial finished", statistics.median(times_trial), "< 1 s",
                 statistics.median(times_trial) < 1.0),
                ("  its results rebuilt in the background", rebuild_s, "", None),
                ("update poll, store unchanged (304)", poll_s, "< 100 ms", poll_s < 0.1),
                ("experiments list", overview_s, "", None)]
        print(f"\n| {'request':<46} | {'median':>9} | {'target':<8} | met |")
        print(f"|{'-' * 48}|{'-' * 11}|{'-' * 10}|-----|")
        for name, sec, target, ok in rows:
            shown = f"{sec * 1000:.1f} ms" if sec < 1 else f"{sec:.2f} s"
            print(f"| {name:<46} | {shown:>9} | {target:<8} | {'' if ok is None else 'yes' if ok else 'NO':<3} |")
        ro.close()


if __name__ == "__main__":
    main()
