"""Protocols that services see: the upstream, the store, the job runner, the clock."""
