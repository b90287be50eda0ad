#!/usr/bin/env bash
# One call of a lent GPU machine (issues 28, 37, 40): the GPU check, the fusion sweep, then $GPU_STUDY
# (default studies/cifar10_lt_gpu_recipe.yaml, 15 trials fused; studies/cifar10_lt_gpu.yaml packs 4) through
# `smcl-tune run` at the largest equal epoch budget the time left allows, then its leaderboard and a
# compressed copy of its store. Each section writes its files to $OUT as it ends, so a call cut
# short still returns what finished. Carry .gpu-data (data + WITH_STUDY=1 bundle.sh).
#
#   OUT=/tmp/out GPU_RUN_SECONDS=420 bash benchmarks/gpu/gpu_run.sh      # on the GPU machine
#   OUT=/tmp/out GPU_RUN_DRY=1 bash benchmarks/gpu/gpu_run.sh            # a dry run on a CPU
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:?set OUT to the folder for the results}
mkdir -p "$out"
python=${PYTHON:-python3}
if [[ -n ${GPU_RUN_DRY:-} ]]; then
    # a store of this run's own, under $OUT: a dry run that found an earlier one's (cut by its
    # timeout) would resume its last trials rather than run the study. In 540 s, 6 of its 15 trials
    # end on 2 cores (each member evaluates the 10,000 test images); the cut ends the rest
    budget=${GPU_RUN_SECONDS:-540}
    storage=${GPU_RUN_STORAGE:-$out/gpu-study}
    [[ -z ${GPU_RUN_STORAGE:-} ]] && rm -rf "$storage"
else
    budget=${GPU_RUN_SECONDS:-420}  # the whole script, seconds
    storage=${GPU_RUN_STORAGE:-/tmp/gpu-study}  # outside $OUT: the device tool brings back 8 files at most
fi
study_file=${GPU_STUDY:-studies/cifar10_lt_gpu_recipe.yaml}  # fused: its budget comes from section 1b
study_name=$(basename "$study_file" .yaml)
export PYTHONUNBUFFERED=1 RAY_DEDUP_LOGS=0
# GPU_RUN_PART: all (one call), measure (sections 1-1c: a first call of about 5 minutes) or study
# (sections 2-3: a second call, given the first call's fused_speed.jsonl as FUSED_ROWS and, when
# its section 1a passed, GRAPHS_TESTED=1)
part=${GPU_RUN_PART:-all}
fused_rows=${FUSED_ROWS:-$out/fused_speed.jsonl}
graphs_tested=${GRAPHS_TESTED:-}
left() { echo $((budget - SECONDS)); }
smcl() { "$python" -m smcl_tune.cli "$@"; }

# 0. the machine and the packages the image lacks
{
    date -u
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
    if ! "$python" -c "import ray, optuna, mlflow, pydantic" 2>/dev/null; then
        bash .gpu-data/wheels/install.sh /tmp/smcl-gpu-site "$python"
        export PYTHONPATH=/tmp/smcl-gpu-site  # { } runs in this shell: the export stays
    fi
} > "$out/00_setup.txt" 2>&1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
"$python" -c "import sys, torch, torchvision, ray, optuna, mlflow, pydantic, smcl_tune.study.runner
print(sys.version.split()[0], torch.__version__, torchvision.__version__, ray.__version__, optuna.__version__, mlflow.__version__)" \
    >> "$out/00_setup.txt" 2>&1
if ! "$python" -c "import ray, optuna, mlflow, pydantic" >> "$out/00_setup.txt" 2>&1; then
    # every section needs them: say so at once rather than in eight files of import errors
    echo "Ray, Optuna, MLflow or pydantic is missing: build .gpu-data/wheels (WITH_STUDY=1 bash benchmarks/gpu/bundle.sh) and carry it" >> "$out/00_setup.txt"
    exit 2
fi
echo "setup done at ${SECONDS} s" >> "$out/00_setup.txt"

if [[ $part != study ]]; then
# 1. the GPU check: sync-debug epoch, CE and SMCL, four packed SMCL trials
if [[ -n ${GPU_RUN_DRY:-} ]]; then
    check_args=(--cpu --epochs 2 --ray-epochs 1 --steps-per-epoch 2)
