#!/usr/bin/env bash
# The GPU check, in one call on the GPU machine (benchmarks/gpu/README.md says how to make it):
# installs the wheelhouse, prints the machine and its versions, then runs six steps in order,
# each time-boxed so that the whole call ends within the budget (480 s by default), writing each
# step's log into RESULTS_DIR as it goes and a summary at the end:
#   1 the cuda-marked tests       2 the quickstart on the device      3 gpu_throughput.py
#   4 fused_trials.py             5 airbench_ablation.py (headline)   6 peak memory, compile time
# A step that fails or overruns is reported and the next one still runs.
#
#   benchmarks/gpu/check.sh "$OUT"                                   # on the GPU machine
#   benchmarks/gpu/check.sh /tmp/dry --cpu-dry-run --python .venv/bin/python   # here, smoke sizes
#
# Time boxes: each step has a share of the budget (WEIGHT below, in seconds of the default 480).
# A step may run until the deadline less the shares of the steps after it, so what a step leaves
# unused goes to the later ones and a step never eats into a later step's share.
set -uo pipefail     # no -e: a failing step is reported and the next one runs

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE="$ROOT/benchmarks/gpu"
USAGE="usage: benchmarks/gpu/check.sh RESULTS_DIR [--cpu-dry-run] [--steps 1,2,3,4,5,6] [--budget SECONDS] [--python PYTHON] [--wheels DIR]"
# seconds of the default budget: setup, steps 1-6, summary (sum 480)
WEIGHT=(30 65 30 85 35 190 40 5)
GRACE_MS=2000        # timeout's --kill-after: a command that ignores SIGTERM is killed this much later
LOGS=("0-setup.txt" "1-cuda-tests.txt" "2-quickstart.txt" "3-throughput.txt" "4-fused.txt" "5-headline.txt"
      "6-compile-memory.txt")
# packages the GPU machine lacks and the check does not carry (the dry run hides them here too)
ABSENT="optuna,alembic,plotly,ray,psycopg2,playwright,mutmut"

usage_error() {
    echo "check.sh: $1" >&2
    echo "$USAGE" >&2
    exit 2
}

RESULTS="" DRY=0 STEPS="1,2,3,4,5,6" BUDGET=480 PY="" WHEELS="$HERE/wheelhouse"
while [ $# -gt 0 ]; do
    case "$1" in
        --cpu-dry-run) DRY=1 ;;
        --steps|--budget|--python|--wheels)
            [ $# -ge 2 ] || usage_error "$1 needs a value"
            case "$1" in
                --steps) STEPS="$2" ;; --budget) BUDGET="$2" ;; --python) PY="$2" ;; --wheels) WHEELS="$2" ;;
            esac
            shift ;;
        -h|--help) echo "$USAGE"; exit 0 ;;
        -*) usage_error "unknown option '$1'" ;;
        *) [ -z "$RESULTS" ] || usage_error "one RESULTS_DIR only, got '$RESULTS' and '$1'"
           RESULTS="$1" ;;
    esac
    shift
done
[ -n "$RESULTS" ] || usage_error "RESULTS_DIR is missing (on the GPU machine: \"\$OUT\")"
[[ "$BUDGET" =~ ^[1-9][0-9]{0,3}$ ]] && [ "$BUDGET" -ge 10 ] && [ "$BUDGET" -le 3600 ] ||
    usage_error "--budget must be whole seconds from 10 to 3600, got '$BUDGET'"
[[ "$STEPS" =~ ^[1-6](,[1-6])*$ ]] || usage_error "--steps must be step numbers 1-6 separated by commas, got '$STEPS'"
SELECTED=()
for s in 1 2 3 4 5 6; do
    n=$(tr ',' '\n' <<<"$STEPS" | grep -cx "$s")
    [ "$n" -le 1 ] || usage_error "--steps names step $s twice: '$STEPS'"
    [ "$n" -eq 0 ] || SELECTED+=("$s")
