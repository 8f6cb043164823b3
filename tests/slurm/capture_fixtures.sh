#!/usr/bin/env bash
# Re-capture the scheduler-output fixtures in tests/slurm/data from the real test
# cluster (bash tests/schedulers/up.sh slurm). Takes ~2.5 minutes (one job must hit
# its walltime). The unit tests read these files; they never need a cluster.
set -euo pipefail
out=$(cd "$(dirname "$0")" && pwd)/data
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
SQ=(squeue --states=all --noheader --format='%i|%T|%r')
SA=(sacct -X -n -P -o JobID,State,Reason,ExitCode)
sub() { sbatch --parsable --output=/dev/null --job-name=cj-fixture "$@" | cut -d';' -f1; }
wait_gone() { while "${SQ[@]}" -j "$1" 2>/dev/null | grep -q -E '\|(PENDING|RUNNING|COMPLETING|CONFIGURING)\|'; do sleep 1; done; }

# The tasks of one array asked about by their task IDs (A_k), as clusterjob's packed jobs
# are (~40 s; also alone: `capture_fixtures.sh tasks`). Task 2 exits 3 at once, 1 and 4
# sleep, 3 is cancelled while it runs and 5 while it is still folded into the pending
# record; the array carries a comment, the tag of crash recovery.
capture_tasks() {
    cat >tasks.sh <<'SH'
#!/bin/bash
case $SLURM_ARRAY_TASK_ID in 2) exit 3 ;; 3) sleep 300 ;; *) sleep 8 ;; esac
SH
    local arr tasks
    arr=$(sbatch --output=/dev/null --job-name=cj-fixture --comment=cj-fixture-tag \
        --array=1-6 --hold tasks.sh | tee "$out/sbatch_array.txt" | grep -o '[0-9]*$')
    tasks=$(printf "${arr}_%s," 1 2 3 4 5 6); tasks=${tasks%,}
    "${SQ[@]}" -j "${arr}_2,${arr}_3,${arr}_5" >"$out/squeue_tasks_pending_folded.txt"
    squeue --states=all -h -o '%i|%k' -j "$arr" >"$out/squeue_tag_array_pending.txt"
    scontrol release "${arr}_1" "${arr}_2" "${arr}_3"
    sleep 3
    "${SQ[@]}" -j "$tasks" >"$out/squeue_tasks_mixed.txt"
    scancel "${arr}_3" "${arr}_5"
    sleep 2
    "${SQ[@]}" -j "$tasks" >"$out/squeue_tasks_after_cancel.txt"
    squeue --states=all -h -o '%i|%k' -j "$arr" >"$out/squeue_tag_array_split.txt"
    "${SA[@]}" -j "$arr" >"$out/sacct_array_pending_folded.txt"  # tasks 4 and 6
    scontrol release "$arr" || true  # "Job has already finished" for the cancelled task
    wait_gone "$arr"
    sleep 3
    "${SQ[@]}" -j "$tasks" >"$out/squeue_tasks_finished.txt"
    "${SA[@]}" -j "$tasks" >"$out/sacct_tasks_finished.txt"
    sacct -X -n -P -o JobID,Comment -j "$arr" >"$out/sacct_tag_array.txt"
    { "${SQ[@]}" -j 99999999_1 >/dev/null 2>"$out/squeue_purged_task.stderr"; } || true
}
if [ "${1:-all}" = tasks ]; then capture_tasks; echo "captured into $out"; exit; fi

# array: task 1 fails at once, tasks 2-3 run, task 4 waits (2 CPUs)
cat >array.sh <<'SH'
#!/bin/bash
[ "$SLURM_ARRAY_TASK_ID" = 1 ] && exit 3
sleep 20
SH
arr=$(sub --array=1-4 --hold array.sh)
"${SQ[@]}" -j "$arr" >"$out/squeue_array_pending_folded.txt"
scontrol release "$arr"
sleep 5
"${SQ[@]}" -j "$arr" >"$out/squeue_array_running_one_failed.txt"
"${SQ[@]}" -r -j "$arr" >"$out/squeue_array_tasks.txt"

wait_gone "$arr"
fail=$(sub --wrap 'exit 2')
wait_gone "$fail"
dep=$(sub --dependency=afterok:"$fail" --wrap true)
timeout=$(sub --time=1 --wrap 'sleep 300')
cancel=$(sub --wrap 'sleep 300')
held=$(sub --hold --wrap true)
ok=$(sub --wrap true)
sleep 5
scancel "$cancel" "$held"
"${SQ[@]}" -j "$dep" >"$out/squeue_dependency_never_satisfied.txt"
wait_gone "$ok"
"${SQ[@]}" -j "$fail,$ok,$dep,$timeout,$cancel" >"$out/squeue_many_mixed.txt"
{ "${SQ[@]}" -j 99999999 >"$out/squeue_purged_single.txt" 2>"$out/squeue_purged_single.stderr"; } || true
"${SQ[@]}" -j "$ok,99999999" >"$out/squeue_with_purged_id.txt"
scancel "$dep"
wait_gone "$timeout"
sleep 3
"${SA[@]}" -j "$arr" >"$out/sacct_array_one_failed.txt"
"${SA[@]}" -j "$fail,$cancel,$held,$timeout,$ok,$dep" >"$out/sacct_mixed.txt"
"${SA[@]}" -j "$timeout" >"$out/sacct_timeout.txt"
"${SA[@]}" -j "$held" >"$out/sacct_cancelled_by.txt"  # cancelled while pending: "CANCELLED by <uid>"
"${SA[@]}" -j 99999999 >"$out/sacct_unknown_job.txt"

# accounting disabled: a client configuration without it (and a job completion log)
sed -e 's/^AccountingStorageType=.*/AccountingStorageType=accounting_storage\/none/' \
    -e 's/^JobCompType=.*/JobCompType=jobcomp\/filetxt/' -e '/^JobCompLoc=/d' \
    "${SLURM_CONF:-/etc/slurm/slurm.conf}" >noacct.conf
echo "JobCompLoc=$out/jobcomp_filetxt.log" >>noacct.conf
{ SLURM_CONF=$work/noacct.conf "${SA[@]}" -j "$ok" >/dev/null 2>"$out/sacct_accounting_disabled.stderr"; } || true
SLURM_CONF=$work/noacct.conf sacct -c -n -P -o JobID,State,ExitCode -j 10,3,4,99 \
    >"$out/sacct_jobcomp.txt" 2>"$out/sacct_jobcomp.stderr"
capture_tasks
echo "captured into $out"
