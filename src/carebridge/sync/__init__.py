"""Sync orchestration: streams, cursors and checkpoints."""
