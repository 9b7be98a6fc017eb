"""Tools the agent may use during a run: built-in file tools and MCP servers."""
