"""The search report's HTML page: the same blocks as the markdown (`ablate.report.search`), Optuna's
own plotly figures per study (optimisation history, parallel coordinates, importances by the
default evaluator and by fANOVA, intermediate values, Pareto front) titled by the arm they tuned,
and every trial with its stage, in one offline file like the lift report."""

from __future__ import annotations

import html
import re
import warnings

from ablate.report.html import figure_html, page_html, table_html, trial_rows


def search_figures(r) -> list[tuple[str, object]]:
    """(title, plotly figure) for each figure the study's data allow."""
    import optuna.visualization as vis
    from optuna.importance import FanovaImportanceEvaluator

    from ablate.search.runner import searched_arms

    out = []
    for arm, study in zip(searched_arms(r.plan), r.studies):
        multi = study._is_multi_objective()
        target = {"target": (lambda t: t.values[0]), "target_name": r.finalists[0].metric} if multi else {}
        where = f" ({r.plan.arms[arm].label})" if len(r.studies) > 1 else ""
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
            fig.update_layout(title=html.escape(f"{title}{where}", quote=False))
            out.append((title + where, fig))
    return out


def _inline(text: str) -> str:
    """Escaped text with the markdown's **bold** as <strong>."""
    return re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", html.escape(text))


def block_html(block: tuple) -> str:
    kind = block[0]
    if kind == "h1":
        return f"<h1>{html.escape(block[1])}</h1>"
    if kind == "h2":
        return f"<h2>{html.escape(block[1])}</h2>"
    if kind == "p":
        return f"<p>{_inline(block[1])}</p>"
    if kind == "table":
        _, header, rows, text_columns = block
        plain = [[c.replace("**", "") for c in row] for row in rows]
        marks = ["sig" if any(c == "**winner**" for c in row) else "" for row in rows]
        return table_html(header, plain, row_classes=marks, text_columns=text_columns)
    items = block[1]
    return "<ul class='notes'>" + "".join(f"<li>{_inline(x)}</li>" for x in items) + "</ul>" if items else ""


def search_html(r, blocks: list[tuple]) -> str:
    """The search report `r` as one HTML page: its `blocks` (`search_blocks`), figures, trials."""
    body = [block_html(b) for b in blocks]
    for title, fig in search_figures(r):
        body.append(f"<h2>{html.escape(title)}</h2>")
        body.append(figure_html(fig))
    if r.trials is not None and len(r.trials):
        th, tr, tc = trial_rows(r.trials)
        body.append("<h2>Trials</h2><p class='muted'>Why: the stage each trial ran for (search: a study trial on "
                    "the search seed; select: a finalist on a selection seed; report: the winner, runner-up or "
                    "hand-picked values on a report seed).</p>"
                    + table_html(th, tr, row_classes=tc, text_columns=(1, 3, 8, 9),
                                 cell_classes={3: "status", 9: "err"}))
    body.append(f"<p class='muted'>Regenerate this page: <code>ablate report {html.escape(r.name)} --format html"
                f"</code> (add <code>--store PATH</code> if the experiment is not in the default store).</p>")
    return page_html(f"ablate: {r.name} (search)", body)
