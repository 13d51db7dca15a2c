"""Builders of the aggregate index's business indexes: pure DataFrame -> DataFrame functions."""
