"""The slide lifecycle projection, as pure logic (no Kafka, no database, no SDK)."""
