# Sourced by the other scripts: puts the project's Python environment first on
# PATH so that tch's build finds the torch it installed (LIBTORCH_USE_PYTORCH).
DEEPSTYLE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export DEEPSTYLE_ROOT
export DEEPSTYLE_VENV="$DEEPSTYLE_ROOT/.venv"
export PATH="$DEEPSTYLE_VENV/bin:$HOME/.cargo/bin:$PATH"
export LIBTORCH_USE_PYTORCH=1
