#!/usr/bin/env bash
# Python package and its dependencies (editable, with the test tools).
set -euo pipefail
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -e '.[dev]'
