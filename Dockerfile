# syntax=docker/dockerfile:1
# spn-serve on a CUDA 12 + cuDNN 9 runtime, the CUDA execution provider by default.
#   docker build -t spn-serve .
#   docker run --gpus all -p 8080:8080 spn-serve
# Without a GPU: docker run -e EXECUTION_PROVIDER=cpu -p 8080:8080 spn-serve

# onnxruntime-node 1.30's CUDA provider is built for CUDA 12 and cuDNN 9; 12.6 + cuDNN 9.5 is the
# pairing NVIDIA tunes cuDNN for. Both stages use this base so native modules (sharp,
# onnxruntime-node) are installed against the glibc they run on.
ARG CUDA_IMAGE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu22.04

FROM ${CUDA_IMAGE} AS node
# Node 20 reached its end of life in April 2026; 24 is an LTS line until April 2028 (the test suite
# passes on 20, 24 and 26: README, Deployment). --build-arg NODE_MAJOR=26 for the newer LTS.
ARG NODE_MAJOR=24
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl gnupg \
 && mkdir -p /etc/apt/keyrings \
 && curl -fsSL https://deb.nodesource.com/gpgkey/nodesource-repo.gpg.key | gpg --dearmor -o /etc/apt/keyrings/nodesource.gpg \
 && echo "deb [signed-by=/etc/apt/keyrings/nodesource.gpg] https://deb.nodesource.com/node_${NODE_MAJOR}.x nodistro main" > /etc/apt/sources.list.d/nodesource.list \
 && apt-get update \
 && apt-get install -y --no-install-recommends nodejs \
 && apt-get purge -y curl gnupg && apt-get autoremove -y \
 && rm -rf /var/lib/apt/lists/*

FROM node AS build
WORKDIR /app
# onnxruntime-node's install script is what fetches its CUDA 12 provider libraries (too large for
# the npm registry). The repository keeps it from running on developers' machines (package.json's
# allowScripts denies it for npm 11.16+, .npmrc skips its download for older npm), so it is run
# here by hand, after an install that runs no scripts, the same way whatever the npm version.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts \
 && ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install
COPY tsconfig.json ./
COPY src ./src
COPY scripts ./scripts
COPY test ./test
RUN npx tsc -p tsconfig.json \
 && npm prune --omit=dev --no-audit --no-fund \
 && test -f node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so

FROM node AS runtime
WORKDIR /app
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    MODELS_DIR=/app/models \
    MODELS=mu-fmnist,spn8-fmnist \
    EXECUTION_PROVIDER=cuda \
    LOG_LEVEL=info
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin spn
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
COPY models ./models
USER spn
EXPOSE 8080
# Liveness only: readiness (/health/ready) is for the orchestrator to route traffic; a container
# whose models are still loading is not unhealthy. Node's fetch, so the image needs no curl; on the
# HOST it listens on (loopback when that is every interface).
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
  CMD ["node", "-e", "const h=process.env.HOST;const a=!h||h==='0.0.0.0'||h==='::'?'127.0.0.1':h.includes(':')?'['+h+']':h;fetch('http://'+a+':'+(process.env.PORT||8080)+'/health/live').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# Node is PID 1 and handles SIGTERM itself: stop accepting, let running requests finish within SHUTDOWN_GRACE_MS, exit 0.
# Give `docker stop -t` at least SHUTDOWN_DELAY_MS + SHUTDOWN_GRACE_MS + 5 s (-t 20 with the defaults: no delay, 10 s grace).
STOPSIGNAL SIGTERM
CMD ["node", "dist/src/server.js"]
