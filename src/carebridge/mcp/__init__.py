"""The MCP server: carebridge's capabilities as agent tools (:mod:`carebridge.mcp.server`),
served over stdio (``carebridge mcp``) or streamable HTTP (``/mcp``, :mod:`carebridge.mcp.http`)."""
