"""The de-identification service: consumes ``slides.uploaded.v1``, publishes
``slides.deidentified.v1`` (or a rejection), and owns the pseudonym vault."""
