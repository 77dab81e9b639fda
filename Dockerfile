# One image for the worker, the HTTP API (python -m starter.api), cancelctl and the provider sandbox
# (stacks/, the local stacks' process layer, comes along: every package the project installs).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY domain domain
COPY config config
COPY activities activities
COPY workflows workflows
COPY starter starter
COPY sandbox sandbox
COPY stacks stacks
COPY worker.py ./
RUN pip install --no-cache-dir . && useradd --system --uid 10001 app
# The release's Worker Deployment build id (README "Releases"): an image has no .git, so
# the release passes it (docker compose: BLUE_BUILD_ID / GREEN_BUILD_ID).
ARG BUILD_ID=
ENV CANCEL_DEPLOYMENT_BUILD_ID=${BUILD_ID}
USER app
CMD ["python", "worker.py"]
