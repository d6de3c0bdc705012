"""Use cases: the one API that every entry point calls."""
