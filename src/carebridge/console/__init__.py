"""The web console entry point."""
