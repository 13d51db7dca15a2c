"""The streaming half: stateful dedup / late / signal join / rule features, and the micro-batch writers."""
