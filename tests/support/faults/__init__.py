"""The fault suite's machinery (``tests/faults``, ``make test-faults``): a stack of its own on
free loopback ports — a 3-node KRaft Kafka cluster, MinIO, PostgreSQL, Toxiproxy in front of
each, the pipeline services — batches of generated slides, the faults, and the checks of what
the topics, the buckets and the consumer groups hold afterwards."""
