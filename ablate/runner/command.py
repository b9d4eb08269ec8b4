"""The command executor: each trial is the user's own command (any training script).

The trial's parameters reach it as a JSON file named in `ABLATE_TRIAL` (and with `args: flags`
as `--name value` arguments); it reports JSON lines on stdout (`{"epoch": 3, "val_acc": 91.2}`;
a line without "epoch" is a final metric), through `ablate.client` or by printing them. Pruning:
the engine's "stop" creates the file named in `ABLATE_STOP` (`client.should_stop()`), and a
command that keeps going is killed after a grace period.

Every command runs under a tiny supervisor (Python without site, started as a new process group),
which ends the command's whole process tree: when the command exits (what it left running, a
background job holding its stdout included, is killed, so the trial ends when the command
does), and when the driver goes. On Linux the supervisor is a child subreaper
(PR_SET_CHILD_SUBREAPER), so a process the command left behind, even one in a new session or
double-forked, becomes the supervisor's child when its parent exits, never init's: nothing of
the tree escapes it. The supervisor holds the read end of a pipe whose write end only the driver
has: when the driver dies, even by SIGKILL, or closes it to stop the trial (timeout, pruning,
Ctrl-C), the supervisor kills the tree (psutil walks it) and exits. Elsewhere the group is
killed as a fallback, and a process that left it and lost its parent may survive.
"""

from __future__ import annotations

import json
import os
import platform
import queue
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path

from ablate.errors import SpecError
from ablate.config.run import CommandTrial
from ablate.runner.provenance import git_revision
from ablate.runner.threads import concurrent_jobs, thread_env
from ablate.runner.events import Emit, EpochMetrics, Failure, FinalMetrics, Started
from ablate.store import numeric_metrics
from ablate.design.trial import Trial

STDERR_TAIL = 3000          # characters of stderr kept with a failed trial
STDOUT_TAIL = 2000          # characters of stdout (its plain lines, not the reports) kept with it
STOP_GRACE_S = 10.0         # a pruned command gets this long to stop by itself
NNI_SHIM = Path(__file__).resolve().parent.parent / "nni" / "shim"   # holds the `nni` package of api: nni

# argv: [python, -S, -c, SUPERVISOR, read-fd, psutil's folder, program, args...]. Plain os calls
# (fast start); ctypes for prctl on Linux, psutil only when something is left to kill.
SUPERVISOR = r"""
import os, select, signal, sys, time
fd = int(sys.argv[1]); sys.path.append(sys.argv[2]); argv = sys.argv[3:]
if sys.platform.startswith("linux"):
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)   # PR_SET_CHILD_SUBREAPER
wake_r, wake_w = os.pipe()
os.set_blocking(wake_w, False)
signal.set_wakeup_fd(wake_w)                     # SIGCHLD wakes the select below: no polling
signal.signal(signal.SIGCHLD, lambda *_: None)
pid = os.fork()
if pid == 0:
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for f in (fd, wake_r, wake_w):
        os.close(f)
    try:
        os.execvp(argv[0], argv)
    except OSError as e:
        os.write(2, ("ablate: cannot start %r: %s\n" % (argv[0], e)).encode())
        os._exit(127)
code = None

def reap():
    # reap every child that ended (the command, or an orphan of its tree); False: none is left
    global code
    while True:
        try:
            done, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return False
        if done == 0:
            return True
        if done == pid:
            code = os.waitstatus_to_exitcode(status)

def end_tree():
    # kill every descendant until none is left (one may fork while we kill: kill again)
    if not reap():
        return
    import psutil
    me = psutil.Process()
    while True:
        try:
            kids = me.children(recursive=True)
        except psutil.Error:
            kids = []
        for k in kids:
            try:
                k.kill()
            except psutil.Error:
                pass
        if not reap():
            return
        if not kids:
            if not sys.platform.startswith("linux"):
                return                           # no subreaper: our children are gone, the rest is init's
        time.sleep(0.01)

while True:
    reap()
    if code is not None:
        break
    ready, _, _ = select.select([fd, wake_r], [], [])
    if fd in ready:                              # the driver is gone, or stops the trial
        end_tree()
        os._exit(137)
    if wake_r in ready:
        os.read(wake_r, 512)
end_tree()                                       # what the command left running
os._exit(code if code >= 0 else 128 - code)
"""
PSUTIL_DIR = None          # set on first use (importing psutil in the driver costs ~40 ms)
DRAIN_S = 2.0              # after the supervisor exits, stdout lines are read for this long at most
END_WAIT_S = 10.0          # the supervisor gets this long to end the tree before its group is killed


