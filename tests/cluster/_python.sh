# Sourced by up/down: the Python to run cluster.py and the node agent with
# (its bin dir is what pods find first on PATH): $PYTHON, else the active
# virtualenv, else the repo's .venv, else python3.
root="$(cd "$here/../.." && pwd)"
if [ -n "${PYTHON:-}" ]; then PY="$PYTHON"
elif [ -n "${VIRTUAL_ENV:-}" ] && [ -x "$VIRTUAL_ENV/bin/python" ]; then PY="$VIRTUAL_ENV/bin/python"
elif [ -x "$root/.venv/bin/python" ]; then PY="$root/.venv/bin/python"
else PY=python3
fi
