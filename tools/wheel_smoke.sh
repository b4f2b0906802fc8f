#!/usr/bin/env bash
# The wheel is the product: build it, install it (not editable) in a fresh venv, and run evaluate,
# simulate and verify once each from outside the checkout, so a data file or bench that the wheel
# forgets fails here rather than on a user's machine.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
WORK=$(pwd)/build/wheel-smoke
rm -rf "$WORK" && mkdir -p "$WORK/run"
"$PYTHON" -m pip wheel --quiet --no-deps --wheel-dir "$WORK/dist" .
"$PYTHON" -m venv "$WORK/venv"
"$WORK/venv/bin/python" -m pip install --quiet --upgrade pip
"$WORK/venv/bin/python" -m pip install --quiet "$(ls "$WORK"/dist/coexplore-*.whl)[rtl]"
cd "$WORK/run"  # nothing of the checkout is importable from here
CX="$WORK/venv/bin/coexplore"
test "$("$WORK/venv/bin/python" -c 'import coexplore, pathlib; print(pathlib.Path(coexplore.__file__).parent.parent.name)')" = site-packages
"$CX" evaluate --model resnet9 --template nvdla --rows 16 --cols 16 --dram-bw 16 >evaluate.txt
"$CX" simulate --layer conv:h=16,w=16,c=16,k=32,r=3,s=3,stride=1,pad=1 --template systolic-ws --dram-bw 8 >simulate.txt
PATH="$WORK/venv/bin:$PATH" "$CX" verify --layer conv:h=6,c=3,k=4,r=3,stride=1,pad=1 --template systolic-ws \
  --rows 4 --cols 4 >verify.txt
tail -n 3 evaluate.txt simulate.txt verify.txt
echo "wheel smoke: evaluate, simulate and verify ran from the installed wheel"
