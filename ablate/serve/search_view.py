"""A search's page: the frames and Optuna figures of `ablate report`, over a study loaded read-only.

`ablate report` opens a search's study with `optuna.create_study(load_if_exists=True)`, which
writes a study that is not there yet; the dashboard loads existing studies only
(`optuna.load_study` on a read-only connection) and says which are not there yet.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import warnings

from sqlalchemy.exc import SQLAlchemyError

from ablate.serve.jsonable import clean, figure_data

if TYPE_CHECKING:  # pragma: no cover
    from ablate.design.plan import Plan
    from ablate.store import Store


def optuna_url(store: Store) -> str:
    """The URL optuna-dashboard (or optuna.load_study) reads the store's studies from."""
    return store.url


def load_studies(store: Store, p: Plan) -> tuple[list, list[str]]:
    """The studies of the searched arms that exist (read-only), and a note per missing one."""
    import optuna

    from ablate.search.runner import searched_arms, study_name

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = f"sqlite:///file:{store.path}?mode=ro&uri=true" if store.is_sqlite else store.url
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            storage = optuna.storages.RDBStorage(url)
    except SQLAlchemyError:        # no Optuna tables yet: creating them is a write, refused here
        return [], ["no Optuna study in the store yet (the search has not started)"]
    except RuntimeError as exc:    # Optuna's tables of another Optuna version
        return [], [f"the store's Optuna study cannot be read by this Optuna: {exc}"]
    studies, notes = [], []
    for arm in searched_arms(p):
        name = study_name(p.spec, arm if p.spec.search.per_arm else None)
        try:
            studies.append(optuna.load_study(study_name=name, storage=storage))
        except KeyError:
            notes.append(f"study '{name}' is not in the store yet")
    return studies, notes


def search_report(store: Store, p: Plan):
    """A `SearchReport` (the object the search writers take) over the studies loaded read-only;
    None while some study is missing."""
    from ablate.search import frames
    from ablate.report.search import SearchReport
    from ablate.search.runner import searched_arms

    studies, notes = load_studies(store, p)
    if notes:
        return None, notes
    trials = store.trials_frame(p.spec.name)
    fins = [frames.finalists(p, trials, s, arm=arm) for s, arm in zip(studies, searched_arms(p))]
    report = SearchReport(p, studies, [frames.history(s) for s in studies], fins, frames.pareto_front(studies[0]),
                          frames.importances(studies[0]))
    return report, []


def search_view(store: Store, p: Plan) -> dict:
    from ablate.report import render
    from ablate.report.search_figures import search_figures
    from ablate.report.search import mean_ci_text, values_text

    report, notes = search_report(store, p)
    dashboard = f"optuna-dashboard '{optuna_url(store)}'" if store.is_sqlite else "optuna-dashboard <store URL>"
    base = {"settings": render.settings_lines(p.spec), "optuna_dashboard": dashboard}
    if report is None:
        return base | {"search": None, "notes": notes, "figures": []}
    finalists = []
    for f in report.finalists:
        rows = [[str(x["config"]), values_text(x["values"]),
                 "—" if x.get("search_value") is None or x["search_value"] != x["search_value"]
                 else f"{x['search_value']:.2f}",
                 mean_ci_text(x["mean"], x["ci_low"], x["ci_high"]), str(x["n"]), "winner" if x.get("winner") is True else ""]
                for x in f.table.to_dict("records")]
        finalists.append({"arm": f.arm, "metric": f.metric, "rows": rows, "notes": f.notes})
    studies = []
    for s, h in zip(report.studies, report.history):
        counts = h["status"].value_counts().to_dict() if len(h) else {}
        studies.append({"study": s.study_name, "trials": len(h), "counts": clean(counts)})
    figures = [{"key": title, "figure": figure_data(fig)} for title, fig in search_figures(report)]
    return base | {"search": {"studies": studies, "finalists": finalists,
                              "finalists_header": ["config", "values", "search (1 seed)", "mean [95% CI]", "n", ""]},
                   "notes": report.notes, "figures": figures}
