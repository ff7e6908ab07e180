"""gateway_http package."""
