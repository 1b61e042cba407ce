# The Kestrel worker image.
#
#   docker build -t kestrel .
#   docker run --rm kestrel check-config /etc/kestrel/kestrel.toml
#
# Two stages: the first builds Kestrel's wheel, with the hot detector modules compiled by mypyc
# (setup.py; so that stage has gcc and mypy), the second installs it with its dependencies (all
# of them ship binary wheels for CPython 3.11 on glibc x86_64, so the slim image needs no compiler)
# and runs as an unprivileged user.

FROM python:3.11-slim AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
RUN pip install --no-cache-dir "setuptools>=68" wheel "mypy>=1.10"
WORKDIR /src
# README.m[d]: copied when present (pyproject names it), without failing the build when absent.
COPY pyproject.toml setup.py README.m[d] ./
COPY engine/ engine/
COPY detectors/ detectors/
COPY alert_channels/ alert_channels/
# Without build isolation, setup.py finds the mypy installed above (mypyc ships with it).
RUN pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl \
    && rm -rf /wheels \
    && useradd --system --uid 10001 --home-dir /var/lib/kestrel --create-home --shell /usr/sbin/nologin kestrel
# The default config; docker-compose.yml mounts deploy/kestrel.toml over it.
COPY deploy/kestrel.toml /etc/kestrel/kestrel.toml
# Faust writes its data directory (<app_id>-data) under the working directory.
WORKDIR /var/lib/kestrel
USER kestrel
EXPOSE 6066
# /health answers 200 once the worker has joined its group and got partitions, 503 before.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:6066/health', timeout=4).status != 200)"]
ENTRYPOINT ["kestrel"]
CMD ["worker", "--config", "/etc/kestrel/kestrel.toml"]
