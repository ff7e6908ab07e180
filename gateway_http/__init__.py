"""HTTP gateway: REST API, dashboard, observer WebSocket, uploads (aiohttp)."""
