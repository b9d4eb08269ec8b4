"""`ablate status` for a search: trials done of n_trials, pruned, failed, running, and the best
so far with its values (read from the study, so it works while the search runs)."""

from __future__ import annotations


def search_status(store, p) -> str:
    from ablate.search.frames import history
    from ablate.search.runner import searched_arms, study_name
    from ablate.search.space import search_metrics

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
    val = trials[trials["reason"].str.startswith("validation")]
    if len(val):
        vc = val["status"].value_counts().to_dict()
        lines.append(f"  validation round: {len(val)} trials (" + ", ".join(f"{n} {k}" for k, n in sorted(vc.items())) + ")")
    return "\n".join(lines)


def search_plan(p) -> str:
    """What `ablate plan` says about a search: the space, the budget, what follows."""
    from ablate.search.runner import searched_arms, study_name
    from ablate.search.space import search_metrics

    spec = p.spec
    s = spec.search
    budget = " and ".join(x for x in (f"{s.n_trials} trials" if s.n_trials else "",
                                      f"{s.timeout_s:g} s" if s.timeout_s else "") if x)
    arms = searched_arms(p)
    lines = ["", f"search: {s.sampler.name} sampler (seed {s.sampler.seed}), pruner {s.pruner.name}, "
                 f"{budget} per study, {s.jobs} at once, on seed {spec.seeds.values[0]}; "
                 + " and ".join(f"{m.direction} {m.name}" for m in search_metrics(spec)),
             f"studies: {', '.join(study_name(spec, a if s.per_arm else None) for a in arms)}", "parameters:"]
    lines += [f"  {path}: {d.model_dump(exclude_none=True)}" for path, d in s.params.items()]
    k = s.validate.top_k if s.validate else (1 if s.per_arm or s.compare_to else 0)
    if k:
        lines.append(f"then: the top {k} configuration(s) of each study re-run over seeds {list(spec.seeds.values)} "
                     f"(paired; the winner is the best seed mean)")
    if s.compare_to:
        lines.append(f"and the hand-picked values {dict(s.compare_to)} on the same seeds")
    if s.per_arm:
        lines.append("each arm's winner makes the lift table")
    return "\n".join(lines)


def _load(store, name: str):
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
