"""The search report's HTML page: the tables (from `ablate.search.frames`) and Optuna's own plotly
figures (optimisation history, parallel coordinates, importances by the default evaluator and by
fANOVA, intermediate values, Pareto front), in one offline file like the lift report."""

from __future__ import annotations

import html
import warnings

from ablate.report.html import figure_html, page_html, table_html


def search_figures(r) -> list[tuple[str, object]]:
    """(title, plotly figure) for each figure the study's data allow."""
    import optuna.visualization as vis
    from optuna.importance import FanovaImportanceEvaluator

    out = []
    for study in r.studies:
        multi = study._is_multi_objective()
        target = {"target": (lambda t: t.values[0]), "target_name": r.finalists[0].metric} if multi else {}
        where = f" ({study.study_name})" if len(r.studies) > 1 else ""
        makers = [
            ("optimisation history", lambda: vis.plot_optimization_history(study, **target)),
            ("parallel coordinates", lambda: vis.plot_parallel_coordinate(study, **target)),
            ("parameter importances (Optuna's default evaluator)", lambda: vis.plot_param_importances(study, **target)),
            ("parameter importances (fANOVA)",
             lambda: vis.plot_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=0), **target)),
        ]
        if not multi:
            makers.append(("intermediate values", lambda: vis.plot_intermediate_values(study)))
        else:
            names = [f"{'max' if d.name == 'MAXIMIZE' else 'min'} metric {i}" for i, d in enumerate(study.directions)]
            makers.append(("Pareto front", lambda: vis.plot_pareto_front(study, target_names=names)))
        for title, make in makers:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    fig = make()
            except (ValueError, RuntimeError, ZeroDivisionError):
                continue        # too few complete trials for this figure
            fig.update_layout(title=f"{title}{where}")
            out.append((title + where, fig))
    return out


def search_html(r) -> str:
    from ablate.search.report import _ci, _lift_text, _values_text

    body = [f"<h1>{html.escape(r.name)}: search</h1>"]
    for f in r.finalists:
        body.append(f"<h2>Finalists over seeds ({html.escape(f.metric)})</h2>")
        rows = [[str(x["config"]), _values_text(x["values"]),
                 "—" if x.get("search_value") is None or x["search_value"] != x["search_value"] else f"{x['search_value']:.2f}",
                 _ci(x["mean"], x["ci_low"], x["ci_high"]), str(x["n"]), "winner" if x.get("winner") is True else ""]
                for x in f.table.to_dict("records")]
        body.append(table_html(["config", "values", "search (1 seed)", "mean [95% CI]", "n", ""], rows,
                               text_columns=(0, 1, 5)))
        if f.lift is not None:
            body.append(f"<p>Winner over the runner-up: {html.escape(_lift_text(f.lift))}</p>")
        if f.compare is not None:
            body.append(f"<p>Searched over hand-picked: {html.escape(_lift_text(f.compare))}</p>")
    for title, fig in search_figures(r):
        body.append(f"<h2>{html.escape(title)}</h2>")
        body.append(figure_html(fig))
    return page_html(f"{r.name}: search", body)
