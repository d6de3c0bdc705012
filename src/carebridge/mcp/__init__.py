"""The MCP entry point for AI agents: thin tools over services."""
