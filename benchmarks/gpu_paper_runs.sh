#!/usr/bin/env bash
# The paper runs of issue 7 on a GPU, as one prepared script (both models at once).
#
#   bash benchmarks/gpu_paper_runs.sh OUT_DIR            # on the machine with the GPU
#   DEVICE=cpu EPOCHS=1 bash benchmarks/gpu_paper_runs.sh /tmp/smoke   # a smoke test anywhere
#
# Run it from the repository root, with MNIST in data/mnist/ (or $COURSE_DATA_DIR/mnist/);
# the machine needs torch, numpy and tqdm, not the course's virtual environment.  It
#   1. prints the GPU and torch version,
#   2. times 2 epochs of sparse-VD LeNet-5 with the paper recipe (the trainer's own
#      per-epoch seconds, so the 200-epoch time can be estimated before committing to it),
#   3. starts `python -m course_lib.train --recipe paper` for LeNet-5 and LeNet-300-100 as two
#      processes sharing the GPU (each is bound by kernel-launch latency, not by the GPU's
#      arithmetic, so running them side by side costs little), with --resume, so that a
#      second call of this script on the same machine continues where a time limit cut it.
# Results: OUT_DIR/<model>-paper.json (the trainer's metrics.json, copied when a run ends)
# and OUT_DIR/<model>.log.  Copy the json files to benchmarks/results/ and re-execute
# chapters/09_lenet5.ipynb, which shows them.
set -euo pipefail
OUT_DIR=${1:?usage: bash benchmarks/gpu_paper_runs.sh OUT_DIR}
DEVICE=${DEVICE:-cuda}
EPOCHS=${EPOCHS:-}
PY=${PYTHON:-python3}
mkdir -p "$OUT_DIR" runs
export PYTHONUNBUFFERED=1
epochs_flag=()
[ -n "$EPOCHS" ] && epochs_flag=(--epochs "$EPOCHS")

if [ "$DEVICE" != cpu ]; then
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
fi
"$PY" -c "import torch; print('torch', torch.__version__, '| cuda available:', torch.cuda.is_available())"

echo "== probe: LeNet-5, paper recipe, 2 epochs on $DEVICE"
rm -rf runs/gpu-probe
"$PY" -m course_lib.train --model lenet5 --recipe paper --epochs 2 --device "$DEVICE" \
    --out runs/gpu-probe --quiet

echo "== paper runs (both at once) on $DEVICE"
for model in lenet5 lenet300; do
    (
        "$PY" -m course_lib.train --model "$model" --recipe paper "${epochs_flag[@]}" \
            --device "$DEVICE" --out "runs/$model-paper" --resume --quiet \
            > "$OUT_DIR/$model.log" 2>&1 \
        && cp "runs/$model-paper/metrics.json" "$OUT_DIR/$model-paper.json"
    ) &
done
wait
tail -n 2 "$OUT_DIR"/*.log
ls -l "$OUT_DIR"
