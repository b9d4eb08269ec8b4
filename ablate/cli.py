"""The `ablate` command: a thin shell over library calls. Exit codes: 0 ok (for `run`: every
trial of the spec final and none failed), 2 bad input (nothing run or written), 3 trials of the
spec failed after their retries or could not report the metric (`ablate logs` says why; `ablate
run SPEC --retry-failed` runs them again), 130 interrupted (nothing finished is lost; the next
`ablate run` completes the rest)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import argparse
import errno
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from ablate import __version__, api
from ablate.console import fmt_s
from ablate.errors import AblateError, SpecError
from ablate.report import DEFAULT_COLUMNS, EXTRA_COLUMNS, FORMATS

if TYPE_CHECKING:  # pragma: no cover
    from ablate.design.plan import Plan
    from ablate.design.spec import Spec
    from ablate.store import Store

EXIT_BAD_INPUT = 2
EXIT_TRIALS_FAILED = 3     # `run`: trials of the spec failed after their retries, or the metric was not reported
EXIT_INTERRUPTED = 130


default_store = api.default_store   # `--store` when not given (read when the command runs)


# -- commands ---------------------------------------------------------------------------------

def cmd_tricks(args) -> int:
    tricks = api.tricks(args.name)
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
    def millions(n):
        return f"{n / 1e6:.2f}M" if n is not None else "-"

    rows = api.models()
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
    return api.load_spec_and_notes(args.spec, overrides=args.override, shrink=args.shrink, check_files=check_files)


def cmd_lr_find(args) -> int:
    """The LR range test on the spec's first trial: CSV + HTML figure, suggested lrs printed."""
    def announce(trial):
        print(f"lr range test of '{trial.experiment}', arm {trial.arm} ({trial.label}), seed {trial.seed}: "
              f"{args.steps} batches, lr {args.start:g} -> {args.end:g}")

    found = api.lr_find(args.spec, start=args.start, end=args.end, steps=args.steps, device=args.device,
                        out=args.out, on_start=announce)
    result = found.result
    if result.stopped_early:
        print(f"stopped after {len(result.lrs)} batches: the smoothed loss passed 4x its best "
              f"at lr {result.lrs[-1]:.3g}")
    print(f"suggested lr: {result.steepest_lr:.3g} (steepest descent of the smoothed loss); "
          f"{result.min_over_10_lr:.3g} (min/10: a tenth of the lr at its minimum)")
    print(f"wrote {found.paths[0]} and {found.paths[1]}")
    return 0


def cmd_plan(args) -> int:
    # without the estimate nothing reads the data, so a spec for data on another machine plans
    spec, notes = _load_spec(args, check_files=not args.no_estimate)
    _print_nni_notes(notes)
    p = api.plan(spec)
    text, n_trials = api.plan_text(p)
    print(text)
    if spec.trial is not None and not args.no_estimate:
        print("\n(no estimate: the trials run your command; time one run of it to estimate the cost)")
    elif not args.no_estimate:
        e = api.estimate(p)
        sizes, ips, per_trial = e.sizes, e.images_per_s, e.per_trial_s
        print("")
        print(f"data: {e.data}, {e.shape}, {e.num_classes} classes, {sizes['train']} train / {sizes['val']} val / "
              f"{sizes['test']} test images")
        print(f"model: {e.model}, {e.n_params / 1e6:.3f}M parameters (baseline)")
        bound = " (at most: a pruned trial stops early)" if api.kind_of(spec).is_search else ""
        if n_trials is None:
            print(f"cost: {spec.recipe.epochs} epochs x {sizes['train']} images per trial; the search runs as many "
                  f"trials as its timeout allows")
            print(f"estimate on {e.device}: ~{fmt_s(per_trial)} per trial (measured {ips:,.0f} img/s on the "
                  f"baseline; tricks such as SAM or policies cost more)")
            return 0
        print(f"cost: {n_trials} trials x {spec.recipe.epochs} epochs x {sizes['train']} images = "
              f"{n_trials * spec.recipe.epochs * sizes['train']:,} training images{bound}")
        print(f"estimate on {e.device}: ~{fmt_s(per_trial)} per trial, ~{fmt_s(per_trial * n_trials)} "
              f"in all{bound and ' at most'} (measured {ips:,.0f} img/s on the baseline; tricks such as SAM or "
              f"policies cost more)")
    return 0


