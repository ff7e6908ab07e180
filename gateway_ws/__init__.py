"""gateway_ws package."""
