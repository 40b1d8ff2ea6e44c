#!/usr/bin/env bash
# README command 1, the embedded default: set up if needed, make the synthetic dataset, train the
# toy HigherHRNet, evaluate it with mim test and print its AP.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/tools/setup_env.sh"
cd "$ROOT"
export PATH="$ROOT/.venv/bin:$PATH"
# The toy config trains deterministically (randomness.deterministic); float results on CPU
# still depend on the thread count, so it is fixed (override: OMP_NUM_THREADS=1 bash ...).
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" MKL_NUM_THREADS="${OMP_NUM_THREADS:-2}"
# CONFIG: another toy config, e.g. the SWAHR one (tools/compare_swahr_toy.sh).
CONFIG="${CONFIG:-configs/toy/higherhrnet_toy_synthetic.py}"
WORK_DIR="${WORK_DIR:-work_dirs/toy}"

python tools/make_toy_dataset.py --out data/toy --num-train 200 --num-val 40 --size 256 --seed 0
mim train mmpose "$CONFIG" --work-dir "$WORK_DIR"
CKPT="$WORK_DIR/$(cat "$WORK_DIR/last_checkpoint" | xargs basename)"
mim test mmpose "$CONFIG" --checkpoint "$CKPT" --work-dir "$WORK_DIR/test" | tee "$WORK_DIR/test.log"
echo "checkpoint: $CKPT"
grep -o "coco/AP: [0-9.]*" "$WORK_DIR/test.log" | tail -1
