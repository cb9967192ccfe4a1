# ModelFaucet on PostgreSQL: `docker build -t modelfaucet .`, or `docker compose up` with
# deploy/compose.yaml. The steps below are what deploy/smoke.sh runs on a machine without
# Docker (install, migrate, serve, health, stop), so CI checks the recipe itself.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
RUN python -m venv /opt/modelfaucet \
    && /opt/modelfaucet/bin/pip install --no-cache-dir .

FROM python:3.11-slim
# The service writes nothing locally (PostgreSQL holds every row): a user with no home and
# no shell, owning nothing in the image.
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin modelfaucet
COPY --from=build /opt/modelfaucet /opt/modelfaucet
ENV PATH=/opt/modelfaucet/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MODELFAUCET_ENV=production \
    LOG_FORMAT=json \
    HOST=0.0.0.0 \
    PORT=3001
WORKDIR /tmp
USER modelfaucet
EXPOSE 3001
# /ready: the database answers and is migrated.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ['PORT']}/ready\", timeout=4)"]
# SIGTERM: finish the requests in flight, drain the usage queue, exit 0 (allow 30 s).
STOPSIGNAL SIGTERM
ENTRYPOINT ["modelfaucet"]
# About one worker per core; DATABASE_URL must name PostgreSQL (run `db upgrade` first).
CMD ["serve", "--workers", "4"]
