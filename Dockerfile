# syntax=docker/dockerfile:1
# KRUXT Support Autopilot: one image, three roles, chosen by the command:
#   kruxt migrate | kruxt worker (the default) | kruxt api
# docker-compose.yml runs all three; `make run` is the docker-free dev path.

# ---- build: install the project and its dependencies into a virtualenv ----
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
# README.md* : pyproject.toml names a readme; copy it when the checkout has one.
COPY pyproject.toml README.md* ./
COPY kruxt ./kruxt
RUN /opt/venv/bin/pip install .

# ---- runtime ----
FROM python:3.11-slim
# The package is installed non-editable, so the paths settings.py derives from its own
# location point into site-packages: point sql/ and knowledge/ at the copies in /app.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    KRUXT_MIGRATIONS_DIR=/app/sql \
    KRUXT_KNOWLEDGE_DIR=/app/knowledge \
    KRUXT_HOME=/home/kruxt/.kruxt
RUN useradd --create-home --uid 10001 --user-group kruxt \
    && install -d -o kruxt -g kruxt /var/lib/kruxt/anchors
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY sql ./sql
COPY knowledge ./knowledge
USER kruxt
EXPOSE 8000
ENTRYPOINT ["kruxt"]
CMD ["worker"]
