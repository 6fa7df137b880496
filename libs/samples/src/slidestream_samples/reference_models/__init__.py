"""The reference models the platform ships: a tile tissue-type classifier and a tile embedding.

Made in this repository, never downloaded: ``make models`` paints slides with planted tissue
types (:mod:`slidestream_samples.tissue_types`), reads labelled tiles from them through the one
slide reader (:mod:`~.dataset`), trains one small CNN with torch in Triton's environment
(:mod:`~.train`, a script: the workspace environment has no torch) and writes
``.local/models/<name>/model.pt`` (TorchScript) beside ``card.json`` (:mod:`~.build`), the
held-out accuracy in the card's metrics. ``make demo`` pushes them.

``python -m slidestream_samples.reference_models build --torch-python PY --out DIR``
"""
