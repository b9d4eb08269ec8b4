"""The store's tables, their creation, and the migration from older schemas.

`ablate-store/1` (ablate 0.1.0) kept a fixed set of metric columns, one row per trial and no
attempts or claims. `migrate` turns such a store into `ablate-store/2` in place, in the caller's
transaction: every trial, its final metrics (from the JSON the first release kept besides the
columns) and its epochs are carried over; a `failed` trial, which the first release would have
run again, goes back to pending (its error kept as attempt 1) because `failed` is final now.
"""

from __future__ import annotations

import json
import math

import sqlalchemy as sa

SCHEMA = "ablate-store/2"
OLD_SCHEMAS = ("ablate-store/1",)
STATUSES = ("pending", "running", "complete", "failed", "diverged", "pruned")
FINAL = ("complete", "diverged", "pruned", "failed")     # never run again

metadata = sa.MetaData()
meta_table = sa.Table("ablate_meta", metadata,
                      sa.Column("key", sa.String(64), primary_key=True),
                      sa.Column("value", sa.Text, nullable=False))
experiments = sa.Table(
    "ablate_experiments", metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("spec", sa.Text, nullable=False),
    sa.Column("source", sa.Text),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("updated", sa.Float, nullable=False),
)
trials = sa.Table(
    "ablate_trials", metadata,
    sa.Column("experiment", sa.String(100), primary_key=True),
    sa.Column("trial_id", sa.String(32), primary_key=True),
    sa.Column("arm", sa.Integer, nullable=False),
    sa.Column("label", sa.Text, nullable=False),
    sa.Column("seed", sa.BigInteger, nullable=False),     # seeds go up to 2**32 - 1
    sa.Column("reason", sa.Text, nullable=False, default="design"),
    sa.Column("config", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, default="pending"),
    sa.Column("error", sa.Text),
    sa.Column("metrics", sa.Text),                 # final metrics as reported (JSON, any type)
    sa.Column("env", sa.Text),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("started", sa.Float),
    sa.Column("finished", sa.Float),
    # added in ablate-store/2
    sa.Column("kind", sa.String(32)),              # failure kind of the last attempt
    sa.Column("holder", sa.String(200)),           # the driver that claimed it (while running)
    sa.Column("lease_until", sa.Float),            # the claim expires then unless renewed
    # prefixed: index names share one namespace with tables in PostgreSQL, and Optuna's tables
    # (`trials`, ...) may live in the same database
    sa.Index("ix_ablate_trials_status", "experiment", "status"),
)
attempts = sa.Table(
    "ablate_attempts", metadata,
    sa.Column("experiment", sa.String(100), primary_key=True),
    sa.Column("trial_id", sa.String(32), primary_key=True),
    sa.Column("attempt", sa.Integer, primary_key=True),
    sa.Column("holder", sa.String(200)),
    sa.Column("started", sa.Float),
    sa.Column("finished", sa.Float),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("kind", sa.String(32)),
    sa.Column("error", sa.Text),
    sa.Column("env", sa.Text),
)
epoch_metrics = sa.Table(
    "ablate_epoch_metrics", metadata,
    sa.Column("experiment", sa.String(100), primary_key=True),
    sa.Column("trial_id", sa.String(32), primary_key=True),
    sa.Column("epoch", sa.Integer, primary_key=True),
    sa.Column("name", sa.Text, primary_key=True),   # any length: a metric name is the user's
    sa.Column("value", sa.Float),
)
final_metrics = sa.Table(
    "ablate_final_metrics", metadata,
    sa.Column("experiment", sa.String(100), primary_key=True),
    sa.Column("trial_id", sa.String(32), primary_key=True),
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("value", sa.Float),
)

# The tables an Optuna RDB study creates (optuna.storages.RDBStorage, with its alembic marker): a
# search keeps its study in the store's database, so a store may be created beside them. Listed
# here rather than read from Optuna's private models (importing Optuna costs a second); the test
# with a real study fails if a new Optuna version adds a table.
OPTUNA_TABLES = frozenset({
    "alembic_version", "version_info", "studies", "study_directions", "study_user_attributes",
    "study_system_attributes", "trials", "trial_user_attributes", "trial_system_attributes", "trial_params",
    "trial_values", "trial_intermediate_values", "trial_heartbeats",
})

_V1_EPOCH_COLUMNS = ("train_loss", "train_acc", "val_loss", "val_acc", "lr", "images_per_s", "epoch_s")
_V1_FINAL_COLUMNS = ("val_acc", "val_loss", "test_acc", "test_loss", "test_top5", "params", "gflops",
                     "peak_mem_mb", "wall_s")


