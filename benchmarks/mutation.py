"""Mutation testing: how many small planted bugs the tests catch, per module.

    python benchmarks/mutation.py                  # every target (tens of minutes on 2 cores)
    python benchmarks/mutation.py tricks           # one or more of: stats plan tricks frames
    python benchmarks/mutation.py tricks --list    # also list the surviving mutants' diffs

Runs mutmut 3 (`pip install -e '.[mutation]'`). mutmut rewrites every function of the target
into variants that each differ by one small change (a flipped comparison, an altered constant,
a dropped argument...) and runs the tests that exercise that function against each variant; a
variant the tests fail on is "killed". Score = killed / (mutants that some test reaches).

Why mutmut: measured against cosmic-ray and pytest-gremlins here, it needs no session database
or operator configuration, runs only the tests that reach each mutated function (it records
which tests call which functions), and forks instead of re-importing torch per mutant.

Each target runs in a fresh copy of the work tree (tracked and untracked, not ignored files),
so the tree itself never gets a `mutants/` folder. The base settings live in pyproject's
`[tool.mutmut]`; this script adds the target's files (`only_mutate`) and its test files. It is
not part of the default test run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# target -> (files to mutate, tests that state the target's rules, extra pytest arguments)
TARGETS: dict[str, tuple[list[str], list[str], list[str]]] = {
    # test_adaptive and test_ties simulate the pilot rule and ties under H0 (seconds): they run
    # only for mutants of the functions they call (paired_lifts, pilot_seed_count, holm...)
    "stats": (["ablate/stats/*"], ["tests/stats/test_stats.py", "tests/runner/test_adaptive.py", "tests/stats/test_ties.py"], []),
    # the planner delegates arm lists to arms.py and trial identity to trial.py
    "plan": (["ablate/design/plan.py", "ablate/design/arms.py", "ablate/design/trial.py"],
             ["tests/design/test_plan.py", "tests/design/test_factorial.py"], []),
    # the tricks' rules are stated in these two files. The trick contract's two training runs per
    # trick (determinism) and the trainer's and models' tests reach the same functions but take
    # seconds each: with them a run here took over an hour on 2 busy cores, so they are left out
    "tricks": (["ablate/tricks/*"], ["tests/tricks/test_tricks.py", "tests/tricks/test_trick_rules.py"],
               ["-k", "not trains_finite_and_deterministic"]),
    # results.py builds the tidy frames (outcomes, metric_matrix) that frames.py re-exports
    "frames": (["ablate/report/frames.py", "ablate/results.py"],
               ["tests/report/test_report.py", "tests/report/test_compare.py"], []),
}


def _copy_tree(dest: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.split("\0")
    for rel in filter(None, files):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def _toml_list(items: list[str]) -> str:
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


def _configure(dest: Path, mutate: list[str], tests: list[str], pytest_args: list[str]) -> None:
    """Add the target's selection to the copy's [tool.mutmut] table."""
    import tomllib

    text = (dest / "pyproject.toml").read_text()
    base = tomllib.loads(text).get("tool", {}).get("mutmut")
    if base is None:
        raise SystemExit("pyproject.toml has no [tool.mutmut] table")
    extra = (f"only_mutate = {_toml_list(mutate)}\n"
             f"pytest_add_cli_args_test_selection = {_toml_list(tests)}\n")
    if pytest_args:   # replaces the base list (a TOML key cannot be given twice)
        text = re.sub(r"^pytest_add_cli_args = .*$", f"pytest_add_cli_args = "
                      f"{_toml_list(base.get('pytest_add_cli_args', []) + pytest_args)}", text, flags=re.M)
    text = text.replace("[tool.mutmut]\n", "[tool.mutmut]\n" + extra, 1)
    (dest / "pyproject.toml").write_text(text)


def run_target(name: str, *, children: int, list_survivors: bool) -> dict[str, int]:
    mutate, tests, pytest_args = TARGETS[name]
    with tempfile.TemporaryDirectory(prefix=f"ablate-mutation-{name}-") as tmp:
        work = Path(tmp)
        _copy_tree(work)
        _configure(work, mutate, tests, pytest_args)
        # mutmut puts mutants/ first on sys.path itself; an inherited PYTHONPATH (e.g. the work
        # tree's) would put the unmutated package there as well
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        # mutmut forks a worker per mutant from a process that has already run torch; torch's
        # OpenMP thread pool does not survive a fork, so a multi-threaded kernel in the child
        # hangs until mutmut's timeout and the mutant is wrongly counted as killed. One thread
        # each (the workers run in parallel anyway) avoids it.
        env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        t0 = time.perf_counter()
        print(f"[{name}] mutating {', '.join(mutate)}; tests: {' '.join(tests + pytest_args)}", flush=True)
        proc = subprocess.run([sys.executable, "-m", "mutmut", "run", "--max-children", str(children)],
                              cwd=work, env=env)   # mutmut's own progress display goes to the terminal
        elapsed = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"mutmut failed on target '{name}' (exit {proc.returncode})")
        subprocess.run([sys.executable, "-m", "mutmut", "export-cicd-stats"], cwd=work, env=env,
                       check=True, capture_output=True)
        counts = json.loads((work / "mutants" / "mutmut-cicd-stats.json").read_text())
        results = subprocess.run([sys.executable, "-m", "mutmut", "results"], cwd=work, env=env,
                                 check=True, capture_output=True, text=True).stdout
        untested = [line.split(":")[0].strip() for line in results.splitlines()
                    if line.strip().endswith(": no tests")]
        survivors = [line.split(":")[0].strip() for line in results.splitlines()
                     if line.strip().endswith(": survived")]
        functions = sorted({re.sub(r"__mutmut_\d+$", "", m) for m in untested})
        print(f"\n[{name}] {len(untested)} mutants in functions no selected test calls: {', '.join(functions)}")
        print(f"[{name}] {len(survivors)} survivors ({elapsed:.0f} s):")
        for mutant in survivors:
            print(f"  {mutant}")
            if list_survivors:
                diff = subprocess.run([sys.executable, "-m", "mutmut", "show", mutant], cwd=work, env=env,
                                      capture_output=True, text=True).stdout
                print("    " + "\n    ".join(diff.strip().splitlines()[2:]))
        return counts


def score(counts: dict[str, int]) -> float:
    """Killed share of the mutants some test reached (timeouts and crashes count as killed)."""
    killed = counts.get("killed", 0) + counts.get("timeout", 0) + counts.get("segfault", 0)
    reached = killed + counts.get("survived", 0) + counts.get("suspicious", 0)
    return killed / reached if reached else float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("targets", nargs="*", help=f"modules to mutate, of {', '.join(TARGETS)} (default: all)")
    ap.add_argument("--children", type=int, default=max((os.cpu_count() or 2) - 1, 1),
                    help="parallel test processes")
    ap.add_argument("--list", action="store_true", help="show each survivor's diff")
    args = ap.parse_args(argv)
    unknown = [t for t in args.targets if t not in TARGETS]
    if unknown:
        ap.error(f"unknown target(s) {', '.join(unknown)}; choose from {', '.join(TARGETS)}")
    rows = []
    for name in args.targets or list(TARGETS):
        counts = run_target(name, children=args.children, list_survivors=args.list)
        rows.append((name, counts))
    print(f"\n{'module':<8} {'mutants':>8} {'killed':>7} {'survived':>9} {'no tests':>9} {'timeout':>8} {'score':>6}")
    for name, c in rows:
        print(f"{name:<8} {c.get('total', 0):>8} {c.get('killed', 0):>7} {c.get('survived', 0):>9} "
              f"{c.get('no_tests', 0):>9} {c.get('timeout', 0):>8} {score(c):>6.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
