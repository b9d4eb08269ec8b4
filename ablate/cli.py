"""The `ablate` command: a thin shell over library calls. Exit codes: 0 ok, 2 bad input,
130 interrupted (nothing finished is lost; the next `ablate run` completes the rest)."""

from __future__ import annotations

import argparse
import errno
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ablate import __version__
from ablate.errors import AblateError, StoreError
from ablate.preflight import check_device, check_spec_change, prepare_store_path
from ablate.report import DEFAULT_COLUMNS, EXTRA_COLUMNS, FORMATS


def default_store() -> str:
    """`--store` when not given: $ABLATE_STORE, else ablate.db (read when the command runs)."""
    return os.environ.get("ABLATE_STORE") or "ablate.db"


def _fmt_s(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    m, s = divmod(seconds, 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m"


class ConsoleProgress:
    """Trial i/N, epoch, metric and ETA. Rewrites one line per trial on a terminal; prints one
    line per finished trial otherwise (logs stay readable)."""

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty()
        self.durations: list[float] = []
        self.t0 = 0.0
        self.index = self.total = 0

    def _eta(self, extra_fraction: float = 0.0) -> str:
        if not self.durations:
            return "ETA ?"
        mean = sum(self.durations) / len(self.durations)
        left = (self.total - self.index + 1 - extra_fraction) * mean
        return f"ETA {_fmt_s(left)}"

    def trial_started(self, index, total, trial):
        self.index, self.total, self.t0 = index, total, time.perf_counter()
        if self.tty:
            self.stream.write(f"\r[{index}/{total}] {trial.label} (seed {trial.seed})  starting...\033[K")
            self.stream.flush()

    def epoch(self, trial, metrics):
        if not self.tty:
            return
        if trial.recipe is None:   # a command trial: its epochs and metrics are its own
            self.stream.write(f"\r[{self.index}/{self.total}] {trial.label} (seed {trial.seed})  epoch "
                              f"{metrics['epoch']}  {self._eta()}\033[K")
            self.stream.flush()
            return
        frac = metrics["epoch"] / trial.recipe.epochs
        self.stream.write(f"\r[{self.index}/{self.total}] {trial.label} (seed {trial.seed})  epoch "
                          f"{metrics['epoch']}/{trial.recipe.epochs}  val_acc {metrics['val_acc']:.2f}%  "
                          f"{metrics['images_per_s']:,.0f} img/s  {self._eta(frac)}\033[K")
        self.stream.flush()

    def trial_finished(self, trial, status, metrics, error):
        took = time.perf_counter() - self.t0
        self.durations.append(took)
        if status == "complete" and "val_acc" in metrics and "test_acc" in metrics:
            detail = f"val {metrics['val_acc']:.2f}%  test {metrics['test_acc']:.2f}%"
        elif status == "complete":
            detail = "  ".join(f"{k} {v:.4g}" for k, v in list(metrics.items())[:4] if isinstance(v, (int, float)))
        else:
            detail = f"{status.upper()}: {(error or '').strip().splitlines()[0][:120] if error else ''}"
        line = (f"[{self.index}/{self.total}] {trial.label} (seed {trial.seed})  {detail}  "
                f"({_fmt_s(took)}, {self._eta(1.0) if self.index < self.total else 'done'})")
        self.stream.write(("\r" + line + "\033[K\n") if self.tty else line + "\n")
        self.stream.flush()


# -- commands ---------------------------------------------------------------------------------

def cmd_tricks(args) -> int:
    from ablate.tricks import all_tricks

    tricks = all_tricks()
    if args.name:
        from ablate.tricks import get_trick

        try:
            tricks = {n: get_trick(n) for n in args.name}
        except KeyError as exc:
            raise AblateError(str(exc.args[0])) from None
    width = max(len(n) for n in tricks)
    for name, t in tricks.items():
        slot = f"  [one {t.slot} per arm]" if t.slot else ""
        print(f"{name:<{width}}  {t.code:<5} {t.title}  ({t.kind}){slot}")
        print(f"{'':<{width}}        paper: {t.paper}")
        for p in t.describe_params():
            rng = f" in {p['range']}" if p["range"] else ""
            helptext = f" -- {p['help']}" if p["help"] else ""
            print(f"{'':<{width}}        {p['name']}: {p['type']} = {p['default']!r}{rng}{helptext}")
    return 0


def cmd_models(args) -> int:
    from ablate.models.catalog import model_rows

    def millions(n):
        return f"{n / 1e6:.2f}M" if n is not None else "-"

    rows = model_rows()
    width = max(len(r["model"]) for r in rows)
    print(f"{'model':<{width}}  {'#P digits':>9}  {'#P CIFAR':>9}  timm  paper")
    for r in rows:
        print(f"{r['model']:<{width}}  {millions(r['digits_params']):>9}  {millions(r['cifar_params']):>9}  "
              f"{'yes' if r['needs_timm'] else 'no':<4}  {r['paper']}")
    print("torchvision: any torchvision.models.list_models() name as {name: torchvision, arch: NAME}; "
          "timm: any timm.list_models() name as {name: timm, arch: NAME} (pip install 'ablate[timm]'); "
          "weights: PATH or cache (never downloaded)")
    return 0


def _load_spec(args, *, check_files: bool = True):
    """(spec, notes): a spec file or an NNI config (converted; notes say how), with the command
    line's --override and --shrink applied."""
    from ablate.nni import load_spec_or_nni
    from ablate.shrink import load_run_spec

    notes: list[str] = []

    def load(path, *, check_files: bool = True):
        spec, said = load_spec_or_nni(path, check_files=check_files)
        notes.extend(said)
        return spec

    spec = load_run_spec(args.spec, overrides=args.override, shrink=args.shrink, check_files=check_files,
                         load=load)
    return spec, notes



def cmd_lr_find(args) -> int:
    """The LR range test on the spec's first trial: CSV + HTML figure, suggested lrs printed."""
    from ablate.lrfind import check_range, lr_range_test, write_lr_find
    from ablate.plan import plan
    from ablate.spec import load_spec

    check_range(args.start, args.end, args.steps)   # bad input: exit 2, nothing written
    spec = load_spec(args.spec)
    if spec.trial is not None:
        raise AblateError(f"spec '{spec.name}' runs a command ('trial:'), which ablate cannot sweep the lr of; "
                          f"lr-find needs a spec with model, data and recipe")
    check_device(args.device)
    trial = plan(spec).trials[0]
    print(f"lr range test of '{spec.name}', arm {trial.arm} ({trial.label}), seed {trial.seed}: "
          f"{args.steps} batches, lr {args.start:g} -> {args.end:g}")
    result = lr_range_test(trial, start=args.start, end=args.end, steps=args.steps, device=args.device)
    out = Path(args.out) if args.out else Path("reports") / spec.name
    csv_path, html_path = write_lr_find(result, out)
    if result.stopped_early:
        print(f"stopped after {len(result.lrs)} batches: the smoothed loss passed 4x its best "
              f"at lr {result.lrs[-1]:.3g}")
    print(f"suggested lr: {result.steepest_lr:.3g} (steepest descent of the smoothed loss); "
          f"{result.min_over_10_lr:.3g} (min/10: a tenth of the lr at its minimum)")
    print(f"wrote {csv_path} and {html_path}")
    return 0


def cmd_plan(args) -> int:
    from ablate.plan import plan

    # without the estimate nothing reads the data, so a spec for data on another machine plans
    spec, notes = _load_spec(args, check_files=not args.no_estimate)
    _print_nni_notes(notes)
    p = plan(spec)
    print(p.describe())
    if spec.search is not None:
        from ablate.search.progress import search_plan

        print(search_plan(p))
        return 0
    if spec.trial is not None and not args.no_estimate:
        print("\n(no estimate: the trials run your command; time one run of it to estimate the cost)")
    elif not args.no_estimate:
        from ablate.data import load_data
        from ablate.models import model_info
        from ablate.train import measure_throughput, pick_device

        data = load_data(spec.data)
        sizes = data.sizes()
        t = p.trials[0]
        ips, n_params = measure_throughput(t)
        per_trial = spec.recipe.epochs * (sizes["train"] + 0.3 * (sizes["val"])) / ips
        print("")
        print(f"data: {spec.data.name}, {data.channels}x{data.image_size}x{data.image_size}, "
              f"{data.num_classes} classes, {sizes['train']} train / {sizes['val']} val / {sizes['test']} test images")
        print(f"model: {model_info(spec.model).label}, {n_params / 1e6:.3f}M parameters (baseline)")
        print(f"cost: {len(p.trials)} trials x {spec.recipe.epochs} epochs x {sizes['train']} images = "
              f"{len(p.trials) * spec.recipe.epochs * sizes['train']:,} training images")
        print(f"estimate on {pick_device()}: ~{_fmt_s(per_trial)} per trial, ~{_fmt_s(per_trial * len(p.trials))} "
              f"in all (measured {ips:,.0f} img/s on the baseline; tricks such as SAM or policies cost more)")
    return 0


def _open_store(target: str, *, create: bool):
    # a store is named by store.label in what the CLI prints: a URL's password is never shown
    from ablate.store import Store

    return Store(target, create=create)


def _check_teachers(spec, store_target) -> None:
    """Distillation teachers named by trial exist in the store's weights folder (before the store is opened)."""
    from ablate.models.weights import weights_root_for
    from ablate.plan import plan
    from ablate.tricks.distill import check_trial_teachers

    if any(t.use == "distill" for t in spec.tricks.values()):
        check_trial_teachers(plan(spec).trials, weights_root_for(store_target))


def cmd_run(args) -> int:
    from ablate.data import load_data
    from ablate.report import build_report, write_report
    from ablate.run.experiment import run_experiment
    from ablate.spec import resolve_spec_path

    # Everything is checked before the store is touched: options, spec, device, data.
    for option in ("epochs", "seeds", "jobs"):
        value = getattr(args, option)
        if value is not None and value < 1:
            raise AblateError(f"--{option} must be >= 1, got {value}")
    spec, notes = _load_spec(args)
    _print_nni_notes(notes)
    if args.epochs or args.seeds:
        changes = {}
        if args.epochs:
            changes["recipe"] = {"epochs": args.epochs}
        if args.seeds:
            changes["seeds"] = args.seeds
        spec = spec.with_changes(**changes)
    source = str(resolve_spec_path(args.spec))
    from ablate.run.experiment import executor_for

    check_device(args.device)
    if spec.trial is None:
        load_data(spec.data)   # the first trial's data: a broken file fails here, not in trial 1
        _check_teachers(spec, args.store)
    jobs = args.jobs or (spec.search.jobs if spec.search is not None else 1)
    from ablate.models.weights import weights_root_for

    executor = executor_for(spec, device=args.device, source=source, jobs=jobs, fuse=args.fuse, runner=args.runner,
                            address=args.address, weights_root=weights_root_for(args.store))
    executor.check(())   # a bad command, an unreachable Ray cluster: exit 2, no store written
    new_store = prepare_store_path(args.store)
    try:
        store = _open_store(args.store, create=True)
    except OSError as exc:
        from ablate.store_engine import display_name

        raise StoreError(f"cannot create store '{display_name(args.store)}': {exc}") from None
    replaced = check_spec_change(store, spec, replace=args.replace)
    print(f"ablate {__version__}: running '{spec.name}' into {store.label}" + (f"; {new_store}" if new_store else ""))
    if replaced:
        print(replaced)
    progress = ConsoleProgress()
    start = time.perf_counter()
    try:
        p, summary = run_experiment(spec, store, source=source, progress=progress, device=args.device,
                                    jobs=jobs, executor=executor)
    except KeyboardInterrupt:
        print(f"\ninterrupted after {_fmt_s(time.perf_counter() - start)}: finished trials are kept in "
              f"{store.label}; run the same command again to finish the rest.", file=sys.stderr)
        return 130
    # the run time belongs to the summary line, not to the last note under it
    first, *notes = summary.describe().split("\n")
    print("\n".join([f"{first} ({_fmt_s(time.perf_counter() - start)})", *notes]))
    if args.no_report:
        return 0
    if spec.search is not None:
        from ablate.search.report import build_search_report, write_search_report as write_report

        report = build_search_report(store, p)
    else:
        report = build_report(store, spec.name)
    print("")
    print(report.markdown())
    out = Path(args.out) if args.out else Path("reports") / spec.name
    paths = write_report(report, out, tuple(args.format))
    print("wrote " + ", ".join(str(x) for x in paths))
    return 0


def _print_nni_notes(notes: list[str]) -> None:
    for line in notes:
        print(f"nni: {line}")
    if notes:
        print("")


def cmd_import_nni(args) -> int:
    from ablate.nni import check_converted, convert_config, spec_yaml

    conversion = convert_config(args.config)
    check_converted(conversion)
    if args.out is None:
        print(spec_yaml(conversion, f"{conversion.spec['name']}.yaml"), end="")
        return 0
    out = Path(args.out)
    if out.resolve() == Path(args.config).resolve():
        raise AblateError(f"-o {args.out} is the NNI config itself; give another file name")
    text = spec_yaml(conversion, args.out)
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise AblateError(f"cannot write {args.out}: {exc}") from None
    _print_nni_notes(conversion.notes)
    print(f"wrote {args.out}; run it with: ablate run {args.out}")
    return 0


def cmd_status(args) -> int:
    store = _open_store(args.store, create=False)
    counts = store.status_counts()
    names = args.experiment or list(counts)
    if not names:
        print(f"no experiments in {store.label}")
        return 0
    for name in names:
        if name not in counts:
            from ablate.report.frames import load_experiment

            load_experiment(store, name)   # raises with the list of experiments
        from ablate.report.frames import load_experiment, outcomes, trial_table

        # counts of the current spec's trials; trials of earlier versions of the spec apart
        p = load_experiment(store, name)
        if p.spec.search is not None:
            from ablate.search.progress import search_status

            print(search_status(store, p))
            continue
        frame = store.trials_frame(name)
        current = outcomes(p, frame)
        c = current["status"].value_counts().to_dict()
        parts = ", ".join(f"{n} {s}" for s, n in sorted(c.items())) or "no trials"
        old = len(frame) - len(current)
        older = f"; {old} more from earlier versions of its spec, not reported" if old else ""
        print(f"{name}: {len(current)} trials ({parts}){older}")
        if args.experiment:
            t = trial_table(current)
            planned = len(p.trials)
            print(f"  plan: {len(p.arms)} arms x {len(p.seeds)} seeds = {planned} trials")
            for r in t.itertuples():
                val = f"val {r.val_acc:.2f}%" if r.status == "complete" else ""
                err = f"  {r.error[:100]}" if r.error else ""
                print(f"  arm {r.arm:>3}  seed {r.seed:>3}  {r.status:<9} {val:<12} {r.label}{err}")
    return 0


def cmd_report(args) -> int:
    from ablate.report import build_report, write_report

    store = _open_store(args.store, create=False)
    if args.compare:
        from ablate.report.compare import compare_markdown, write_compare

        reports = [build_report(store, n, confidence=args.confidence, test=args.test, columns=args.columns,
                                   diverged=args.diverged)
                   for n in args.experiment]
        print(compare_markdown(reports))
        out = Path(args.out) if args.out else Path("reports") / "_vs_".join(args.experiment)
        paths = write_compare(reports, out, tuple(args.format))
        print("wrote " + ", ".join(str(x) for x in paths))
        return 0
    for name in args.experiment:
        from ablate.report.frames import load_experiment

        p = load_experiment(store, name)
        if p.spec.search is not None:
            from ablate.search.report import build_search_report, write_search_report

            report, write = build_search_report(store, p, confidence=args.confidence), write_search_report
        else:
            report = build_report(store, name, confidence=args.confidence, test=args.test, columns=args.columns,
                                  diverged=args.diverged)
            write = write_report
        out = Path(args.out) if args.out else Path("reports") / name
        if len(args.experiment) > 1 and args.out:
            out = out / name
        if "md" in args.format or not args.out:
            print(report.markdown())
        paths = write(report, out, tuple(args.format))
        print("wrote " + ", ".join(str(x) for x in paths))
    return 0


def cmd_serve(args) -> int:
    from ablate.serve import serve

    return serve(args.store, host=args.host, port=args.port, token=args.token)


def _comma_list(what: str, allowed) -> Callable[[str], list[str]]:
    """An argparse type for 'a,b,c' whose items must be in `allowed`."""

    def parse(text: str) -> list[str]:
        out = [c.strip() for c in text.split(",") if c.strip()]
        bad = [c for c in out if c not in allowed]
        if bad:
            raise argparse.ArgumentTypeError(f"unknown {what} {', '.join(bad)}; allowed: {', '.join(allowed)}")
        return out

    return parse


def _spec_edits(p: argparse.ArgumentParser) -> None:
    """--override and --shrink (ablate/shrink.py), shared by plan and run."""
    p.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                   help="change one field of the spec: recipe.epochs=1, tricks.mixup.alpha=0.4, data=digits "
                        "(a dotted path and a YAML value; repeatable, applied in order)")
    p.add_argument("--shrink", action="store_true",
                   help="toy scale on the CPU, as experiment '<name>-shrunk': 1 epoch, 1 seed, 64 training "
                        "images (digits for data on disk), the smallest depth/width the model allows")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ablate", description="Which training tricks really help your image classifier, "
                                   "by how much, and how sure we are.")
    parser.add_argument("--version", action="version", version=f"ablate {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("tricks", help="list the registered tricks, their codes, parameters and papers")
    p.add_argument("name", nargs="*", help="only these tricks")
    p.set_defaults(func=cmd_tricks)

    p = sub.add_parser("models", help="list the model families and archs, their parameters and papers")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("lr-find", help="LR range test (Smith): loss against an exponential lr sweep, "
                                       "figure and suggested lr, on the spec's model, data, recipe and arm 0")
    p.add_argument("spec", help="a YAML file, or the name of one in search_spaces/ (e.g. quickstart)")
    p.add_argument("--start", type=float, default=1e-7, help="first lr (default: 1e-7)")
    p.add_argument("--end", type=float, default=10.0, help="last lr (default: 10)")
    p.add_argument("--steps", type=int, default=100, help="mini-batches, one per lr (default: 100)")
    p.add_argument("-o", "--out", help="folder for lr_find.csv and lr_find.html (default: reports/<experiment>)")
    p.add_argument("--device", help="cpu, cuda, cuda:N or mps (default: cuda if available, else cpu)")
    p.set_defaults(func=cmd_lr_find)

    p = sub.add_parser("plan", help="show the arms and trials of a spec and estimate the cost; runs nothing")
    p.add_argument("spec", help="a YAML file, or the name of one in search_spaces/ (e.g. quickstart)")
    p.add_argument("--no-estimate", action="store_true",
                   help="skip the timing steps (and the data-file check: plan a spec whose data is elsewhere)")
    _spec_edits(p)
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("run", help="run a spec's trials (resuming), then print and write the lift table")
    p.add_argument("spec", help="a YAML file, or the name of one in search_spaces/ (e.g. quickstart)")
    p.add_argument("--store", default=None, help="SQLite path or SQLAlchemy URL (default: $ABLATE_STORE, else ablate.db)")
    p.add_argument("--out", help="report folder (default: reports/<experiment>)")
    p.add_argument("--format", type=_comma_list("format", FORMATS), default=["md", "csv"], help="comma-separated: md,csv,json,html,latex")
    p.add_argument("--device", help="cpu, cuda, cuda:N or mps, checked before anything runs "
                                   "(default: cuda if available, else cpu)")
    p.add_argument("--epochs", type=int, help="override recipe.epochs (a different experiment config)")
    p.add_argument("--seeds", type=int, help="override the number of seeds")
    p.add_argument("--jobs", type=int, help="trials run at once in this process (threads sharing the "
                                            "cores; default: 1)")
    p.add_argument("--fuse", choices=["auto", "on", "off"],
                   help="train trials of one shape as one fused model: auto (on CUDA), on, off "
                        "(default: the spec's fuse, auto)")
    p.add_argument("--runner", choices=("local", "ray"), default="local",
                   help="local: in this process (default); ray: as Ray Tune trials (resources, early_stop "
                        "and retries from the spec; --jobs caps trials at once)")
    p.add_argument("--address", help="with --runner ray: join the Ray cluster at host:port (default: start "
                                     "Ray in this process)")
    p.add_argument("--no-report", action="store_true", help="do not print or write the report")
    p.add_argument("--replace", action="store_true",
                   help="delete the stored trials of this experiment first (needed to reuse a name for "
                        "another design kind, data, model or recipe)")
    _spec_edits(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("import-nni", help="convert an NNI experiment config (v2 or v1) into an ablate spec")
    p.add_argument("config", help="the NNI config YAML (ablate run/plan also take it directly)")
    p.add_argument("-o", "--out", help="write the spec here (default: print it)")
    p.set_defaults(func=cmd_import_nni)

    p = sub.add_parser("status", help="trial counts per experiment, or every trial of the named ones")
    p.add_argument("experiment", nargs="*")
    p.add_argument("--store", default=None, help="default: $ABLATE_STORE, else ablate.db")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("report", help="lift tables (and effects, figures) of stored experiments")
    p.add_argument("experiment", nargs="+")
    p.add_argument("--store", default=None, help="default: $ABLATE_STORE, else ablate.db")
    p.add_argument("--format", type=_comma_list("format", FORMATS), default=["md", "csv"], help="comma-separated: md,csv,json,html,latex")
    p.add_argument("--out", help="folder (default: reports/<experiment>)")
    p.add_argument("--compare", action="store_true", help="put the experiments side by side")
    # the choices are ablate.stats.TESTS, spelled out: importing stats (scipy) would slow every command
    p.add_argument("--test", choices=["t", "wilcoxon", "permutation"], default="t",
                   help="paired test: t, wilcoxon (signed-rank) or permutation (exact sign-flip); default: t")
    p.add_argument("--diverged", choices=["worst", "exclude"], default="worst",
                   help="a diverged seed scores the metric's worst value (chance; default) or is left out "
                        "of the paired analysis (biased in the trick's favour; the arm is flagged)")
    p.add_argument("--confidence", type=float, default=0.95, help="CI level (default: 0.95)")
    p.add_argument("--columns", type=_comma_list("column", EXTRA_COLUMNS), default=list(DEFAULT_COLUMNS),
                   help="optional lift-table columns: params,gflops,memory,time,top5 (default: params,time)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("serve", help="a live, read-only dashboard of a store in the browser (pip install "
                                     "'ablate[serve]')")
    p.add_argument("--store", default=None, help="default: $ABLATE_STORE, else ablate.db")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: 127.0.0.1, this machine only; any other needs a token)")
    p.add_argument("--port", type=int, default=8080, help="default: 8080; 0 picks a free port")
    p.add_argument("--token", help="the token every request must carry (default: generated and printed once "
                                   "when --host is not loopback)")
    p.set_defaults(func=cmd_serve)
    return parser


class PipeSafeStdout:
    """stdout that stops quietly when its reader goes away (`ablate status | head`), like Unix
    tools: later output goes to /dev/null and the command (a run included) carries on."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self.closed_pipe = False

    def _closed(self) -> None:
        self.closed_pipe = True
        try:   # so the interpreter's own flush at exit does not fail again
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):
            pass

    def write(self, text: str) -> int:
        if not self.closed_pipe:
            try:
                return self.stream.write(text)
            except (BrokenPipeError, OSError) as exc:
                if isinstance(exc, BrokenPipeError) or exc.errno == errno.EPIPE:
                    self._closed()
                else:
                    raise
        return len(text)

    def flush(self) -> None:
        if not self.closed_pipe:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self._closed()

    def isatty(self) -> bool:
        return not self.closed_pipe and self.stream.isatty()

    def __getattr__(self, name):
        return getattr(self.stream, name)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if hasattr(args, "store") and args.store is None:
        args.store = default_store()
    if getattr(args, "confidence", 0.5) is not None and not 0 < getattr(args, "confidence", 0.5) < 1:
        parser.error(f"--confidence must be in (0, 1), got {args.confidence}")

    def on_term(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    stdout = sys.stdout
    sys.stdout = PipeSafeStdout(stdout)
    try:
        return args.func(args)
    except AblateError as exc:
        print(f"ablate: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nablate: interrupted", file=sys.stderr)
        return 130
    finally:
        sys.stdout = stdout
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
