"""The GPU check's summary: reads the step logs check.sh wrote into its results folder and writes
`summary.txt` there (and prints it): each step's status and time, and its key figures beside
their targets.

    python benchmarks/gpu/summarize.py RESULTS_DIR [--dry-run] [--steps 1,2,3,4,5,6]

Every figure is read from a line its benchmark printed, never computed from guesses: a step
that stopped early shows what it had printed (throughput ratios are then computed from the
per-repeat lines, marked "partial"), or "no figure".
"""

from __future__ import annotations

import argparse
import re
import statistics
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CPU_TABLE = ROOT / "reports" / "quickstart" / "lift.md"
CPU_TABLE_MARK = "-- the CPU table"          # check.sh's line before it appends CPU_TABLE to step 2's log

# step number -> (log file name, title); check.sh writes these names
STEPS = {0: ("0-setup.txt", "setup"), 1: ("1-cuda-tests.txt", "cuda tests"),
         2: ("2-quickstart.txt", "quickstart on the device"), 3: ("3-throughput.txt", "throughput"),
         4: ("4-fused.txt", "fused trials"), 5: ("5-headline.txt", "airbench headline"),
         6: ("6-compile-memory.txt", "peak memory and compile time")}
THROUGHPUT_TARGETS = {"bare": 0.95, "dataloader": 3.0}   # ablate / path (benchmarks/gpu_throughput.py)
FUSED_TARGET = 3.0                                       # seeds case (benchmarks/fused_trials.py)
HEADLINE_TARGET_S = 180.0                                # benchmarks/airbench_ablation.py

RESULT = re.compile(r"^== result: (ok|failed|timed out|not run)(.*)$", re.M)
SECONDS = re.compile(r"after ([\d.]+) s")
LIMIT = re.compile(r"limit ([\d.]+) s")


def step_status(text: str) -> tuple[str, float, float]:
    """(status, seconds, limit seconds) of a step from its commands' `== result:` lines: 'timed
    out' if any command was, else 'failed', else 'not run', else 'ok'; seconds and limits summed.
    A log without one ended before its command did (the call was stopped): 'cut off'."""
    found = RESULT.findall(text)
    if not found:
        return "cut off", float("nan"), float("nan")
    statuses = [s for s, _ in found]
    status = next((s for s in ("timed out", "failed", "not run") if s in statuses), "ok")
    seconds = sum(float(m.group(1)) for _, rest in found if (m := SECONDS.search(rest)))
    limit = sum(float(m.group(1)) for _, rest in found if (m := LIMIT.search(rest)))
    return status, seconds, limit


def last_error(text: str) -> str | None:
    """The last exception or error line a step printed (its traceback's last line, usually)."""
    found = re.findall(r"^(?:E +)?((?:[\w.]+(?:Error|Exception|Exit)|usage|error)\b.*)$", text, re.M)
    return found[-1][:300] if found else None


def judged(value: float, target: float, *, at_least: bool, dry_run: bool, unit: str = "") -> str:
    goal = f"target {'>=' if at_least else '<'} {target:g}{unit}"
    if dry_run:
        return f"{goal} on a GPU; not judged in a dry run"
    met = value >= target if at_least else value < target
    return f"{goal}: {'met' if met else 'MISSED'}"


def pytest_counts(text: str) -> dict[str, int]:
    """The counts of pytest's closing line ('3 passed, 1 skipped in 2.1s'); {} if there is none."""
    lines = [ln for ln in text.splitlines() if re.search(r"\d+ (passed|failed|skipped|error)", ln)]
    if not lines:
        return {}
    counts = {w: int(n) for n, w in re.findall(r"(\d+) (passed|failed|skipped|errors?|deselected)", lines[-1])}
    if "error" in counts:
        counts["errors"] = counts.pop("error")
    return counts


