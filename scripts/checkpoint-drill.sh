#!/usr/bin/env bash
# A full-size drill of checkpoint resumption (the test suite runs a scaled-down one): a cell of
# about a minute with checkpoint_every 5s, its runner killed with kill -9 half way, against the
# same cell run uninterrupted. Prints one JSON line: the step the retry resumed from, the step
# the killed attempt last reported, the training computed twice (in steps and seconds), and
# whether every metric but the timings is the same.
# The kill comes DELAY seconds after the first checkpoint past half way (default 3: between two
# checkpoints). The killed attempt's last reported step is at most a second old, so the training
# computed twice is at most the printed figure plus a second.
#   scripts/checkpoint-drill.sh [STEPS] [DELAY]      (uses .build/release/isosweep, or $ISOSWEEP)
set -euo pipefail
bin=${ISOSWEEP:-$(pwd)/.build/release/isosweep}
steps=${1:-9000}
delay=${2:-3}
dir=$(mktemp -d /tmp/isosweep-drill-XXXXXX)
trap 'kill -9 $(jobs -p) 2>/dev/null || true' EXIT
cd "$dir"
sweep() {
  cat > "$1.yaml" <<EOF
name: $1
resources: {checkpoint_every: $2}
parameters:
  n: {value: 4000}
  d: {value: 100}
  width: {value: 1000}
  max_steps: {value: $steps}
  target_mse: {value: 0}
  n_test: {value: 200}
EOF
}
endpoint() {
  for _ in $(seq 1 300); do
    grep -o 'endpoint=tcp://127.0.0.1:[0-9]*' "$1" 2>/dev/null | head -1 | cut -d= -f2 && return
    sleep 0.1
  done
  echo "no endpoint in $1" >&2; exit 1
}
run_cell() { # NAME INTERVAL KILL(0/1)
  sweep "$1" "$2"
  "$bin" coordinator "$1.yaml" --bind tcp://127.0.0.1:0 --db "$1.db" > "$1.c.out" 2> "$1.c.err" &
  local coordinator=$!
  local at
  at=$(endpoint "$1.c.err")
  "$bin" worker --connect "$at" --slots 1 --prefetch 0 --log-level info > "$1.w.out" 2> "$1.w.err" &
  local worker=$!
  if [ "$3" = 1 ]; then
    while :; do
      newest=$(ls "$1.db.checkpoints" 2>/dev/null | sed -n 's/^[0-9a-f]*\.\([0-9]*\)\.safetensors$/\1/p' | sort -n | tail -1)
      [ -n "$newest" ] && [ "$newest" -ge $((steps / 2)) ] && break
      sleep 0.05
    done
    sleep "$delay"
    kill -9 "$(pgrep -P "$worker" | head -1)"
  fi
  wait "$coordinator"
  kill "$worker"; wait "$worker" || true
  "$bin" table "$1.db" --format json > "$1.json"
}
run_cell reference off 0
run_cell killed 5s 1
python3 - "$steps" <<'EOF'
import json, re, sys
steps = int(sys.argv[1])
ref = json.load(open("reference.json"))[0]
got = json.load(open("killed.json"))[0]
log = open("killed.w.err").read()
died = int(re.search(r"last reported at step (\d+)", log).group(1))
resumed = got["resumed_from_step"]
rate = ref["steps"] / ref["train_seconds"]
timing = {"train_seconds", "lip_seconds", "gflops", "host", "blas", "blas_threads", "blas_core",
          "peak_rss_bytes", "resumed_from_step"}
differ = sorted(k for k in set(ref) | set(got) if k not in timing and ref.get(k) != got.get(k))
print(json.dumps({
    "steps": steps, "steps_per_second": round(rate, 1), "reference_train_seconds": ref["train_seconds"],
    "resumed_from_step": resumed, "killed_attempt_last_reported_step": died,
    "steps_computed_twice_at_least": died - resumed,
    "seconds_computed_twice_at_most": round((died - resumed) / rate + 1, 2),
    "metrics_that_differ": differ,
}))
EOF
