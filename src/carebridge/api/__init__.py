"""The HTTP API entry point (FastAPI): thin routes over services."""