def lift_rows(text: str) -> dict[str, str]:
    """arm ('baseline' or its trick codes, '+ CM') -> its decision in the first lift table of `text`: 'helps'/'hurts' (Holm-significant,
    marked *), 'suggestive +/-' (the CI excludes 0, not significant after Holm), 'noise', or
    'reference'. The decision, not the digits, is what a CUDA run should reproduce."""
    rows: dict[str, str] = {}
    for line in text.splitlines():
        if not line.startswith("| ") or line.startswith("| Arm"):
            if rows and not line.startswith("|"):
                break            # the end of the first table
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 5:
            continue
        label, lift, p = cells[0], cells[3], cells[4]
        arm = "+ " + label.split(" + ", 1)[1] if " + " in label else "baseline"   # the model's name may differ
        if lift == "reference":
            rows[arm] = "reference"
            continue
        sign = "-" if lift.startswith(("−", "-")) else "+"
        ci = [float(v.replace("−", "-")) for v in re.findall(r"[−+-]?\d+\.\d+", lift)[1:3]]
        if p.endswith("*"):
            rows[arm] = "helps" if sign == "+" else "hurts"
        elif len(ci) == 2 and (ci[0] > 0 or ci[1] < 0):
            rows[arm] = f"suggestive {sign}"
        else:
            rows[arm] = "noise"
    return rows


def compare_decisions(here: dict[str, str], cpu: dict[str, str]) -> str:
    """Whether the same lifts are decided, in the same direction, as in the CPU table (the verdict;
    expected to hold on a GPU, while the digits differ), and which arms' readings moved."""
    decided = {"helps", "hurts"}
    same = ({a: d for a, d in here.items() if d in decided} == {a: d for a, d in cpu.items() if d in decided})
    moved = "; ".join(f"{a} {cpu.get(a, 'absent')} -> {here.get(a, 'absent')}"
                      for a in sorted(set(here) | set(cpu)) if here.get(a) != cpu.get(a))
    return (f"same verdict as the CPU table (the same lifts decided, same direction): {'yes' if same else 'NO'}"
            f"{'; readings that moved (CPU -> here): ' + moved if moved else '; every arm reads the same'}")


def verdict_line(text: str) -> str | None:
    m = re.search(r"^\*\*Verdict:\*\* (.*)$", text, re.M)
    return m.group(1) if m else None


def throughput_ratios(text: str) -> dict[str, list[str]]:
    """'eager'/'compile' -> ratio descriptions. From the `ratio:` lines when the run finished, else
    from its `repeat N model: ablate A, bare B, dataloader C images/s` lines (partial)."""
    out: dict[str, list[str]] = {}
    for part in re.split(r"^-- throughput ", text, flags=re.M)[1:]:
        mode = part.split(None, 1)[0] if part.strip() else "?"
        ratios = re.findall(r"^ratio: (\w+) ablate/(\w+) ([\d.]+)", part, re.M)
        partial = ""
        if not ratios:
            rates: dict[str, dict[str, list[float]]] = {}
            for model, rest in re.findall(r"^repeat \d+ (\w+): (.*) images/s$", part, re.M):
                for path, value in re.findall(r"(\w+) ([\d.]+)", rest):
                    rates.setdefault(model, {}).setdefault(path, []).append(float(value))
            ratios = [(m, p, f"{statistics.median(r['ablate']) / statistics.median(r[p]):.2f}")
                      for m, r in rates.items() for p in THROUGHPUT_TARGETS if r.get(p) and r.get("ablate")]
            partial = " (partial: from the finished repeats)"
        out[mode] = [f"{m} ablate/{p} {v}{partial}" for m, p, v in ratios]
    return out


