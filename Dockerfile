# One server process: API, scheduler and dashboard (DuckDB allows one writer; APScheduler 3 must
# run once); with DRIFTWATCH_INGEST_PORT it starts its ingest front, a second process, itself.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    DRIFTWATCH_DATA_DIR=/data DRIFTWATCH_HOST=0.0.0.0 DRIFTWATCH_PORT=8000
WORKDIR /app
COPY pyproject.toml README.md ./
COPY monitor ./monitor
COPY detectors ./detectors
COPY dashboard ./dashboard
COPY alerts ./alerts
COPY storage ./storage
RUN pip install --no-cache-dir . && useradd --system --home /data driftwatch && mkdir -p /data && chown driftwatch /data
USER driftwatch
VOLUME ["/data"]
EXPOSE 8000 8001
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/api/v1/ready').status != 200)"
CMD ["driftwatch", "serve"]
