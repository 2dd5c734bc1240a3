# syntax=docker/dockerfile:1
# One image for every Vigil service; the command picks which: `vigil serve ingest`.
#
#   docker build -t REGISTRY/vigil:0.1.0 .
#
# Stage 1 builds Vigil's wheel and installs it, with its pinned dependencies, into a
# virtualenv. Stage 2 is the slim runtime: that virtualenv, a non-root user, nothing else
# (no compiler, no pip cache, no source tree).

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
# The generated gRPC code is committed under services/generated; the wheel carries it,
# with the Lua scripts, the default rules and the dashboard's static files.
COPY services ./services
RUN python -m venv /opt/vigil \
 && /opt/vigil/bin/pip wheel --no-deps --wheel-dir /wheels . \
 && /opt/vigil/bin/pip install -c constraints.txt /wheels/vigil-*.whl \
 && /opt/vigil/bin/python -m compileall -q /opt/vigil/lib

FROM python:3.11-slim-bookworm
LABEL org.opencontainers.image.title="vigil" \
      org.opencontainers.image.description="Real-time anomaly detection for sensor fleets" \
      org.opencontainers.image.licenses="Apache-2.0"
# A fixed high UID/GID, the same the Kubernetes manifests set in runAsUser/runAsGroup.
RUN groupadd --system --gid 10001 vigil \
 && useradd --system --uid 10001 --gid vigil --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin vigil
COPY --from=build /opt/vigil /opt/vigil
# Bytecode was compiled at build time; the root filesystem is read-only at run time.
ENV PATH=/opt/vigil/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VIGIL_HOST=0.0.0.0 \
    VIGIL_LOG_FORMAT=json
WORKDIR /tmp
USER 10001:10001
# gRPC: ingest 50051, detector 50052, analyzer 50053, notifier 50054; metrics 9101-9104;
# the notifier's dashboard and API on 8080.
EXPOSE 50051 50052 50053 50054 9101 9102 9103 9104 8080
# Kubernetes probes each service natively (gRPC health, HTTP /readyz); no HEALTHCHECK.
ENTRYPOINT ["vigil"]
CMD ["serve", "ingest"]
