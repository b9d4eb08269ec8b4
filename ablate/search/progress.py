"""`ablate status` for a search: trials done of n_trials, pruned, failed, running, and the best
so far with its values (read from the study, so it works while the search runs)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from ablate.design.plan import Plan
    from ablate.store import Store


def search_status(store: Store, p: Plan) -> str:
    from ablate.search.frames import history
    from ablate.search.runner import searched_arms, study_name
    from ablate.config.search import search_metrics

    spec = p.spec
    s = spec.search
    metrics = search_metrics(spec)
    lines = []
    for arm in searched_arms(p):
        name = study_name(spec, arm if s.per_arm else None)
        study = _load(store, name)
        if study is None:
            lines.append(f"{spec.name}: search study '{name}' not started")
            continue
        h = history(study)
        counted = h[~h["requeued"]] if len(h) else h
        c = counted["state"].value_counts().to_dict() if len(h) else {}
        done = sum(c.get(k, 0) for k in ("complete", "pruned", "fail"))
        budget = f"{done}/{s.n_trials}" if s.n_trials else f"{done}"
        line = (f"{spec.name}: search '{name}': {budget} trials done ({c.get('complete', 0)} complete, "
                f"{c.get('pruned', 0)} pruned, {c.get('fail', 0)} failed, {c.get('running', 0)} running)")
        best = _best(study, metrics)
        if best is not None:
            value, params = best
            line += f"; best so far {metrics[0].name} {value:.4g}: " + ", ".join(f"{k} = {_fmt(v)}" for k, v in params.items())
        lines.append(line)
    trials = store.trials_frame(spec.name)
    stages = []
    for stage in ("select", "report"):
        rows = trials[trials["reason"].astype(str).str.startswith(f"{stage}:")]
        if len(rows):
            vc = rows["status"].value_counts().to_dict()
            stages.append(f"{stage}: {len(rows)} trials (" + ", ".join(f"{n} {k}" for k, n in sorted(vc.items())) + ")")
    if stages:
        lines.append("  " + "; ".join(stages))
    return "\n".join(lines)


def sampler_text(s) -> str:
    """The sampler in words: its name and whether a rerun samples the same values."""
    seed = (f"seeded {s.sampler.seed}: a rerun samples the same values" if s.sampler.seed is not None
            else "unseeded: each run samples other values")
    return f"{s.sampler.name} sampler ({seed})"


def search_plan(p: Plan) -> tuple[str, int | None]:
    """What `ablate plan` says about a search: the arms, the space, the budget, the seeds and
    trials of each stage; and the most trials the whole experiment runs (None when only a timeout
    bounds the search)."""
    from ablate.search.runner import searched_arms, study_name
    from ablate.config.search import search_metrics
    from ablate.design.stages import stage_seeds, stage_trials

    spec = p.spec
    s = spec.search
    st = stage_seeds(spec)
    arms = searched_arms(p)
    what = (f"each of the {len(p.arms)} arms tuned by its own study" if s.per_arm
            else f"one configuration ({p.arms[0].label})")
    budget = " and ".join(x for x in (f"{s.n_trials} trials" if s.n_trials else "",
                                      f"{s.timeout_s:g} s" if s.timeout_s else "") if x)
    lines = [f"{spec.name}: a search of {len(s.params)} parameter(s) for {what}",
             *(x if s.per_arm else x.replace("  (baseline)", "") for x in p.describe().split("\n")[1:]), "",
             f"search: {sampler_text(s)}, pruner {s.pruner.name}, {budget} per study, {s.jobs} at once; "
             + " and ".join(f"{m.direction} {m.name}" for m in search_metrics(spec)),
             f"studies: {', '.join(study_name(spec, a if s.per_arm else None) for a in arms)}", "parameters:"]
    lines += [f"  {path}: {d.model_dump(exclude_none=True)}" for path, d in s.params.items()]
    n = stage_trials(spec, len(p.arms))
    per = f" per study x {len(arms)} studies" if len(arms) > 1 else ""
    searched = (f"{n['search']} trials" if s.n_trials else f"as many trials as {s.timeout_s:g} s allow") + (
        f" ({s.n_trials}{per})" if s.n_trials and len(arms) > 1 else "")
    lines += ["stages (the spec's seeds, in order):",
              f"  search  seed {_seeds(st.search)}: {searched}, each sampled configuration once "
              f"(a pruned trial stops early)"]
    if st.validates:
        if st.select and st.top_k > 1:
            lines.append(f"  select  seeds {_seeds(st.select)}: {n['select']} trials, the top {st.top_k} "
                         f"configurations{per and ' of each study'} x {len(st.select)} seeds; the best mean is "
                         f"the winner, the next the runner-up")
        who = ["winner"] + (["runner-up"] if st.top_k > 1 else []) + (["hand-picked values"] if s.compare_to else [])
        lines.append(f"  report  seeds {_seeds(st.report)}: {n['report']} trials, the {', '.join(who)}"
                     f"{per and ' of each study'} x {len(st.report)} seeds (paired); every mean, CI, lift and p "
                     f"of the report comes from these, which chose nothing")
        if s.compare_to:
            lines.append(f"  hand-picked values: {dict(s.compare_to)}")
        if s.per_arm:
            lines.append("  each arm's winner makes the lift table, on the report seeds")
    total = sum(n.values()) if s.n_trials else None
    lines.append(f"total: at most {total} trials" if total is not None else
                 f"total: the search's trials (unknown before it runs) + {n['select'] + n['report']} after it")
    return "\n".join(lines), total


def _seeds(seeds) -> str:
    seeds = list(seeds)
    if len(seeds) > 3 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}-{seeds[-1]}"
    return ", ".join(map(str, seeds))


def _load(store: Store, name: str):
    import optuna

    from ablate.search.study import storage_for

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return optuna.load_study(study_name=name, storage=storage_for(store))
    except KeyError:
        return None


def _best(study, metrics):
    from optuna.trial import TrialState

    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not done:
        return None
    pick = max if metrics[0].direction == "max" else min
    t = pick(done, key=lambda t: t.values[0])
    return t.values[0], t.params


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
