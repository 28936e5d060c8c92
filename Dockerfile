# The tuneloop image: api, worker, beat and the one-shot migrate/init, on a CUDA base.
#   docker compose build            (or: docker build -t tuneloop .)
# torch comes from PyTorch's CUDA index first (the project's torch>=2.4 is then satisfied), so the
# api and the worker run on the GPU that compose reserves for them; without one they use the CPU.
ARG CUDA_IMAGE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04
FROM ${CUDA_IMAGE}

ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cu126
ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    HF_HOME=/var/lib/tuneloop/hf \
    TUNELOOP_HOME=/var/lib/tuneloop \
    TUNELOOP_ARTIFACT_DIR=/var/lib/tuneloop/artifacts

RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv tini ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/venv \
    && pip install --upgrade pip

# The heaviest layer first, so source changes do not reinstall it.
RUN pip install torch --index-url "${TORCH_INDEX_URL}"

WORKDIR /app
COPY pyproject.toml README.md ./
COPY core ./core
COPY api ./api
COPY monitor ./monitor
COPY retrain ./retrain
COPY tuneloop ./tuneloop
RUN pip install .

# State lives in TUNELOOP_HOME; the artifact dir is a volume shared by api and worker (created
# here so a fresh named volume is owned by the service user).
RUN useradd --system --uid 10001 --home-dir /var/lib/tuneloop tuneloop \
    && mkdir -p /var/lib/tuneloop/artifacts \
    && chown -R tuneloop /var/lib/tuneloop
USER tuneloop

EXPOSE 8000
ENTRYPOINT ["tini", "--", "tuneloop"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