def figures(step: int, text: str, *, dry_run: bool, cpu_table: Path = CPU_TABLE) -> list[str]:
    """The key figures of one step's log, each with its target."""
    lines: list[str] = []
    if step == 0:
        for key in ("gpu", "driver", "torch", "python", "revision", "installed", "would install", "kept", "unmet",
                    "ablate imports"):
            lines += [f"{key}: {v}" for v in re.findall(rf"^{key}: (.*)$", text, re.M)]
    elif step == 1:
        counts = pytest_counts(text)
        if counts:
            got = ", ".join(f"{n} {w}" for w, n in counts.items())
            bad = counts.get("failed", 0) + counts.get("errors", 0)
            if dry_run:
                lines.append(f"{got} (on the CPU every cuda-marked test is skipped)")
            else:
                ok = bad == 0 and counts.get("skipped", 0) == 0 and counts.get("passed", 0) > 0
                lines.append(f"{got} (target: all pass, none skipped: {'met' if ok else 'MISSED'})")
        lines += re.findall(r"^((?:FAILED|ERROR) tests/\S+)", text, re.M)[:10]
    elif step == 2:
        text = text.split(CPU_TABLE_MARK)[0]    # check.sh appends the CPU table after the run's output
        device_rows = lift_rows(text)
        cpu_text = cpu_table.read_text() if cpu_table.exists() else ""
        cpu_rows = lift_rows(cpu_text)
        if verdict_line(text):
            lines.append(f"verdict here: {verdict_line(text)}")
        if verdict_line(cpu_text):
            lines.append(f"verdict of the CPU table ({cpu_table.relative_to(ROOT)}): {verdict_line(cpu_text)}")
        if device_rows and cpu_rows:
            lines.append(compare_decisions(device_rows, cpu_rows)
                         + (" (a dry run's shrunk quickstart is not the CPU table's experiment)" if dry_run else ""))
    elif step == 3:
        for mode, ratios in throughput_ratios(text).items():
            for r in ratios:
                path, value = re.search(r"ablate/(\w+) ([\d.]+)", r).groups()
                lines.append(f"{mode}: {r} ({judged(float(value), THROUGHPUT_TARGETS[path], at_least=True, dry_run=dry_run)})")
            if not ratios:
                lines.append(f"{mode}: no figure")
    elif step == 4:
        # the table's row of each case, printed as it finishes (the `ratio:` lines come at the end)
        for case, value in re.findall(r"^(seeds|design) +\d+ +[\d.]+ +[\d.]+ +([\d.]+) ", text, re.M):
            target = (judged(float(value), FUSED_TARGET, at_least=True, dry_run=dry_run) if case == "seeds"
                      else "no target: one grouped model of 25 members")
            lines.append(f"one at a time / fused, {case}: {value} ({target})")
    elif step == 5:
        wall = re.search(r"^wall: ([\d.]+) s", text, re.M)
        if wall:
            lines.append(f"wall {wall.group(1)} s for the whole ablation "
                         f"({judged(float(wall.group(1)), HEADLINE_TARGET_S, at_least=False, dry_run=dry_run, unit=' s')})")
        else:
            done = re.findall(r"^trial (\d+)/(\d+) \w+ at ([\d.]+) s", text, re.M)
            if done:
                k, n, t = done[-1]
                lines.append(f"no wall time: stopped after {k} of {n} trials at {t} s "
                             f"(target < {HEADLINE_TARGET_S:g} s: MISSED)" if not dry_run else
                             f"no wall time: stopped after {k} of {n} trials at {t} s")
        lines += re.findall(r"^(trials: .*)$", text, re.M) + re.findall(r"^(peak memory: .*)$", text, re.M)
    elif step == 6:
        lines += re.findall(r"^figure: (.*)$", text, re.M)
        lines += [f"note: {n}" for n in re.findall(r"^- (Time/trial leaves out .*)$", text, re.M)]
    return lines


def summary(results: Path, steps: list[int], *, dry_run: bool, budget: float | None = None,
            took: float | None = None) -> str:
    head = "ablate GPU check: summary" + (" (CPU dry run: smoke sizes, no GPU figures)" if dry_run else "")
    out = [head]
    if budget is not None and took is not None:
        out.append(f"budget {budget:g} s, took {took:.0f} s; steps {','.join(map(str, steps))}")
    worst = "ok"
    for step in [0, *steps]:
        name, title = STEPS[step]
        path = results / name
        if not path.exists():
            status, seconds, limit, text = "not run", float("nan"), float("nan"), ""
        else:
            text = path.read_text(errors="replace")
            status, seconds, limit = step_status(text)
        if status != "ok":
            worst = "not ok"
        timing = "" if seconds != seconds else f" ({seconds:.1f} s of {limit:.1f} s)"
        out.append(f"[{step}] {title}: {status}{timing}")
        out += [f"    {line}" for line in figures(step, text, dry_run=dry_run)]
        if status in ("failed", "cut off") and (error := last_error(text)):
            out.append(f"    error: {error}")
    out.append(f"all steps ok: {'yes' if worst == 'ok' else 'no'}")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results", type=Path)
    ap.add_argument("--dry-run", action="store_true")
    ap.add_argument("--steps", default="1,2,3,4,5,6")
    ap.add_argument("--budget", type=float)
    ap.add_argument("--took", type=float)
    args = ap.parse_args(argv)
    steps = [int(s) for s in args.steps.split(",")]
    text = summary(args.results, steps, dry_run=args.dry_run, budget=args.budget, took=args.took)
    (args.results / "summary.txt").write_text(text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
