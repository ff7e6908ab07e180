# The whole Orochi hub in one container: supervisord runs broker, persister and gateways.
FROM python:3.11-slim

RUN useradd --create-home --uid 1000 orochi \
 && mkdir -p /data /run/orochi && chown orochi:orochi /data /run/orochi

WORKDIR /app
COPY pyproject.toml README.md supervisord.conf ./
COPY scitex_orochi ./scitex_orochi
COPY broker ./broker
COPY persister ./persister
COPY gateway_ws ./gateway_ws
COPY gateway_http ./gateway_http
COPY bridges ./bridges
RUN pip install --no-cache-dir '.[postgres]'

ENV SCITEX_OROCHI_HOST=0.0.0.0 \
    SCITEX_OROCHI_PORT=9559 \
    SCITEX_OROCHI_DASHBOARD_PORT=8559 \
    SCITEX_OROCHI_DATA_DIR=/data \
    SCITEX_OROCHI_RUN_DIR=/run/orochi \
    SCITEX_OROCHI_LOG_STDOUT=true \
    PYTHONUNBUFFERED=1

USER orochi
VOLUME ["/data"]
EXPOSE 9559 8559

HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8559/healthz', timeout=2)"

# `serve` migrates the database, creates tokens on first start, then runs
# supervisord in the foreground (see supervisord.conf) and forwards SIGTERM to it.
CMD ["scitex-orochi", "serve"]
