#!/usr/bin/env bash
# The toy comparison of the README: the embedded toy dataset trained and tested with and without
# SWAHR (same data, epochs, schedule, seed and thread count: tools/run_toy.sh once per config),
# then both APs side by side. About twice the time of README command 1.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT="${WORK_DIR:-work_dirs/toy_swahr_compare}"
mkdir -p "$OUT"
rm -f "$OUT/times.txt"

declare -A CONFIGS=(
    [higherhrnet]=configs/toy/higherhrnet_toy_synthetic.py
    [swahr]=configs/toy/higherhrnet_toy_synthetic_swahr.py
)
for name in higherhrnet swahr; do
    start=$SECONDS
    CONFIG="${CONFIGS[$name]}" WORK_DIR="$OUT/$name" bash tools/run_toy.sh
    echo "$name: $((SECONDS - start)) s" >> "$OUT/times.txt"
done

echo "toy AP, flip test (${CONFIGS[higherhrnet]} vs ${CONFIGS[swahr]}):"
for name in higherhrnet swahr; do
    printf '  %-12s %s  (%s)\n' "$name" \
        "$(grep -o 'coco/AP: [0-9.]*' "$OUT/$name/test.log" | tail -1)" \
        "$(grep "^$name:" "$OUT/times.txt" | tail -1 | cut -d' ' -f2-)"
done
