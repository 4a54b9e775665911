# Production image: gunicorn serving aios.wsgi, static files collected and compressed at build.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    AIOS_VAR_DIR=/app/var

WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

COPY . .
RUN DJANGO_SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput --verbosity 0 \
    && useradd --system --home /app aios && mkdir -p /app/var/media && chown -R aios /app/var

USER aios
EXPOSE 8000
ENV BIND=0.0.0.0:8000
CMD ["sh", "-c", "python manage.py check --deploy --fail-level WARNING && python manage.py migrate --noinput && exec gunicorn -c aios/gunicorn.conf.py"]
