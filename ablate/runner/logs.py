"""What trials left behind, for people: one line per failure for the console, and every attempt
with its status, failure kind, error (a command's stdout and stderr tails included), host and
times, for `ablate logs` and the HTML report's failed trials.

The store keeps all of it (`ablate_attempts`); this module only reads and words it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import json
import re
import time
from dataclasses import dataclass

from ablate.errors import AblateError
from ablate.store import REQUEUED, holder_is_dead

if TYPE_CHECKING:  # pragma: no cover
    from ablate.store import Store

RETRY_HINT = "--retry-failed"
SUMMARY_CHARS = 300          # a console or status line shows at most this much of an error
_TRACEBACK = "Traceback (most recent call last)"
_STDERR = "--- stderr (last lines) ---"
_TRIAL_REF = re.compile(r"^(?P<label>.+)@(?P<seed>\d+)$")


def error_summary(message: str | None, kind: str | None = None) -> str:
    """One line saying why an attempt failed: a Python error's last line (the exception, not the
    traceback above it); else the message's first line, with the last line of the command's
    stderr when it exited or timed out (`python: can't open file ...`). Long lines are cut at a
    word boundary, marked with "…"."""
    lines = [x.strip() for x in (message or "").strip().splitlines() if x.strip()]
    if not lines:
        return ""
    if any(x.startswith(_TRACEBACK) for x in lines):
        text = lines[-1]
    else:
        text = lines[0]
        if _STDERR in (message or "") and kind in ("exit", "timeout", "error") and lines[-1] != _STDERR:
            text = f"{text}; stderr: {lines[-1]}"
    return shorten(text)


def shorten(text: str, limit: int = SUMMARY_CHARS) -> str:
    """`text` whole if it fits, else cut after the last sentence or word that does, plus "…"."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    for mark in (". ", "; ", ", ", " "):
        i = cut.rfind(mark)
        if i > limit // 2:
            return cut[:i + (1 if mark != " " else 0)].rstrip() + " …"
    return cut + "…"


def driver_gone(row: dict, now: float | None = None) -> str | None:
    """For a running trial's store row: why its driver is gone (None while it lives). Gone: its
    process ended on this host, or its claim's lease ran out (no heartbeat: killed, or another
    host that lost the store)."""
    if row.get("status") != "running":
        return None
    holder, lease = row.get("holder"), row.get("lease_until")
    now = time.time() if now is None else now
    if holder and holder_is_dead(holder):
        host, _, rest = holder.partition(":")
        return f"its driver (process {rest.partition(':')[0]} on {host}) is gone"
    if lease is None or lease < now:
        ago = f" {now - lease:.0f} s ago" if lease is not None else ""
        return f"its driver stopped renewing its claim (the lease ran out{ago})"
    return None


def gone_drivers(store: Store, experiment: str, trial_ids) -> dict[str, str]:
    """{trial id: why its driver is gone} for those of `trial_ids` shown running in the store."""
    out = {}
    for tid in trial_ids:
        row = store.trial_row(experiment, tid)
        why = driver_gone(row) if row else None
        if why:
            out[tid] = why
    return out


def find_trials(trials, ref: str, experiment: str) -> list[str]:
    """Trial ids of a trials frame matching `ref`: a trial id or a prefix of one (as `ablate
    status` shows them), or LABEL@SEED. Raises AblateError naming what is allowed."""
    ids = [str(t) for t in trials["trial_id"]]
    hits = [t for t in ids if t.startswith(ref)] if re.fullmatch(r"[0-9a-f]{1,16}", ref) else []
    m = _TRIAL_REF.match(ref)
    if not hits and m:
        hits = [str(t) for t, label, seed in zip(trials["trial_id"], trials["label"], trials["seed"])
                if label == m["label"] and int(seed) == int(m["seed"])]
    if len(hits) > 1 and not m:
        raise AblateError(f"trial '{ref}' is the start of {len(hits)} trial ids of experiment '{experiment}' "
                          f"({', '.join(sorted(hits)[:5])}{', ...' if len(hits) > 5 else ''}); give more of it")
    if not hits:
        if not len(trials):
            raise AblateError(f"no trial '{ref}': experiment '{experiment}' has no trials yet")
        example = f"{trials['label'].iloc[0]}@{int(trials['seed'].iloc[0])}"
        raise AblateError(f"no trial '{ref}' in experiment '{experiment}'; give a trial id or its first "
                          f"characters (`ablate status {experiment}` lists them), or LABEL@SEED such as '{example}'")
    return hits