def cmd_run(args) -> int:
    from ablate.design.spec import resolve_spec_path

    # Everything is checked before the store is touched: options, spec, device, data.
    for option in ("epochs", "seeds", "jobs"):
        value = getattr(args, option)
        if value is not None and value < 1:
            raise AblateError(f"--{option} must be >= 1, got {value}")
    spec, notes = _load_spec(args)
    _print_nni_notes(notes)
    if args.epochs and spec.trial is not None:
        raise AblateError(f"--epochs sets recipe.epochs of the built-in trainer; spec '{spec.name}' runs a command "
                          f"('trial:'), whose epochs are its own: leave --epochs out (pass them to the command as "
                          f"one of its parameters)")
    if args.epochs or args.seeds:
        changes = {}
        if args.epochs:
            changes["recipe"] = {"epochs": args.epochs}
        if args.seeds:
            changes["seeds"] = args.seeds
        spec = spec.with_changes(**changes)
    run = api.prepare_run(spec, store=args.store, source=str(resolve_spec_path(args.spec)), runner=args.runner,
                          address=args.address, jobs=args.jobs, device=args.device, fuse=args.fuse,
                          replace=args.replace, retry_failed=args.retry_failed, out=args.out,
                          report=not args.no_report)
    store = run.store
    print(f"ablate {__version__}: running '{spec.name}' into {store.label}" +
          (f"; {run.new_store}" if run.new_store else ""))
    if run.replaced:
        print(run.replaced)
    if run.jobs_note:
        print(f"note: {run.jobs_note}")
    if run.retried:
        print(run.retried)
    try:
        result = run.execute(api.console_progress(spec, store))
    except api.Interrupted as exc:
        print(f"\n{exc}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if result.error is not None:
        print(f"ablate: error: {result.error}", file=sys.stderr)
        print("\n".join(_failure_lines(args, store, spec)), file=sys.stderr)
        return EXIT_TRIALS_FAILED
    # the run time belongs to the summary line, not to the last note under it
    first, *notes = result.summary.describe().split("\n")
    print("\n".join([f"{first} ({fmt_s(result.elapsed_s)})", *notes]))
    if not args.no_report and result.complete:
        api.finish_run(result, out=args.out, formats=tuple(args.format))
        if result.report_note:
            print(f"no report: {result.report_note}")   # e.g. the baseline's trials failed: exit 3 below, not 2
        else:
            print("")
            print(result.report.markdown())
            print("wrote " + ", ".join(str(x) for x in result.paths))
    elif not args.no_report:
        print(f"no report: no trial of '{spec.name}' has completed")
    if result.failed:
        print("\n".join(_failure_lines(args, store, spec, result.failed)))
    return result.exit_code


def _rerun_command(args, store: Store, extra: str) -> str:
    """The `ablate run` command line that repeats this one, plus `extra`."""
    parts = ["ablate run", args.spec]
    parts += [f"--override {o}" for o in args.override]
    parts += ["--shrink"] if args.shrink else []
    parts += [f"--epochs {args.epochs}"] if args.epochs else []
    parts += [f"--seeds {args.seeds}"] if args.seeds else []
    parts += [f"--store {store.label}"] if args.store_given else []
    parts += ["--runner ray"] if args.runner == "ray" else []
    parts += [f"--address {args.address}"] if args.address else []
    return " ".join(parts + [extra])


def _failure_lines(args, store: Store, spec: Spec, failed: int | None = None) -> list[str]:
    """What failed, where the errors are, how to run the failed trials again after a fix."""
    store_opt = f" --store {store.label}" if args.store_given else ""
    count = f"{failed} trial(s) of '{spec.name}' failed" if failed else f"a trial of '{spec.name}' failed"
    return [f"{count}: each attempt's error, output and host: ablate logs {spec.name}{store_opt}",
            f"after fixing the cause, run the failed trials again (earlier attempts are kept): "
            f"{_rerun_command(args, store, '--retry-failed')}"]


def _print_nni_notes(notes: list[str]) -> None:
    for line in notes:
        print(f"nni: {line}")
    if notes:
        print("")


def cmd_import_nni(args) -> int:
    conversion, text = api.import_nni(args.config, args.out)
    if args.out is None:
        print(text, end="")
        return 0
    _print_nni_notes(conversion.notes)
    print(f"wrote {args.out}; run it with: ablate run {args.out}")
    return 0


def cmd_status(args) -> int:
    store = api.open_store(args.store)
    names = args.experiment or store.experiment_names()
    if not names:
        print(f"no experiments in {store.label}")
        return 0
    for name in names:
        state = api.experiment_state(store, name)   # an unknown name: raises with the list of experiments
        print(state.text(store))
        if args.experiment:
            store_opt = f" --store {store.label}" if args.store_given else ""
            print("\n".join(_trial_lines(store, state.plan, state.current, state.gone, store_opt)))
    return 0


def _trial_lines(store: Store, p: Plan, trials, gone: dict[str, str], store_opt: str = "") -> list[str]:
    """`ablate status EXPERIMENT`: every trial with its id, arm, seed, status, metric, why it ran,
    and for a failure its kind and reason in one line (`ablate logs` has the rest)."""
    from ablate.runner.logs import error_summary

    spec = p.spec
    metric = spec.metric.name
    lines = []
    if spec.search is None:
        lines.append(f"  plan: {len(p.arms)} arms x {len(p.seeds)} seeds = {len(p.trials)} trials")
    for r in trials.to_dict("records"):
        status = r["status"]
        value = r.get(metric)
        shown = ""
        if status == "complete" and isinstance(value, (int, float)) and value == value:
            shown = f"val {value:.2f}%" if metric == "val_acc" else f"{metric} {value:.4g}"
        why = "" if r.get("reason") in (None, "design") else f"  [{r['reason']}]"
        line = f"  {r['trial_id'][:8]}  arm {r['arm']:>3}  seed {r['seed']:>3}  {status:<9} {shown:<12} {r['label']}{why}"
        if r["trial_id"] in gone:
            line += f"  -- {gone[r['trial_id']]}; the next `ablate run` runs it again"
        elif status != "complete" and isinstance(r.get("error"), str) and r["error"].strip():
            kind = r.get("kind") if isinstance(r.get("kind"), str) else None
            line += f"  -- {kind + ': ' if kind and kind != status else ''}{error_summary(r['error'], kind)}"
        lines.append(line)
    failed = int((trials["status"] == "failed").sum())
    if failed:
        source = (store.experiment(spec.name) or {}).get("source") or "SPEC"
        lines.append(f"  {failed} failed: `ablate logs {spec.name} [TRIAL]{store_opt}` shows each attempt; after "
                     f"fixing the cause, `ablate run {source}{store_opt} --retry-failed` runs them again")
    return lines


def cmd_logs(args) -> int:
    """Every attempt of the experiment's trials that failed (or of one trial)."""
    print(api.logs(args.store, args.experiment, args.trial))
    return 0


def cmd_report(args) -> int:
    store = api.open_store(args.store)
    options = dict(confidence=args.confidence, test=args.test, columns=args.columns, diverged=args.diverged)
    if args.compare:
        report = api.build_report(store, args.experiment, compare=True, **options)
        print(report.markdown())
        paths = api.write_report(report, api.report_folder(report.name, args.out), args.format)
        print("wrote " + ", ".join(str(x) for x in paths))
        return 0
    for name in args.experiment:
        report = api.build_report(store, name, **options)
        out = api.report_folder(name, Path(args.out) / name if len(args.experiment) > 1 and args.out else args.out,
                                check=True)     # a file or a link there: exit 2 before printing
        if "md" in args.format or not args.out:
            print(report.markdown())
        paths = api.write_report(report, out, args.format)
        print("wrote " + ", ".join(str(x) for x in paths))
    return 0


def cmd_export(args) -> int:
    done = api.export(args.store, args.experiment, args.tracker, tracking_uri=getattr(args, "tracking_uri", None),
                      logdir=getattr(args, "logdir", None))
    print(done.describe(args.experiment))
    return 0


def cmd_serve(args) -> int:
    from ablate.serve import serve

    return serve(args.store, host=args.host, port=args.port, token=args.token)


def _comma_list(what: str, allowed, *, empty: bool = False) -> Callable[[str], list[str]]:
    """An argparse type for 'a,b,c' whose items must be in `allowed` (none at all only if `empty`)."""

    def parse(text: str) -> list[str]:
        out = [c.strip() for c in text.split(",") if c.strip()]
        bad = [c for c in out if c not in allowed]
        if not out and not empty:
            raise argparse.ArgumentTypeError(f"give at least one {what}; allowed: {', '.join(allowed)}")
        if bad:
            raise argparse.ArgumentTypeError(f"unknown {what} {', '.join(bad)}; allowed: {', '.join(allowed)}")
        return out

    return parse


def _spec_edits(p: argparse.ArgumentParser) -> None:
    """--override and --shrink (ablate/design/shrink.py), shared by plan and run."""
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
    p.add_argument("--retry-failed", action="store_true",
                   help="run the spec's failed trials again (after fixing the cause), keeping their earlier "
                        "attempts; their retries start afresh")
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

    p = sub.add_parser("logs", help="every attempt of an experiment's failed trials (or of one trial): status, "
                                    "failure kind, error, output tails, host and times")
    p.add_argument("experiment")
    p.add_argument("trial", nargs="?", help="a trial id or its first characters (as `ablate status EXPERIMENT` "
                                            "lists them), or LABEL@SEED; default: every trial with a failed attempt")
    p.add_argument("--store", default=None, help="default: $ABLATE_STORE, else ablate.db")
    p.set_defaults(func=cmd_logs)

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
    p.add_argument("--columns", type=_comma_list("column", EXTRA_COLUMNS, empty=True), default=list(DEFAULT_COLUMNS),
                   help="optional lift-table columns: params,gflops,memory,time,top5 (default: params,time)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("export", help="send an experiment's trials to MLflow or TensorBoard (again: updates)")
    trackers = p.add_subparsers(dest="tracker", metavar="TRACKER")
    trackers.required = True
    t = trackers.add_parser("mlflow", help="each trial an MLflow run; the report as artifacts of their parent run")
    t.add_argument("experiment")
    t.add_argument("--store", default=None, help="default: $ABLATE_STORE, else ablate.db")
    t.add_argument("--tracking-uri", help="default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db in this folder")
    t.set_defaults(func=cmd_export)
    t = trackers.add_parser("tensorboard", help="one run folder per trial: scalars per epoch, HParams")
    t.add_argument("experiment")
    t.add_argument("--store", default=None, help="default: $ABLATE_STORE, else ablate.db")
    t.add_argument("--logdir", required=True, help="folder for the run folders (an earlier export there is replaced)")
    t.set_defaults(func=cmd_export)

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
    if hasattr(args, "store"):
        args.store_given = args.store is not None     # messages repeat --store only when it was given
        if args.store is None:
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
        if isinstance(exc, SpecError):
            from ablate.config.spec_errors import with_line

            exc = with_line(exc)          # a field checked after loading: its line in the file
        print(f"ablate: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("\nablate: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        sys.stdout = stdout
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
