#!/usr/bin/env bash
# The AI teams guide, end to end: export → push → load → route → backfill → results.
# Needs: SLIDESTREAM_TOKEN (a token with the models:write scope), INFERENCE_API, TENANT (whose
# slides the model runs on), TORCH_PYTHON (a Python with torch), and optionally SLIDE_ID (a
# slide of TENANT that already passed QC, for the backfill).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# 1. Export the model to TorchScript.
"$TORCH_PYTHON" "$here/make_model.py" "$work/model.pt"

# 2. Check the card against the model locally, then push (versions are immutable).
slidestream models push "$work/model.pt" --card "$here/card.yaml" --dry-run
slidestream models push "$work/model.pt" --card "$here/card.yaml"

# 3. Load it on Triton: "ready" only once a canary request returned the declared shapes.
slidestream models load guide-tiles

# 4. Route it: every slide of the tenant that passes QC (or warns) from now on.
slidestream models route guide-tiles --tenant "$TENANT" --min-qc warn

# 5. Run it on a slide that went through QC before the route existed, with progress.
if [[ -n "${SLIDE_ID:-}" ]]; then
  slidestream models backfill guide-tiles --slides "$SLIDE_ID"
fi

# 6. What Triton says about it: versions, state, device, request statistics.
slidestream models status guide-tiles
