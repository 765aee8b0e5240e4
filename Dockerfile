# leb: one image for the web (`leb serve`) and the worker (`leb worker`).
# Plain Dockerfile syntax (no `# syntax=` frontend to pull, no BuildKit-only
# flags), so it builds offline and with the legacy builder too.

# The base of both stages. A registry mirror or a local stand-in:
#   docker build --build-arg PYTHON_IMAGE=mirror.example/library/python:3.11-slim .
# It must give `python` (3.11) with the venv module on PATH.
ARG PYTHON_IMAGE=python:3.11-slim

# --- build: the virtualenv, from the hashed lock only ----------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/leb
COPY requirements/base.lock requirements/base.lock
RUN /opt/leb/bin/pip install --require-hashes -r requirements/base.lock
COPY pyproject.toml README.md LICENSE ./
COPY leb ./leb
# Dependencies are all in place from the lock: install leb itself only.
RUN /opt/leb/bin/pip install --no-deps . \
 && rm -rf /src

# --- runtime ---------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
ENV PATH=/opt/leb/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LEB_VAR_DIR=/var/lib/leb \
    LEB_BIND=0.0.0.0:8000 \
    LEB_LOG_FORMAT=json

RUN groupadd --system --gid 10001 leb \
 && useradd --system --uid 10001 --gid leb --home-dir /var/lib/leb --no-create-home \
        --shell /usr/sbin/nologin leb \
 && install -d -o leb -g leb -m 0750 /var/lib/leb /var/lib/leb/exports

COPY --from=build /opt/leb /opt/leb
COPY docker/entrypoint /usr/local/bin/leb-entrypoint
COPY docker/healthcheck /usr/local/bin/leb-healthcheck
RUN chmod 0755 /usr/local/bin/leb-entrypoint /usr/local/bin/leb-healthcheck

USER leb:leb
WORKDIR /var/lib/leb
# Static files are collected (and compressed by whitenoise) into the image, so
# the collectstatic that `leb serve` runs at start finds nothing new to copy.
# The key is a throwaway: collectstatic reads no secret, but the settings
# refuse to load without debug and with the default key.
RUN LEB_DEBUG=0 LEB_SECRET_KEY=build-only-collectstatic-key-not-used-at-run-time \
    leb collectstatic --no-input --verbosity 0

EXPOSE 8000
# The web by default; `worker` runs the task worker and scheduler instead.
ENTRYPOINT ["leb-entrypoint"]
CMD ["web"]
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["leb-healthcheck", "web"]
