"""Thin Spark job entrypoints: parse arguments, build the session, call the library, write."""
