# One image for every tier: the command is the `chat` subcommand.
#   docker run IMAGE gateway | api | persister | all | migrate | token <user>
# Build: docker build --build-arg GIT_COMMIT=$(git rev-parse HEAD) -t chat-svc .   (docs/operations.md; deploy/image/smoke.sh builds and tries it)

# Production dependencies only. better-sqlite3 compiles from source when no prebuilt binary can be
# downloaded, so the compiler is here and not in the image; node-gyp builds against the base
# image's own headers (/usr/local/include/node) instead of downloading them. Install scripts run
# for the dependencies (`npm rebuild`) but not the root `prepare`, which needs the dev tools.
FROM node:20-slim AS deps
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
ENV npm_config_nodedir=/usr/local
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm rebuild --no-audit --no-fund \
 && npm cache clean --force

# The web page (api/web -> api/web/dist), built with the dev tools, which stay in this stage.
FROM node:20-slim AS web
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY shared shared
COPY api/web api/web
RUN npm run build:web

FROM node:20-slim
ENV NODE_ENV=production \
    PORT=8080 \
    DATA_DIR=/data
WORKDIR /app
# Owned by root and read-only for the process: the code cannot be changed by what runs it.
COPY --from=deps /build/node_modules node_modules
COPY package.json tsconfig.json ./
COPY bin bin
COPY shared shared
COPY gateway gateway
COPY persister persister
COPY api api
COPY --from=web /build/api/web/dist api/web/dist
# /info and /health/detailed report the commit: .git is not in the image, so the build passes it
# (docker build --build-arg GIT_COMMIT=$(git rev-parse HEAD) .); without it they report the version.
ARG GIT_COMMIT=
RUN if [ -n "$GIT_COMMIT" ]; then printf '{"commit":"%s"}\n' "$GIT_COMMIT" > build-info.json; fi
# The SQLite store of `chat all` (the distributed tiers keep nothing on disk).
RUN mkdir -p /data && chown node:node /data
USER node
EXPOSE 8080
# Liveness only (readiness, /health/ready, is the orchestrator's business). node, not curl: the
# slim image has no curl.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# tsx (a runtime dependency) runs the TypeScript: bin/chat.js registers it.
ENTRYPOINT ["node", "bin/chat.js"]
CMD ["all"]
