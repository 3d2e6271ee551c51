"""A small MCP server over streamable HTTP for the agent tests (PyPI mcp 2.x).

usage: facts_server.py PORT [json]   (json: plain JSON answers instead of SSE streams)
Tools: capital_of(country), word_count(text), wait(seconds).
"""

import asyncio
import sys

from mcp.server.mcpserver import MCPServer

CAPITALS = {"france": "Paris", "japan": "Tokyo", "kenya": "Nairobi", "peru": "Lima"}

server = MCPServer("facts")


@server.tool()
def capital_of(country: str) -> str:
    """The capital city of a country."""
    return CAPITALS.get(country.strip().lower(), "unknown")


@server.tool()
def word_count(text: str) -> int:
    """How many words a text has."""
    return len(text.split())


@server.tool()
async def wait(seconds: float) -> str:
    """Waits, then says so (for timeouts)."""
    await asyncio.sleep(seconds)
    return "waited"


if __name__ == "__main__":
    port = int(sys.argv[1])
    json_answers = len(sys.argv) > 2 and sys.argv[2] == "json"
    server.run("streamable-http", host="127.0.0.1", port=port, json_response=json_answers)
