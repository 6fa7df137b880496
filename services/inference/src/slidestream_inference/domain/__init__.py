"""Pure logic of inference: tile normalisation, aggregation into heat maps, summaries and
embeddings (no SDKs)."""
