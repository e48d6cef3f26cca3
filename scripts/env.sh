# Sourced by the other scripts: the project's libtorch toolchain (see scripts/setup).
# torch-sys asks the first python3 on PATH where libtorch is.
SIMVERIFY_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export LIBTORCH_USE_PYTORCH=1
export PATH="$SIMVERIFY_ROOT/.venv/bin:$PATH"
