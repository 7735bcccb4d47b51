# livemig-exporter: the built exporter only (dist + production dependencies), run as a non-root user.
#   docker build -t livemig-exporter .
#   docker run -p 10027:10027 livemig-exporter [--config /etc/livemig-exporter/livemig.yml]

FROM node:20-bookworm AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim
# fping for the ping source (Debian's package gives it CAP_NET_RAW as a file capability, so the
# unprivileged user can probe; the container needs NET_RAW in its bounding set, Docker's default).
RUN apt-get update \
 && apt-get install -y --no-install-recommends fping \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
# The state file (records kept across restarts) lives on a volume the user owns.
RUN mkdir -p /var/lib/livemig-exporter && chown node:node /var/lib/livemig-exporter
VOLUME ["/var/lib/livemig-exporter"]
USER node
ENV NODE_ENV=production
EXPOSE 10027
HEALTHCHECK --interval=30s --timeout=5s \
  CMD ["node", "-e", "fetch('http://127.0.0.1:10027/-/healthy').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "dist/cli.js"]
CMD ["--web.listen-address", ":10027"]
