"""Normalized models, value types, code sets and events: the standard library and pydantic only."""
