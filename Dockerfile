# ClipFunnel: one image definition for both services. Build from the repository root:
#   docker build --build-arg SERVICE=catalog --build-arg PORT=8001 -t clipfunnel/catalog .
#   docker build --build-arg SERVICE=attribution --build-arg PORT=8002 -t clipfunnel/attribution .
# The build stage does not depend on SERVICE, so the second build reuses all of its layers.
# An image also runs its service's one-shot migration: `clipfunnel migrate <service>`.
ARG PYTHON_IMAGE=python:3.11-slim

# ---- build: a virtualenv holding the dependencies, then the project ----
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src

# Dependencies first, from pyproject.toml alone: this layer (the slow one) is rebuilt only when
# pyproject.toml changes, not on every code change. The cache mount keeps pip's downloads
# between builds without putting them in the image.
COPY pyproject.toml ./
RUN --mount=type=cache,target=/root/.cache/pip \
    python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt

# Then the project itself (a regular, non-editable install; dependencies are already there).
COPY README.md ./
COPY shared ./shared
COPY services ./services
# The checks fail the build if the entry point or the Alembic scripts did not get installed
# (run from / so that `import services` finds the installed package, not /src).
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --no-deps . \
 && clipfunnel --help > /dev/null \
 && cd / && python -c "import pathlib, services; root = pathlib.Path(services.__file__).parent; assert all(any((root / s / 'migrations' / 'versions').glob('*.py')) for s in ('catalog', 'attribution')), 'Alembic migrations missing from the installed package'"

# ---- runtime: the virtualenv only, run by an unprivileged user ----
FROM ${PYTHON_IMAGE} AS runtime
# Which service this image runs, and on which port (the service's default one).
ARG SERVICE
ARG PORT
RUN case "${SERVICE}:${PORT}" in \
      catalog:8001|attribution:8002) ;; \
      *) echo "build with --build-arg SERVICE=catalog --build-arg PORT=8001" \
              "or --build-arg SERVICE=attribution --build-arg PORT=8002" >&2; exit 1 ;; \
    esac
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CLIPFUNNEL_ENV=production \
    CLIPFUNNEL_SERVICE=${SERVICE} \
    CLIPFUNNEL_PORT=${PORT}
RUN groupadd --system --gid 10001 clipfunnel \
 && useradd --system --uid 10001 --gid clipfunnel --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin clipfunnel
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# ./var is where `serve --workers N` keeps prometheus-client's multiprocess files.
RUN mkdir -p /app/var && chown -R clipfunnel:clipfunnel /app
USER 10001:10001

EXPOSE ${PORT}
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; url = 'http://127.0.0.1:%s/healthz' % os.environ['CLIPFUNNEL_PORT']; sys.exit(0 if urllib.request.urlopen(url, timeout=4).status == 200 else 1)"]
# exec: the server is PID 1 and gets the stop signal itself.
CMD ["sh", "-c", "exec clipfunnel serve \"$CLIPFUNNEL_SERVICE\" --host 0.0.0.0 --port \"$CLIPFUNNEL_PORT\""]
