"""The agents' WebSocket gateway (any number of processes share the agent port)."""