def _psutil_dir() -> str:
    global PSUTIL_DIR
    if PSUTIL_DIR is None:
        import psutil

        PSUTIL_DIR = str(Path(psutil.__file__).resolve().parent.parent)
    return PSUTIL_DIR


class Supervised(subprocess.Popen):
    """The supervisor's process, with the write end of its pipe (`stop_fd`): closing it ends the
    command's tree."""

    stop_fd: int | None = None

    def end_tree(self) -> None:
        """End the command and everything it started, then the supervisor (idempotent)."""
        if self.stop_fd is not None:
            fd, self.stop_fd = self.stop_fd, None
            os.close(fd)
        try:
            self.wait(timeout=END_WAIT_S)
        except subprocess.TimeoutExpired:
            pass
        try:   # the fallback (and, off Linux, the group members that lost their parent)
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.wait()


def _warn(message: str) -> None:
    """A line of a command's output looked like a report but was not one (the trial goes on)."""
    print(f"ablate: warning: {message}", file=sys.stderr, flush=True)


class CommandExecutor:
    def __init__(self, config: CommandTrial, *, source: str | None = None, stop_grace_s: float = STOP_GRACE_S,
                 jobs: int = 1, threads: int = 1, metrics: Sequence[str] = ()):
        """`threads`: the command's OMP/MKL threads (the spec's `resources.cpu`; `--jobs` runs at
        most as many commands at once as the cores hold at that count). `metrics`: the names a
        trial must report (the spec's metric, a search's): a command that does not is failed,
        kind `no_metric`, saying what it reported instead."""
        self.config = config
        self.source = source
        self.stop_grace_s = stop_grace_s
        self.threads = threads
        self.jobs_asked = jobs
        self.jobs = concurrent_jobs(jobs, threads)
        self.metrics = tuple(metrics)

    @property
    def capacity(self) -> int:
        """How many trials the engine may hand over in one `run` call (run at once)."""
        return self.jobs

    # -- bad input, before anything runs --------------------------------------------------

    def cwd(self) -> Path:
        return Path(self.config.cwd).expanduser().resolve() if self.config.cwd else Path.cwd()

    def check(self, trials: Sequence[Trial] = ()) -> None:
        cwd = self.cwd()
        if cwd.exists() and not cwd.is_dir():
            raise SpecError(f"the working directory '{self.config.cwd}' is a file, not a folder (resolved from "
                            f"{Path.cwd()} to {cwd}); give a folder", source=self.source, path="trial.cwd")
        if not cwd.is_dir():
            raise SpecError(f"the working directory '{self.config.cwd}' does not exist (resolved from "
                            f"{Path.cwd()} to {cwd}); give an existing folder", source=self.source,
                            path="trial.cwd")
        missing = [n for n in self.config.pass_env if n not in os.environ]
        if missing:
            raise SpecError(f"{', '.join(missing)} (named in pass_env) {'is' if len(missing) == 1 else 'are'} not set "
                            f"in this environment; set {'it' if len(missing) == 1 else 'them'} before running "
                            f"(export {missing[0]}=...)", source=self.source, path="trial.pass_env")
        if self.config.shell:
            return
        program = self.config.command[0]
        if "/" in program:
            path = (cwd / program).resolve()
            if not path.is_file() or not os.access(path, os.X_OK):
                raise SpecError(f"the command '{program}' is not an executable file (looked at {path})",
                                source=self.source, path="trial.command[0]")
        else:
            search = {**os.environ, **self.config.env}.get("PATH", os.defpath)
            if shutil.which(program, path=search) is None:
                raise SpecError(f"the command '{program}' was not found on the PATH; give the program's "
                                f"full path or install it", source=self.source, path="trial.command[0]")

    # -- running ------------------------------------------------------------------------

    def argv(self, trial: Trial) -> list[str]:
        flags: list[str] = []
        if self.config.args == "flags":
            flags += ["--seed", str(trial.seed)]
            named = {n: v for t in trial.tricks for n, v in t.params.model_dump(mode="json").items()}
            named.update(trial.values)
            for name, value in named.items():
                if value is True:
                    flags.append(f"--{name}")
                elif value is not False:
                    flags += [f"--{name}", str(value)]
        if self.config.shell:
            return ["/bin/sh", "-c", " ".join([self.config.command[0], *map(shlex.quote, flags)])]
        return [*self.config.command, *flags]

    def run(self, trials: Sequence[Trial], emit: Emit) -> None:
        if self.jobs > 1 and len(trials) > 1:
            from ablate.runner.parallel import run_in_threads

            run_in_threads(trials, self._run_in_tmp, emit, jobs=self.jobs)
            return
        for trial in trials:
            self._run_in_tmp(trial, emit)

    def _run_in_tmp(self, trial: Trial, emit: Emit) -> None:
        with tempfile.TemporaryDirectory(prefix="ablate-trial-") as tmp:
            self._run_one(trial, emit, Path(tmp))

    def _run_one(self, trial: Trial, emit: Emit, tmp: Path) -> None:
        params = tmp / "trial.json"
        params.write_text(json.dumps(trial.params(), sort_keys=True))
        stop_file = tmp / "stop"
        # the spec's thread count on every runner (ablate.runner.threads), unless its env sets one
        env = {**os.environ, **thread_env(self.threads, self.config.env), **self.config.env,
               "ABLATE_TRIAL": str(params), "ABLATE_STOP": str(stop_file), "PYTHONUNBUFFERED": "1"}
        if self.config.api == "nni":   # `import nni` finds the shim in this trial's process only
            env["PYTHONPATH"] = os.pathsep.join([str(NNI_SHIM), *filter(None, [env.get("PYTHONPATH")])])
        cwd = self.cwd()
        argv = self.argv(trial)
        read_fd, write_fd = os.pipe()
        try:
            proc = Supervised([sys.executable, "-S", "-c", SUPERVISOR, str(read_fd), _psutil_dir(), *argv],
                              cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, start_new_session=True, pass_fds=(read_fd,),
                              text=True, bufsize=1, errors="replace")
        except BaseException:
            os.close(write_fd)
            raise
        finally:
            os.close(read_fd)
        proc.stop_fd = write_fd
        try:
            emit(Started(trial.id, {"host": socket.gethostname(), "platform": platform.platform(),
                                    "command": shlex.join(argv), "cwd": str(cwd), "git": git_revision(str(cwd)),
                                    "pid": proc.pid, "threads": int(env.get("OMP_NUM_THREADS", self.threads))
                                    if str(env.get("OMP_NUM_THREADS", "")).isdigit() else self.threads}))
            self._follow(trial, proc, emit, stop_file)
        finally:
            _kill_group(proc)

    def _follow(self, trial: Trial, proc: subprocess.Popen, emit: Emit, stop_file: Path) -> None:
        lines: queue.Queue = queue.Queue()
        tail: deque[str] = deque(maxlen=200)
        said: deque[str] = deque(maxlen=200)      # its plain stdout lines (reports are kept as metrics)
        readers = [threading.Thread(target=_pump, args=(proc.stdout, lines.put, True), daemon=True),
                   threading.Thread(target=_pump, args=(proc.stderr, tail.append, False), daemon=True)]
        for r in readers:
            r.start()
        start = time.monotonic()
        deadline = start + self.config.timeout_s if self.config.timeout_s else None
        final: dict = {}
        last_epoch: dict = {}
        stopped_at = None
        exited_at = None
        outcome = None
        while True:
            now = time.monotonic()
            if deadline is not None and now > deadline:
                _kill_group(proc)
                outcome = Failure(trial.id, "timeout", f"killed after the timeout of {self.config.timeout_s:g} s"
                                  + _tails(said, tail, readers[1]))
                break
            if stopped_at is not None and now > stopped_at + self.stop_grace_s:
                _kill_group(proc)
                break
            wait = 0.5 if deadline is None else max(0.0, min(0.5, deadline - now))
            try:
                line = lines.get(timeout=wait)
            except queue.Empty:
                if proc.poll() is not None:
                    # the supervisor ended the command's tree and exited, yet stdout is still open
                    # (a process outside the tree holds it): take what came, stop waiting
                    exited_at = exited_at or now
                    if now > exited_at + DRAIN_S:
                        break
                continue
            if line is None:            # stdout closed: the command is ending
                break
            report = _parse(line, trial)
            if report is None:
                said.append(line)
                continue
            if "epoch" in report:
                last_epoch = report
                if emit(EpochMetrics(trial.id, report)) == "stop" and stopped_at is None:
                    stopped_at = time.monotonic()
                    stop_file.touch()
            else:
                final.update(report)
        try:   # stdout can close before the command ends: the timeout still holds
            code = proc.wait(timeout=None if deadline is None or outcome is not None
                             else max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            code = proc.wait()
            outcome = Failure(trial.id, "timeout", f"killed after the timeout of {self.config.timeout_s:g} s"
                              + _tails(said, tail, readers[1]))
        if outcome is None and stopped_at is not None:
            outcome = Failure(trial.id, "pruned", f"pruned after epoch {last_epoch.get('epoch')}")
        if outcome is None and code != 0:
            how = f"was killed by signal {code - 128}" if code > 128 else f"exited with code {code}"
            outcome = Failure(trial.id, "exit", f"the command {how}" + _tails(said, tail, readers[1]))
        if outcome is None:
            metrics = dict(final) or {k: v for k, v in last_epoch.items() if k != "epoch"}
            wrong = self.metric_problem(metrics)
            if wrong:
                outcome = Failure(trial.id, "no_metric", wrong + _tails(said, tail, readers[1]))
            else:
                if last_epoch and "epochs" not in metrics:
                    metrics = {**metrics, "epochs": last_epoch["epoch"]}
                metrics.setdefault("wall_s", time.monotonic() - start)
                outcome = FinalMetrics(trial.id, metrics)
        emit(outcome)


    def metric_problem(self, metrics: dict) -> str | None:
        """What is wrong with a finished command's metrics (None: nothing): none reported, the
        spec's metric missing, or reported as something other than a number."""
        example = self.metrics[0] if self.metrics else "val_acc"
        if not metrics:
            return (f"the command finished without reporting a metric: print JSON lines such as "
                    f"{{\"{example}\": 91.2}}, or use ablate.client.report")
        for name in self.metrics:
            if name not in metrics:
                return (f"the command reported {', '.join(sorted(metrics))}, not {name} (the metric this spec "
                        f"needs): print {{\"{name}\": ...}} in its final JSON line, or set metric.name to one "
                        f"it reports")
            if not numeric_metrics({name: metrics[name]}):
                return (f"the command reported {name} = {json.dumps(metrics[name])}, which is not a number: "
                        f"report {name} as a number (e.g. {{\"{name}\": 91.2}})")
        if not numeric_metrics(metrics):
            return (f"the command finished without reporting a metric (it reported {_shown(metrics)}, none of "
                    f"them a number): print JSON lines such as {{\"{example}\": 91.2}}")
        return None


def _shown(metrics: dict) -> str:
    return ", ".join(f"{k} = {json.dumps(v)}" for k, v in list(metrics.items())[:6])


def _pump(stream, put, mark_end: bool) -> None:
    for line in stream:
        put(line.rstrip("\n"))
    if mark_end:
        put(None)
    stream.close()


def _tails(said: deque, tail: deque, reader: threading.Thread) -> str:
    """The last lines of the command's plain stdout and of its stderr, for a failed trial's error
    (`ablate logs` shows them). Stderr comes last: a console line shows an error's last line."""
    reader.join(timeout=2)
    out = "\n".join(said)[-STDOUT_TAIL:]
    err = "\n".join(x for x in tail if x is not None)[-STDERR_TAIL:]
    return ((f"\n--- stdout (last lines) ---\n{out}" if out.strip() else "")
            + (f"\n--- stderr (last lines) ---\n{err}" if err.strip() else ""))


def _parse(line: str, trial: Trial) -> dict | None:
    """A report from one stdout line: a JSON object of metrics, or None (plain output)."""
    text = line.strip()
    if not text.startswith("{"):
        return None
    try:
        report = json.loads(text)
    except json.JSONDecodeError as exc:
        _warn(f"trial {trial.label} (seed {trial.seed}): a stdout line starting with '{{' is not valid "
              f"JSON ({exc.msg}); ignored, the trial goes on: {text[:200]!r}")
        return None
    if not isinstance(report, dict):
        return None
    if "epoch" in report and (isinstance(report["epoch"], bool) or not isinstance(report["epoch"], int)):
        _warn(f"trial {trial.label} (seed {trial.seed}): 'epoch' must be an integer, got "
              f"{report['epoch']!r}; line ignored: {text[:200]!r}")
        return None
    return report


def _kill_group(proc: Supervised) -> None:
    """End the command's whole process tree and its supervisor (see the module docstring)."""
    proc.end_tree()
