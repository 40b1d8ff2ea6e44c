#!/usr/bin/env bash
# Build the project's environment in .venv/ from nothing (idempotent).
#
# Order and pins are explained in README.md, "Troubleshooting the install". The slow step is
# mmcv 2.1.0, which has no wheels on PyPI: it is compiled once (with its ops) and the wheel is
# cached outside the repo, keyed by mmcv, torch, Python and CPU/CUDA flavour.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PYTHON="${PYTHON:-python3.11}"
CACHE="${HIGHERHRNET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/higherhrnet_plugin}"
CONSTRAINTS="$ROOT/requirements/constraints.txt"
MMCV_VERSION=2.1.0
TORCH_VERSION=2.14.1

log() { printf '[setup %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

stamp_of() {
  cat "$ROOT/tools/setup_env.sh" "$ROOT"/requirements/*.txt "$ROOT/setup.py" "$ROOT/setup.cfg" \
    | sha256sum | cut -d' ' -f1
}

STAMP="$VENV/.higherhrnet_setup"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$(stamp_of)" ]] \
   && "$VENV/bin/python" -c "import mmcv._ext, mmpose, higherhrnet_plugin" 2>/dev/null; then
  log "environment up to date ($VENV)"
  exit 0
fi

T0=$SECONDS
[[ -x "$VENV/bin/python" ]] || { log "creating $VENV"; "$PYTHON" -m venv "$VENV"; }
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
export PIP_CONSTRAINT="$CONSTRAINTS"

log "torch $TORCH_VERSION, build tools, numpy<2"
"${PIP[@]}" install -q "torch==$TORCH_VERSION" torchvision "setuptools<82" wheel ninja psutil \
  "numpy<2" "pandas<2.3" "opencv-python<5"

# torch.cuda.is_available() decides whether mmcv compiles CUDA ops, so it keys the cache too.
FLAVOUR=$("$VENV/bin/python" -c "import torch; print('cuda' + torch.version.cuda.replace('.', '') if torch.cuda.is_available() else 'cpu')")
PYTAG=$("$VENV/bin/python" -c "import sys; print(f'cp{sys.version_info[0]}{sys.version_info[1]}')")
WHEELDIR="$CACHE/wheels/mmcv-$MMCV_VERSION-torch$TORCH_VERSION-$PYTAG-$FLAVOUR"
if ! ls "$WHEELDIR"/mmcv-*.whl >/dev/null 2>&1; then
  log "building mmcv $MMCV_VERSION with ops ($FLAVOUR) into $WHEELDIR (about 12 min on 2 cores)"
  BUILD=$(mktemp -d)
  trap 'rm -rf "$BUILD"' EXIT
  "${PIP[@]}" download -q --no-deps --no-binary mmcv --no-build-isolation "mmcv==$MMCV_VERSION" -d "$BUILD"
  tar -xzf "$BUILD"/mmcv-"$MMCV_VERSION".tar.gz -C "$BUILD"
  # torch >= 2.10 headers need C++20; mmcv 2.1.0 hard-codes c++14/17 (mmcv #3341).
  sed -i -E "s/-std=c\+\+1[47]/-std=c++20/g" "$BUILD/mmcv-$MMCV_VERSION/setup.py"
  grep -q "c++20" "$BUILD/mmcv-$MMCV_VERSION/setup.py"
  mkdir -p "$WHEELDIR.partial"
  MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" "${PIP[@]}" wheel --no-deps --no-build-isolation \
    "$BUILD/mmcv-$MMCV_VERSION" -w "$WHEELDIR.partial"
  rm -rf "$WHEELDIR" && mv "$WHEELDIR.partial" "$WHEELDIR"   # only a finished wheel lands in the cache
else
  log "reusing cached mmcv wheel from $WHEELDIR"
fi
"${PIP[@]}" install -q --no-deps "$WHEELDIR"/mmcv-*.whl

log "mmengine, mmdet, openmim, mmpose's runtime dependencies, ONNX export and runtime"
"${PIP[@]}" install -q addict packaging pyyaml yapf "mmengine==0.10.7" "mmdet==3.3.0" "openmim==0.3.9" \
  -r "$ROOT/requirements/runtime.txt" -r "$ROOT/requirements/tests.txt" \
  -r "$ROOT/requirements/deploy.txt" -r "$ROOT/requirements/export.txt"
# Not editable and without deps: mim finds tools/train.py only in a regular install (mim #114),
# and mmpose's metadata lists chumpy, which fails to build and is never imported.
"${PIP[@]}" install -q --no-deps "mmpose==1.3.2"
"${PIP[@]}" install -q --no-deps --no-build-isolation -e "$ROOT"

"$VENV/bin/python" -c "import mmcv._ext, mmpose.models, higherhrnet_plugin, mim, numba, onnxruntime, onnxscript" \
  || { log "import check failed"; exit 1; }
stamp_of > "$STAMP"
log "environment ready in $((SECONDS - T0)) s"
