# One image for the three atomshop services; compose.yaml picks the service by its command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY . .
RUN pip install --require-hashes -r requirements/run.txt \
    && pip install --no-deps . \
    && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin atomshop \
    && mkdir -p /app/data \
    && chown atomshop /app/data

# Never run as root. /app/data holds the per-install SECRET_KEY file (and SQLite files, if not on PostgreSQL).
USER atomshop
ENV ATOMSHOP_DATA_DIR=/app/data
EXPOSE 8000

CMD ["gunicorn", "--config", "deploy/gunicorn.conf.py", "order_service.app:create_app()"]
