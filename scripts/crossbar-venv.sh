#!/usr/bin/env bash
# Build the crossbar router that the cluster tests run (tests/cluster/router.py)
# in a virtual environment of its own, since its dependencies are not the
# masters': .venv-crossbar, or $CROSSBAR_VENV. Does nothing when it is there
# and works. About 2 minutes from scratch on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${CROSSBAR_VENV:-.venv-crossbar}
python=${PYTHON:-python3}

# What a router worker imports: the serializers too, which is where a
# mismatched NumPy shows.
works() {
    [ -x "$venv/bin/crossbar" ] && "$venv/bin/python" -c "import crossbar.personality" >/dev/null 2>&1
}

if works; then
    exit 0
fi

echo "== building $venv (crossbar)"
rm -rf "$venv"
mkdir -p "$(dirname "$venv")"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
# bjdata's wheel (autobahn's UBJSON serializer) is built against NumPy 1: with
# NumPy 2 the router worker dies on import.
"$venv/bin/python" -m pip install --quiet crossbar "numpy<2"
works || { echo "error: $venv was built but crossbar does not import" >&2; exit 1; }
