"""The upload service's pure logic: what to admit, what the bytes are, how batches reconcile."""
