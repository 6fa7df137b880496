#!/usr/bin/env bash
# The cohorts and similarity guide, end to end: facets → a cohort → free text → export →
# similar tissue by region and by whole slide.
# Needs: SLIDESTREAM_TOKEN (a partner token: it alone decides whose slides you see), SEARCH_API
# (the local stack: http://127.0.0.1:8091), SLIDE_ID (one of your slides that the tile-embedding
# model has analysed) and OUT (a folder for the export).
set -euo pipefail

# 1. What is there: every slide of your tenant, counted by the usual facets.
slidestream search --facets --limit 5

# 2. A cohort: H&E colon slides that passed QC, where tumour wins in more than 30 % of the tiles
#    (the tissue-type model's slide summary `fraction:tumour`), newest first.
slidestream search \
  --filter 'stain=H&E' --filter organ=colon --filter qc_verdict=pass \
  --filter 'score.tissue-type.fraction:tumour>0.3' --sort -uploaded_at

# 3. Free text over names and descriptions (project, organ, stain, scanner, pseudonyms ...).
slidestream search colon --limit 5

# 4. The whole cohort as CSV, one row per slide, every field and score as a column.
slidestream search --filter organ=colon --filter qc_verdict=pass --export csv --out "$OUT/cohort.csv"

# 5. Slides with tissue like a region (x,y,width,height in level-0 pixels) of one slide.
slidestream search similar --slide "$SLIDE_ID" --region 0,0,512,512 --k 5

# 6. Slides like a whole slide (compared by their mosaics of representative tiles), as JSON.
slidestream search similar --slide "$SLIDE_ID" --k 5 --json > "$OUT/similar.json"
