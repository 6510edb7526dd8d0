#!/bin/sh
# Two trainings sharing the machine: the wall time of one alone, then of each of two started
# together, with the same command (numcnn's defaults: every core, its own threads).
#
#     sh benchmarks/concurrent.sh [repetitions]
#
# Fair sharing of the cores makes each of the two take about twice as long as one alone.
set -e
reps=${1:-2}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
run() {  # run NAME: one training, prints NAME and its wall time in seconds
    start=$(date +%s.%N)
    numcnn train --model simple-convnet --dataset sample --epochs 2 --limit 6000 \
        --out "$work/$1" --overwrite --no-progress --no-plots >/dev/null
    awk -v name="$1" -v start="$start" -v end="$(date +%s.%N)" 'BEGIN { printf "%s %.1f s\n", name, end - start }'
}
for rep in $(seq "$reps"); do
    run "alone-$rep"
    run "together-$rep-a" & run "together-$rep-b" & wait
done