@dataclass(frozen=True)
class Attempt:
    """One attempt of a trial, as `ablate logs` and the HTML report show it."""

    trial_id: str
    arm: int
    label: str
    seed: int
    reason: str
    attempt: int
    status: str
    kind: str | None
    error: str | None
    host: str | None
    started: float | None
    finished: float | None

    @property
    def took(self) -> float | None:
        if self.started is None or self.finished is None:
            return None
        return self.finished - self.started


def attempts(store: Store, experiment: str, trial_ids=None) -> list[Attempt]:
    """Every attempt of the experiment's trials (of `trial_ids` when given), by arm, seed, attempt."""
    trials = store.trials_frame(experiment)
    info = {r.trial_id: r for r in trials.itertuples()}
    frame = store.attempts_frame(experiment)
    out = []
    for r in frame.itertuples():
        if r.trial_id not in info or (trial_ids is not None and r.trial_id not in trial_ids):
            continue
        t = info[r.trial_id]
        out.append(Attempt(r.trial_id, int(t.arm), str(t.label), int(t.seed), str(t.reason), int(r.attempt),
                           str(r.status), _text(r.kind), _text(r.error), _host(r.env), _num(r.started),
                           _num(r.finished)))
    return sorted(out, key=lambda a: (a.arm, a.seed, a.trial_id, a.attempt))


def failed_trial_ids(store: Store, experiment: str) -> list[str]:
    """Trials with a failed (or interrupted) attempt, or whose driver is gone: what `ablate logs
    EXPERIMENT` shows."""
    frame = store.attempts_frame(experiment)
    bad = set(frame.loc[~frame["status"].isin(["complete", "running"]), "trial_id"])
    trials = store.trials_frame(experiment)
    bad |= set(trials.loc[trials["status"] == "failed", "trial_id"])
    bad |= set(gone_drivers(store, experiment, trials.loc[trials["status"] == "running", "trial_id"]))
    return sorted(bad)


def format_attempts(items: list[Attempt], *, gone: dict[str, str] | None = None, statuses=None) -> str:
    """The text `ablate logs` prints: per trial a header, then each attempt and its error."""
    gone, statuses = gone or {}, statuses or {}
    lines: list[str] = []
    current = None
    for a in items:
        if a.trial_id != current:
            current = a.trial_id
            if lines:
                lines.append("")
            now = statuses.get(a.trial_id, "")
            if a.trial_id in gone:
                now = f"{now}, but {gone[a.trial_id]}; the next `ablate run` runs it again"
            lines.append(f"trial {a.trial_id}  arm {a.arm} '{a.label}'  seed {a.seed}  ({a.reason})"
                         + (f": {now}" if now else ""))
        if a.status == REQUEUED:
            lines.append(f"  attempt {a.attempt}: put back to pending by `ablate run --retry-failed` at "
                         f"{_when(a.started)} (the retries start afresh)")
            continue
        kind = f" ({a.kind})" if a.kind and a.kind != a.status else ""
        took = f", took {_duration(a.took)}" if a.took is not None else ""
        lines.append(f"  attempt {a.attempt}: {a.status}{kind}  on {a.host or 'unknown host'}, started "
                     f"{_when(a.started)}{took}")
        if a.error:
            lines += [f"    {x}" for x in a.error.rstrip().splitlines()]
    return "\n".join(lines)


def _when(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t is not None else "?"


def _duration(s: float) -> str:
    return f"{s:.1f} s" if s < 120 else f"{s / 60:.1f} min"


def _host(env) -> str | None:
    try:
        data = json.loads(env) if isinstance(env, str) else {}
    except ValueError:
        return None
    host = data.get("host") if isinstance(data, dict) else None
    node = data.get("node_ip") if isinstance(data, dict) else None
    return f"{host} ({node})" if host and node else host


def _text(v) -> str | None:
    return None if v is None or (isinstance(v, float) and v != v) else str(v)


def _num(v) -> float | None:
    return None if v is None or (isinstance(v, float) and v != v) else float(v)
