#!/bin/bash
# Where a tool's wall time goes while pgops (or the raw pipeline) runs it: polls /proc/<pid>/schedstat of
# every process named TOOL (default pg_dump) every 50 ms and, when one exits, prints its wall time split into
# run (on a CPU), runq-wait (runnable, waiting for a CPU) and other (blocked: a full pipe, the server).
# Start it in the background, run the commands to compare, then stop it:
#   TOOL=pg_restore bench/schedstat.sh > sched.txt & ...; kill %1
# The split is from the last sample before exit (up to 50 ms early); wall is from the first sample.
tool=${TOOL:-pg_dump}
declare -A last first
while true; do
  now=$(date +%s.%N)
  for p in $(pgrep -x "$tool"); do
    s=$(cat "/proc/$p/schedstat" 2>/dev/null) || continue
    [ -z "${first[$p]}" ] && first[$p]=$now
    last[$p]="$s $now"
  done
  for p in "${!last[@]}"; do
    [ -e "/proc/$p" ] && continue
    read -r run wait _ at <<< "${last[$p]}"
    awk -v tool="$tool" -v pid="$p" -v r="$run" -v w="$wait" -v s="${first[$p]}" -v t="$at" 'BEGIN {
      wall = t - s; printf "%s %s wall %.2f run %.2f runq-wait %.2f other %.2f\n", tool, pid, wall, r / 1e9, w / 1e9, wall - r / 1e9 - w / 1e9 }'
    unset "last[$p]" "first[$p]"
  done
  sleep 0.05
done