else
    check_args=(--epochs "${CHECK_EPOCHS:-20}" --ray-epochs "${RAY_EPOCHS:-6}")
fi
[[ -n ${CHECK_SKIP:-} ]] && check_args+=(--skip $CHECK_SKIP)  # e.g. CHECK_SKIP=ray: the packed trials, measured by the first run
GPU_CHECK_LOG="$out/01_gpu_check.log" timeout -k 10 "${CHECK_SECONDS:-200}" \
    bash benchmarks/gpu/gpu_check.sh "${check_args[@]}" > /dev/null 2>> "$out/00_setup.txt"
echo "check ended at ${SECONDS} s (exit $?)" >> "$out/01_gpu_check.log"

# The device tool brings back 8 files at most: sections 1a and 1c append to section 1's log.
# 1a. CUDA's own count of the host's waits in an epoch, the same for few and many steps (issue 43, item 1);
# skipped on a CPU
{
    echo "=== 1a. tests/trial/test_host_copies.py, test_graph_step.py, test_group_graphs.py and test_slot_values.py -k cuda"
    timeout -k 5 "${SYNC_TEST_SECONDS:-120}" "$python" -m pytest -q -p no:cacheprovider --noconftest \
        tests/trial/test_host_copies.py tests/trial/test_graph_step.py tests/trial/test_group_graphs.py \
        tests/trial/test_slot_values.py -k cuda
    cuda_tests=$?
    echo "sync test ended at ${SECONDS} s (exit $cuda_tests)"
    [[ $cuda_tests == 0 ]] && graphs_tested=1
} >> "$out/01_gpu_check.log" 2>&1

# 1b. fused trials (issue 37): summed images/s, peak memory and one member's s/step at each group
# size, each step replayed as a CUDA graph (FUSE_SIZES), then eager (FUSE_EAGER_SIZES); every row is
# appended to fused_speed.jsonl as it ends, so a cut run keeps its rows (a dry run: eager, on the CPU)
{
    if [[ -n ${GPU_RUN_DRY:-} ]]; then
        timeout -k 10 "${FUSE_SECONDS:-150}" "$python" benchmarks/fused_speed.py --device cpu --members 1,2 \
            --steps 1 --batch 16 --methods smcl --strategies vmap --output "$out/fused_speed.jsonl"
    else
        timeout -k 10 "${FUSE_SECONDS:-150}" "$python" benchmarks/fused_speed.py --device cuda \
            --members "${FUSE_SIZES:-1,4,8,16,32}" --steps "${FUSE_STEPS:-20}" --methods smcl --strategies graph \
            --output "$out/fused_speed.jsonl"
        echo "graphed fusion sweep ended at ${SECONDS} s (exit $?)"
        timeout -k 10 "${FUSE_EAGER_SECONDS:-60}" "$python" benchmarks/fused_speed.py --device cuda \
            --members "${FUSE_EAGER_SIZES:-8}" --steps "${FUSE_STEPS:-20}" --methods smcl --strategies vmap \
            --output "$out/fused_speed.jsonl"
        echo "eager fusion sweep ended at ${SECONDS} s (exit $?)"
        # what the study's steps are to be: members that mask half the time, graphed and eager, at the
        # study's group size (study_at_epochs.py --graphs compares these rows)
        timeout -k 10 "${FUSE_STUDY_SECONDS:-90}" "$python" benchmarks/fused_speed.py --device cuda \
            --members "${FUSE_STUDY_SIZES:-16}" --steps "${FUSE_STEPS:-20}" --methods smcl_half \
            --strategies vmap,graph --output "$out/fused_speed.jsonl"  # eager first: the study's budget needs it
    fi
    echo "fusion sweep ended at ${SECONDS} s (exit $?)"
} > "$out/01b_fused_speed.txt" 2>&1

