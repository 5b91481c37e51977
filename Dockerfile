# syntax=docker/dockerfile:1
# The image of every Nordflow service; SERVICE names one (a directory under services/ whose
# pyproject.toml declares a console script of the same name). Build from the repository
# root, the uv workspace:
#   docker build --build-arg SERVICE=mapper -t ghcr.io/nordflow/mapper:dev .
# deploy/k8s/tests/test_render.py checks, for every service, that what this file copies
# exists and covers the workspace packages the service depends on (read from the
# pyproject.toml files), and that the entrypoint is the service's console script.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.9
# No default: an image is always built for one named service.
ARG SERVICE

FROM ${UV_IMAGE} AS uv

# ---- build: install the locked environment into /app/.venv ----------------------------
FROM ${PYTHON_IMAGE} AS builder
ARG SERVICE
COPY --from=uv /uv /uvx /bin/

RUN test -n "${SERVICE}" || { echo "build with --build-arg SERVICE=<services/ directory>" >&2; exit 1; }

# Bytecode is compiled at build time because the runtime filesystem is read-only; the
# builder and runtime share one base image, so the venv's interpreter path stays valid.
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=0

WORKDIR /app

# Layer 1: third-party dependencies only, from the lockfile and the manifests of the shared
# workspace libraries and of this service; no sources, so it is rebuilt only when
# dependencies change. --frozen installs exactly what uv.lock pins for --package without
# re-resolving, so the other services need not be in the image (`uv lock --check` keeps
# uv.lock current). Every shared library is copied, not only the ones this service uses:
# uv installs only its dependencies, so the virtualenv is the same either way.
COPY pyproject.toml uv.lock .python-version ./
COPY shared/connectors/pyproject.toml shared/connectors/
COPY shared/documents/pyproject.toml shared/documents/
COPY shared/references/pyproject.toml shared/references/
COPY shared/runtime/pyproject.toml shared/runtime/
COPY shared/schemas/pyproject.toml shared/schemas/
COPY shared/signing/pyproject.toml shared/signing/
COPY services/${SERVICE}/pyproject.toml services/${SERVICE}/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --no-install-workspace --package ${SERVICE}

# Layer 2: this service and the shared libraries, installed non-editable so the runtime
# stage needs the virtualenv only, not the sources.
COPY shared/ shared/
COPY services/${SERVICE}/ services/${SERVICE}/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package ${SERVICE}

# ---- runtime: slim Python, the venv, a non-root user ----------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ARG SERVICE

LABEL org.opencontainers.image.title="${SERVICE}" \
      org.opencontainers.image.description="Nordflow ${SERVICE} service" \
      org.opencontainers.image.licenses="Apache-2.0"

# uid/gid 10001 match runAsUser/runAsGroup in deploy/k8s/components/service/deployment.yaml.
RUN groupadd --system --gid 10001 nordflow \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin nordflow

# Owned by root, so the service user cannot modify its own code.
COPY --from=builder /app/.venv /app/.venv

ENV PATH="/app/.venv/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HTTP_PORT=8080 \
    NORDFLOW_SERVICE=${SERVICE}

WORKDIR /app
USER 10001:10001
EXPOSE 8080

# The service's console script, e.g. `mapper run`. ENTRYPOINT does not expand build
# arguments, so a shell reads the name from NORDFLOW_SERVICE and execs the script in its
# place: the script is PID 1 and gets the signals, and CMD or Kubernetes `args` (run,
# migrate, ...) are its arguments.
ENTRYPOINT ["/bin/sh", "-c", "exec \"${NORDFLOW_SERVICE}\" \"$@\"", "sh"]
CMD ["run"]
