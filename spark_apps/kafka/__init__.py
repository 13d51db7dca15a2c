"""Kafka plumbing: the embedded local broker, the Spark streaming source and the batch sink."""
