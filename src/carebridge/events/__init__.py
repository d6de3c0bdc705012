"""The ordered event log and signed webhook delivery."""
