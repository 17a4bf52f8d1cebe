# One image for the three processes: web (uvicorn), worker and beat (celery).
FROM python:3.13-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
RUN COUNTERSIGN_SECRET_KEY=build-only python manage.py collectstatic --noinput \
 && useradd --system --uid 1000 countersign && chown -R countersign /app
USER countersign

EXPOSE 8000
# A shell, so that --ws-max-size follows COUNTERSIGN_WS_MAX_MESSAGE_BYTES (the queue consumer's own limit).
CMD ["sh", "-c", "exec uvicorn config.asgi:application --host 0.0.0.0 --port 8000 --ws websockets --proxy-headers --workers 2 --ws-max-size ${COUNTERSIGN_WS_MAX_MESSAGE_BYTES:-65536}"]