done
PY=${PY:-python3}
command -v "$PY" >/dev/null 2>&1 || usage_error "--python: '$PY' is not a program here"
# absolute before the cd below; not resolved through links (a venv's python is a link)
[[ "$PY" == */* ]] && PY="$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")"
[[ "$WHEELS" == /* ]] || WHEELS="$PWD/$WHEELS"
mkdir -p "$RESULTS" 2>/dev/null || usage_error "cannot create RESULTS_DIR '$RESULTS'"
RESULTS=$(cd "$RESULTS" && pwd)
for f in "${LOGS[@]}" summary.txt; do rm -f "$RESULTS/$f"; done

now_ms() { date +%s%3N; }
secs() { local ms=$(( $1 > 0 ? $1 : 0 )); printf '%d.%03d' $((ms / 1000)) $((ms % 1000)); }   # ms -> s, at least 0

START=$(now_ms)
TOTAL_W=$(( WEIGHT[0] + WEIGHT[7] ))
for s in "${SELECTED[@]}"; do TOTAL_W=$(( TOTAL_W + WEIGHT[s] )); done
box_ms() { echo $(( BUDGET * 1000 * WEIGHT[$1] / TOTAL_W )); }
DEADLINE=$(( START + BUDGET * 1000 - $(box_ms 7) ))    # the summary's share stays free
# reserve_ms K: what the selected steps after step K are owed
reserve_ms() {
    local r=0 s
    for s in "${SELECTED[@]}"; do [ "$s" -gt "$1" ] && r=$(( r + $(box_ms "$s") )); done
    echo "$r"
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ablate-gpu-check.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
SITE="$WORK/site"
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
if [ "$DRY" -eq 1 ]; then
    export ABLATE_CHECK_ABSENT="$ABSENT" PYTHONPATH="$HERE/device_env:$PYTHONPATH"
fi
cd "$ROOT" || exit 2

# run_cmd LOG END_MS CMD...: runs CMD with its output appended to LOG, stopped at END_MS less the
# kill grace; appends one `== result:` line (read by summarize.py) and returns 0 only when ok.
run_cmd() {
    local log="$1" end="$2" t0 limit rc status took
    shift 2
    t0=$(now_ms)
    limit=$(( end - t0 - GRACE_MS ))
    echo "\$ $*" >>"$log"
    if [ "$limit" -lt 1000 ]; then
        echo "== result: not run (no time left in the budget), after 0.0 s, limit 0.0 s" >>"$log"
        return 1
    fi
    timeout --kill-after="$(secs $GRACE_MS)" "$(secs $limit)" "$@" </dev/null >>"$log" 2>&1
    rc=$?
    took=$(( $(now_ms) - t0 ))
    case $rc in
        0) status="ok" ;;
        124|137) status="timed out" ;;
        *) status="failed" ;;
    esac
    echo "== result: $status after $(secs $took) s, limit $(secs $limit) s, exit $rc" >>"$log"
    [ "$rc" -eq 0 ]
}

# step K TITLE: starts step K's log and sets STEP_END (its deadline) and LOG
step() {
    LOG="$RESULTS/${LOGS[$1]}"
    STEP_END=$(( DEADLINE - $(reserve_ms "$1") ))
    echo "== step $1: $2 ($( [ "$DRY" -eq 1 ] && echo "CPU dry run, smoke size" || echo "GPU" ); up to $(secs $(( STEP_END - $(now_ms) ))) s)" >"$LOG"
}

# report K: one line on stdout per step, and the end of the log when it did not go well
report() {
    local line
    line=$(grep '^== result:' "$LOG" | grep -v ': ok ' | tail -1)
    if [ -z "$line" ]; then
        echo "step $1: ok ($(grep -c '^== result: ok' "$LOG") command(s))"
    else
        echo "step $1: ${line#== result: }"
        tail -n 8 "$LOG" | sed 's/^/    | /'
    fi
}

if [ "$DRY" -eq 1 ]; then DEVICE=cpu; else DEVICE=cuda; fi

# -- 0: setup: the wheels, the machine, the versions ------------------------------------------
step 0 "install and versions"
if [ "$DRY" -eq 1 ]; then
    run_cmd "$LOG" "$STEP_END" "$PY" "$HERE/install.py" "$WHEELS" "$SITE" --plan-only
else
    run_cmd "$LOG" "$STEP_END" "$PY" "$HERE/install.py" "$WHEELS" "$SITE"
    [ -d "$SITE" ] && export PYTHONPATH="$SITE:$PYTHONPATH"
fi
if command -v nvidia-smi >/dev/null 2>&1; then
    smi=$(timeout 20 nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -1)
    echo "driver: $(cut -d, -f2 <<<"$smi" | tr -d ' ') (nvidia-smi: $smi)" >>"$LOG"
else
    echo "driver: none (no nvidia-smi)" >>"$LOG"
fi
if command -v git >/dev/null 2>&1 && git -C "$ROOT" rev-parse HEAD >/dev/null 2>&1; then
    echo "revision: $(git -C "$ROOT" rev-parse HEAD)$(git -C "$ROOT" diff --quiet HEAD -- 2>/dev/null || echo ' (with changes)')" >>"$LOG"
elif [ -f "$WHEELS/REVISION" ]; then    # the tree travels without .git: wheels.sh noted the commit
    echo "revision: $(cat "$WHEELS/REVISION") (when wheels.sh ran; no .git here)" >>"$LOG"
fi
run_cmd "$LOG" "$STEP_END" "$PY" "$HERE/versions.py"
report 0

# -- 1: the cuda-marked tests ----------------------------------------------------------------
if [[ " ${SELECTED[*]} " == *" 1 "* ]]; then
    step 1 "the cuda-marked tests"
    run_cmd "$LOG" "$STEP_END" "$PY" -m pytest -q -p no:cacheprovider -m cuda -rs tests/train/test_cuda.py
    report 1
fi

# -- 2: the quickstart on the device (its table beside the CPU one: reports/quickstart/lift.md) -
if [[ " ${SELECTED[*]} " == *" 2 "* ]]; then
    step 2 "the quickstart on $DEVICE"
    args=(-m ablate run quickstart --device "$DEVICE" --store "$WORK/quickstart.db" --out "$WORK/quickstart"
          --format md,csv)
    [ "$DRY" -eq 1 ] && args+=(--shrink)
    run_cmd "$LOG" "$STEP_END" "$PY" "${args[@]}"
    { echo; echo "-- the CPU table (reports/quickstart/lift.md, from the README's run):"; cat reports/quickstart/lift.md; } >>"$LOG"
    report 2
fi

# -- 3: throughput: trainer vs bare loop vs DataLoader, eager then compiled -------------------
if [[ " ${SELECTED[*]} " == *" 3 "* ]]; then
    step 3 "gpu_throughput.py, eager and compiled"
    if [ "$DRY" -eq 1 ]; then
        sizes=(--smoke --device cpu)
        backend=(--compile-backend aot_eager)
    else
        # 20480 = 40 x 512: every batch full, one input shape for torch.compile
        sizes=(--device cuda --train-size 20480 --batch-size 512 --epochs 3 --repeats 1)
        backend=()
    fi
    models=(--models resnet20,resnet18,airbench)
    eager_end=$(( $(now_ms) + (STEP_END - $(now_ms)) * 2 / 5 ))    # compiling takes the larger share
    echo "-- throughput eager" >>"$LOG"
    run_cmd "$LOG" "$eager_end" "$PY" benchmarks/gpu_throughput.py "${sizes[@]}" "${models[@]}"
    echo "-- throughput compile" >>"$LOG"
    run_cmd "$LOG" "$STEP_END" "$PY" benchmarks/gpu_throughput.py "${sizes[@]}" "${models[@]}" --compile "${backend[@]}"
    report 3
fi

# -- 4: fused trials vs one at a time ----------------------------------------------------------
if [[ " ${SELECTED[*]} " == *" 4 "* ]]; then
    step 4 "fused_trials.py: 5 seeds of ResNet-20, the 5-arm x 5-seed design"
    if [ "$DRY" -eq 1 ]; then sizes=(--smoke --device cpu); else sizes=(--device cuda --train-size 5120 --epochs 1); fi
    run_cmd "$LOG" "$STEP_END" "$PY" benchmarks/fused_trials.py "${sizes[@]}" --repeats 1 --cases seeds,design
    report 4
fi

# -- 5: the headline: 9 arms x 5 seeds of airbench at its CIFAR-10 schedule ---------------------
if [[ " ${SELECTED[*]} " == *" 5 "* ]]; then
    step 5 "airbench_ablation.py, the headline"
    if [ "$DRY" -eq 1 ]; then sizes=(--smoke --device cpu); else sizes=(--device cuda); fi
    run_cmd "$LOG" "$STEP_END" "$PY" benchmarks/airbench_ablation.py "${sizes[@]}"
    report 5
fi

# -- 6: the peak-memory column and torch.compile's time ----------------------------------------
if [[ " ${SELECTED[*]} " == *" 6 "* ]]; then
    step 6 "peak memory and compile time (compile_memory.py)"
    if [ "$DRY" -eq 1 ]; then sizes=(--smoke --device cpu --backend aot_eager); else sizes=(--device cuda); fi
    run_cmd "$LOG" "$STEP_END" "$PY" benchmarks/gpu/compile_memory.py "${sizes[@]}"
    report 6
fi

# -- the summary -----------------------------------------------------------------------------
echo
dry_flag=()
[ "$DRY" -eq 1 ] && dry_flag=(--dry-run)
took=$(secs $(( $(now_ms) - START )))
steps_csv=$(IFS=,; echo "${SELECTED[*]}")
left=$(( START + BUDGET * 1000 - $(now_ms) ))
if ! timeout "$(secs $(( left > 3000 ? left : 3000 )))" "$PY" "$HERE/summarize.py" "$RESULTS" --steps "$steps_csv" --budget "$BUDGET" --took "$took" \
        "${dry_flag[@]}"; then
    echo "the summary could not be written: read the step logs in $RESULTS"
    exit 1
fi
grep -q '^all steps ok: yes' "$RESULTS/summary.txt"
