#!/usr/bin/env bash
# The GPU checks (../shared/GPU.md), run from the repository root on a machine with a CUDA GPU:
#
#   PROPALIGN_COMMIT=<commit> bash benchmarks/gpu_checks.sh OUTDIR table1 [SECONDS]
#   PROPALIGN_COMMIT=<commit> bash benchmarks/gpu_checks.sh OUTDIR ot
#   PROPALIGN_COMMIT=<commit> bash benchmarks/gpu_checks.sh OUTDIR align [SECONDS]
#
# table1: the GPU tests (tests/test_gpu.py), a speed probe of one training step of the paper's
#   CNN, then Table 1's propensity-score rows under the `paper` profile (128 px, 20,000 / 5,000 /
#   20,000 scenes, 100 epochs), seeds one after another in one process (Dask's in-process
#   scheduler), stopped after SECONDS (default 330). Every finished seed is in the store; the
#   store (and results/recorded/ when all seeds finished) comes back as
#   OUTDIR/table1_records.tgz.
#   Measured on an H200 (2026-12-04): 4.8 ms a training step (float32), so one seed is about
#   2 views x 7,900 steps x 4.8 ms = 76 s of training, after the 45,000 scenes are drawn.
#   Five seeds at once on the one GPU (5 Dask workers) finished none in 300 s.
# ot: one group of n points (the 12-d benchmark of benchmarks/ot_bench.py) on the GPU for
#   ours, GeomLoss and ott-jax, and ours on the machine's CPU cores; records in OUTDIR/ot.jsonl.
#   Measured on an H200 (2026-12-04, commit b11206e): ours 1.1 s at 10^4, 32 s at 10^5, over
#   150 s at 10^6. The torch passes changed after that run (blocks of 2^26 entries, deeper
#   candidates): not yet measured on a GPU.
# align: align() end to end on the simulated atlas (benchmarks/align_atlas.py, 45 types,
#   tol 1e-6) with device=cuda (classifiers and the block passes of the groups solved online),
#   at 10^5, then at 10^6 stopped after SECONDS (default 420); records in OUTDIR/align.jsonl.
#   On the 2-CPU machine: 10^5 in 281 s (matching 266 s; 2026-12-03); 10^6 not run there,
#   its groups' plans are dense (sum of n_g^2 = 4.3x10^10 pairs a Sinkhorn iteration).
#   Not yet run on a GPU. The device has no anndata: carry its cp312 wheels (22 MB without
#   numpy and scipy, which the device has; pandas stays, anndata needs pandas < 3), made by
#     pip download anndata==0.12.19 h5py==3.16.0 pandas==2.3.3 --python-version 3.12 \
#       --only-binary=:all: --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 \
#       -d .whl/align && rm .whl/align/numpy-* .whl/align/scipy-*
#   (checked 2026-12-05 in a Python 3.12 venv holding pandas 3); this mode installs them
#   from $WHEELS (default .whl/align) when anndata is missing.
set -u
OUT=${1:?usage: gpu_checks.sh OUTDIR table1|ot|align [SECONDS]}
WHAT=${2:?usage: gpu_checks.sh OUTDIR table1|ot|align [SECONDS]}
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
# no memory limits on the Dask workers: a machine whose RAM grows as it is used would
# otherwise give each worker a small share of what it reports at start
export DASK_DISTRIBUTED__WORKER__MEMORY__TARGET=False DASK_DISTRIBUTED__WORKER__MEMORY__SPILL=False \
    DASK_DISTRIBUTED__WORKER__MEMORY__PAUSE=False DASK_DISTRIBUTED__WORKER__MEMORY__TERMINATE=False
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, numpy, numba; print('torch', torch.__version__, 'numpy', numpy.__version__, 'numba', numba.__version__, 'cuda', torch.cuda.is_available())"
stamp() { echo "[$(date -u +%H:%M:%S)] $*"; }

if [ "$WHAT" = table1 ]; then
    stamp "GPU tests"
    timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_gpu.py 2>&1 | tail -15
    stamp "speed probe: paper CNN, 128 px, batch 256, 300 steps"
    timeout 90 python3 - <<'EOF'
import time, numpy as np, torch
from propalign_lite import PropensityClassifier
rng = np.random.default_rng(0)
x = rng.integers(0, 255, (256 * 30, 128, 128, 3), dtype=np.uint8)
t = rng.integers(0, 12, len(x))
for precision in ("float32", "bf16"):
    clf = PropensityClassifier("cnn", epochs=10, batch_size=256, device="cuda", precision=precision)
    start = time.perf_counter()
    clf.fit(x, t)
    torch.cuda.synchronize()
    s = clf.history_["seconds"]
    print(f"{precision}: first epoch {s[0]:.2f} s, then {1e3 * np.mean(s[1:]) / 30:.2f} ms a step")
EOF
    stamp "Table 1, paper profile, seeds 1-10"
    mkdir -p /tmp/store
    timeout -k 10 "${3:-330}" python3 -W ignore -m propalign_book.run --profile paper \
        --chapters synthetic.seed --seeds 1-10 --record --store /tmp/store --no-progress 2>&1 | tail -20
    stamp "done"
    tar czf "$OUT/table1_records.tgz" -C /tmp store $(test -d results/recorded/synthetic.seed && echo -C "$PWD" results/recorded/synthetic.seed)
    ls /tmp/store/*/ | head -20
fi

if [ "$WHAT" = ot ]; then
    bench() { timeout "$1" python3 benchmarks/ot_bench.py --json "$OUT/ot.jsonl" "${@:2}" 2>&1 | grep -v "^#\|^ *n " || true; }
    stamp "ours on the GPU"
    bench 100 --device cuda --solvers ours_blocked --n 10000 100000 --timeout 90
    stamp "peers on the GPU"
    bench 80 --device cuda --solvers geomloss --n 10000 30000 --timeout 60   # tensorized: n x n
    bench 80 --device cuda --solvers ott --n 10000 30000 --timeout 60
    stamp "ours on the CPU cores, 16 threads"
    bench 80 --threads 16 --solvers ours_blocked --n 100000 --timeout 70
    stamp "ours on the GPU, n = 10^6"
    bench 200 --device cuda --solvers ours_blocked --n 1000000 --timeout 190
    stamp "done"
fi

if [ "$WHAT" = align ]; then
    python3 -c "import anndata" 2>/dev/null || pip install -q --no-index \
        --find-links "${WHEELS:-.whl/align}" anndata==0.12.19
    atlas() { timeout "$1" python3 benchmarks/align_atlas.py --types 45 --epochs 3 --tol 1e-6 \
        --device cuda --progress --json "$OUT/align.jsonl" "${@:2}" 2>&1 | tail -30 || true; }
    stamp "align, 10^5 cells a side, on the GPU"
    atlas 170 --n 100000
    stamp "align, 10^6 cells a side, on the GPU"
    atlas "${3:-420}" --n 1000000
    stamp "done"
fi
