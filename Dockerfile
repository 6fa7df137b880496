# One image per service, from one recipe: docker build --build-arg SERVICE=convert -t slidestream/convert .
# (charts/slidestream expects <registry>/<repository>/<service>:<tag>.)
# Not built in this repository's CI: the development machines have no Docker daemon.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG SERVICE
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
RUN pip install --no-cache-dir "uv==0.13.9"
WORKDIR /src
COPY pyproject.toml uv.lock ./
COPY libs libs
COPY services services
# Only the service's own dependency tree, from the lock file, without the dev group.
RUN test -n "${SERVICE}" && \
    uv sync --frozen --no-dev --no-editable --package "slidestream-${SERVICE}"

FROM ${PYTHON_IMAGE}
ARG SERVICE
# dicom3tools: convert's conformance gate (dciodvfy); libturbojpeg0: JPEG tile codecs.
RUN apt-get update && \
    apt-get install -y --no-install-recommends dicom3tools libturbojpeg0 && \
    rm -rf /var/lib/apt/lists/* && \
    useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin slidestream
COPY --from=build /src/.venv /opt/slidestream
ENV PATH=/opt/slidestream/bin:$PATH PYTHONUNBUFFERED=1 SERVICE_MODULE=slidestream_${SERVICE}.main
USER 10001
EXPOSE 8080
# main() serves /healthz, /readyz and /metrics and shuts down gracefully on SIGTERM.
CMD ["sh", "-c", "exec python -m ${SERVICE_MODULE}"]