# 1c. one unfused CE and SMCL trial with each step replayed as a CUDA graph (training.cuda_graph,
# issue 37 stage c) against section 1's eager rows (issue 40, call 1, item 2); COMPILE_EPOCHS adds
# torch.compile's reduce-overhead (CUDA graphs of the network alone). GRAPH_EPOCHS=0 leaves 1c out;
# both are refused on a CPU, so a dry run skips it.
{
    echo "=== 1c. CE and SMCL trials graphed"
    if [[ -n ${GPU_RUN_DRY:-} ]] || (( ${GRAPH_EPOCHS:-4} == 0 )); then
        echo "graphed: skipped (a dry run, or GRAPH_EPOCHS=0)"
    else
        timeout -k 10 "${GRAPH_SECONDS:-120}" "$python" benchmarks/gpu/check.py --epochs 0 \
            --graph-epochs "${GRAPH_EPOCHS:-4}" --compile-epochs "${COMPILE_EPOCHS:-0}" \
            --compile-mode reduce-overhead --skip sync ray
        echo "graphed runs ended at ${SECONDS} s (exit $?)"
    fi
} >> "$out/01_gpu_check.log" 2>&1

fi  # the measurements

if [[ $part != measure ]]; then
# 2. the study, at the budget that leaves 75 s for a forced stop (30 s), the leaderboard and the store
study_seconds=$(( $(left) - 75 ))
if [[ -n ${GPU_RUN_DRY:-} ]]; then
    study_args=(--epochs 2 --cpu)
    fallback_args=("${study_args[@]}")
else
    study_args=(--seconds "$study_seconds" --log "$out/01_gpu_check.log" --fused-rows "$fused_rows")
    [[ -n $graphs_tested ]] && study_args+=(--graphs)  # graphed steps only once their CUDA tests passed
    # when no budget can be priced; where the sweep wrote no fused GPU row (fusion failed on this GPU),
    # study_at_epochs.py runs the same trials unfused, packed 4 to the GPU, in either call
    fallback_args=(--epochs 6 --fused-rows "$fused_rows")
fi
{
    if (( study_seconds < 60 )); then
        echo "study skipped: ${study_seconds} s left for it at ${SECONDS} s (GPU_RUN_SECONDS=${budget})"
    else
        if [[ -f $storage/study.yaml ]]; then  # a second call resumes the first's study: the same file
            cp "$storage/study.yaml" "$out/study.yaml"
            echo "resuming the study of an earlier call ($storage/study.yaml)"
        else
            "$python" benchmarks/gpu/study_at_epochs.py "$study_file" "${study_args[@]}" \
                --storage "$storage" --out "$out/study.yaml" \
                || "$python" benchmarks/gpu/study_at_epochs.py "$study_file" "${fallback_args[@]}" \
                    --storage "$storage" --out "$out/study.yaml"
            mkdir -p "$storage" && cp "$out/study.yaml" "$storage/study.yaml"
        fi
        echo "study started at ${SECONDS} s with ${study_seconds} s"
        timeout -s INT -k 30 "$study_seconds" "$python" -m smcl_tune.cli run "$out/study.yaml"  # timeout needs a program, not smcl
        status=$?
        (( status == 124 )) && stopped=": the time limit stopped it, and a second call resumes it" || stopped=""
        echo "study ended at ${SECONDS} s (exit ${status}${stopped})"
    fi
} > "$out/02_study.log" 2>&1

# 3. what a user reads afterwards, and the store without checkpoints. The device tool brings back 8
# files at most, so the leaderboard's files, `status` and the store travel as one archive.
report="$out/report"
mkdir -p "$report"
{
    smcl leaderboard "$study_name" --storage "$storage"
    smcl leaderboard "$study_name" --storage "$storage" --reference
    smcl status "$study_name" --storage "$storage"
} > "$out/03_leaderboard.txt" 2>&1
for format in csv html latex markdown; do
    smcl leaderboard "$study_name" --storage "$storage" --reference --format "$format" \
        --output "$report/leaderboard.${format/latex/tex}" >> "$out/03_leaderboard.txt" 2>&1
done
smcl status "$study_name" --storage "$storage" > "$report/status.txt" 2>&1
cp -r "$storage" "$report/store" 2>/dev/null
find "$report/store" -name 'checkpoint*' -prune -exec rm -rf {} + 2>/dev/null
tar -C "$out" -czf "$out/study.tar.gz" report && rm -rf "$report"
echo "all done at ${SECONDS} s" >> "$out/03_leaderboard.txt"
fi  # the study