def create_schema(conn) -> None:
    """Create every table and the marker (unless another process just did)."""
    if sa.inspect(conn).has_table(meta_table.name):
        return
    metadata.create_all(conn)
    conn.execute(meta_table.insert().values(key="schema", value=SCHEMA))


def columns_to_widen(conn) -> list[str]:
    """On PostgreSQL, which enforces column types where SQLite does not, the ALTER statements that
    widen what stores made by earlier ablate versions declared too narrow: `seed` INTEGER ->
    BIGINT (seeds go up to 2**32 - 1) and metric names VARCHAR(100) -> TEXT."""
    if conn.dialect.name != "postgresql":
        return []
    inspector = sa.inspect(conn)
    out = []
    seed = next(c for c in inspector.get_columns(trials.name) if c["name"] == "seed")
    if not isinstance(seed["type"], sa.BigInteger):
        out.append(f"ALTER TABLE {trials.name} ALTER COLUMN seed TYPE BIGINT")
    for table in (epoch_metrics, final_metrics):
        name = next(c for c in inspector.get_columns(table.name) if c["name"] == "name")
        if getattr(name["type"], "length", None) is not None:
            out.append(f"ALTER TABLE {table.name} ALTER COLUMN name TYPE TEXT")
    return out


def widen_server_columns(conn) -> None:
    """Run `columns_to_widen` in the caller's write transaction."""
    for statement in columns_to_widen(conn):
        conn.exec_driver_sql(statement)


def migrate(conn) -> None:
    """Bring an `ablate-store/1` store to `ablate-store/2` (in the caller's transaction)."""
    row = conn.execute(sa.select(meta_table.c.value).where(meta_table.c.key == "schema")).first()
    if row is None or row[0] == SCHEMA:
        return                                      # another process migrated it meanwhile
    have = {c["name"] for c in sa.inspect(conn).get_columns("ablate_trials")}
    for col in ("kind", "holder", "lease_until"):
        if col not in have:
            kind = "FLOAT" if col == "lease_until" else "VARCHAR(200)"
            conn.exec_driver_sql(f"ALTER TABLE ablate_trials ADD COLUMN {col} {kind}")
    for table in (attempts, epoch_metrics, final_metrics):
        table.create(conn, checkfirst=True)
    old = sa.table("ablate_trials", *(sa.column(c) for c in (
        "experiment", "trial_id", "status", "error", "metrics", "env", "attempts", "started", "finished",
        *_V1_FINAL_COLUMNS)))
    finals, tries = [], []
    for r in conn.execute(sa.select(old)).mappings():
        values = json.loads(r["metrics"]) if r["metrics"] else {c: r[c] for c in _V1_FINAL_COLUMNS}
        for name, v in values.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isnan(v):
                finals.append(dict(experiment=r["experiment"], trial_id=r["trial_id"], name=name, value=float(v)))
        if r["attempts"]:
            status = r["status"] if r["status"] != "running" else "interrupted"
            tries.append(dict(experiment=r["experiment"], trial_id=r["trial_id"], attempt=r["attempts"],
                              started=r["started"], finished=r["finished"], status=status,
                              kind="error" if status == "failed" else None, error=r["error"], env=r["env"]))
    if finals:
        conn.execute(final_metrics.insert(), finals)
    if tries:
        conn.execute(attempts.insert(), tries)
    if sa.inspect(conn).has_table("ablate_epochs"):
        old_epochs = sa.table("ablate_epochs", sa.column("experiment"), sa.column("trial_id"),
                              sa.column("epoch"), *(sa.column(c) for c in _V1_EPOCH_COLUMNS))
        for name in _V1_EPOCH_COLUMNS:
            conn.execute(epoch_metrics.insert().from_select(
                ["experiment", "trial_id", "epoch", "name", "value"],
                sa.select(old_epochs.c.experiment, old_epochs.c.trial_id, old_epochs.c.epoch,
                          sa.literal(name), old_epochs.c[name]).where(old_epochs.c[name].is_not(None))))
        conn.exec_driver_sql("DROP TABLE ablate_epochs")
    # the first release ran failed (and interrupted) trials again; `failed` is final now
    conn.execute(trials.update().where(trials.c.status == "failed").values(status="pending", kind="error"))
    conn.execute(trials.update().where(trials.c.status == "running").values(status="pending", kind="interrupted"))
    widen_server_columns(conn)
    conn.execute(meta_table.update().where(meta_table.c.key == "schema").values(value=SCHEMA))
