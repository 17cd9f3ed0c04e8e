# kubetx operator image.
#
#   docker build -t ghcr.io/kubetx/kubetx:0.1.0 .
#
# Stage 1 compiles TypeScript; stage 2 installs the runtime dependencies only;
# the final stage has Node, those dependencies and dist/, runs as UID 65532
# (the chart's runAsUser) and needs no writable root filesystem.
# Only package*.json, tsconfig*.json and src/ are copied from the context, so
# a local node_modules/ or dist/ never leaks into the image.

# ---- build: npm ci + tsc -------------------------------------------------
FROM node:20-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: tsc needs no native module; the devDependencies with
# install scripts (better-sqlite3, esbuild, buf) are for tests and codegen,
# and compiling better-sqlite3 would need python3/make/g++ in this image.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# ---- runtime dependencies (no devDependencies) ----------------------------
FROM node:20-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# The runtime dependencies are pure JavaScript: no install scripts to run.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

# ---- runtime ---------------------------------------------------------------
FROM node:20-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist/src ./dist/src
# The dashboard's static bundle (the chart's optional read-only dashboard Deployment serves it).
COPY --from=build /src/dist/dashboard ./dist/dashboard
COPY package.json ./
# 65532: the conventional "nonroot" UID/GID; the Helm chart sets the same in
# runAsUser/runAsGroup and runAsNonRoot needs it to be numeric.
USER 65532:65532
# 8080 /metrics, 8081 /healthz and /readyz (see the chart's values).
EXPOSE 8080 8081
ENTRYPOINT ["node", "dist/src/main.js"]
