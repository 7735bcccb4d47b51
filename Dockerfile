# livemig-exporter in a container, installed from the tarball a compute host installs
# (scripts/package: one bundle, no dependencies): fping, a non-root user, and no virsh (the
# libvirt source speaks libvirt's RPC protocol on the read-only socket itself).
#   docker build --build-arg LIVEMIG_REVISION=$(git rev-parse --short=12 HEAD) -t livemig-exporter .
#   docker run -p 10027:10027 livemig-exporter [--config /etc/livemig-exporter/livemig.yml]
#
# Agent (one per compute host): the host's network, libvirt's read-only socket, nova's log
# (/var/log/nova is nova:adm 0750 on Debian and Ubuntu: group 4, adm), a config, the state:
#   docker run -d --name livemig-exporter --network host --group-add 4 \
#     -v /run/libvirt/libvirt-sock-ro:/run/libvirt/libvirt-sock-ro:ro \
#     -v /var/log/nova:/var/log/nova:ro \
#     -v /etc/livemig-exporter/livemig.yml:/etc/livemig-exporter/livemig.yml:ro \
#     -v livemig-state:/var/lib/livemig-exporter \
#     livemig-exporter --config /etc/livemig-exporter/livemig.yml
# The socket is 0777 (libvirt's unix_sock_ro_perms), so the container's user may connect; libvirt
# then asks polkit, whose default allows it, or nothing (auth_unix_ro = "none"). A socket mounted
# by its path stays the one of that moment: after libvirtd restarts, restart the container, or
# mount the directory instead (-v /run/libvirt:/run/libvirt:ro). The modular daemons' socket is
# /run/libvirt/virtqemud-sock-ro. Without a config the exporter watches every domain on it.

FROM node:20-bookworm AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json README.md ./
COPY src ./src
COPY scripts/package ./scripts/package
COPY packaging ./packaging
ARG LIVEMIG_REVISION=unknown
RUN LIVEMIG_REVISION="$LIVEMIG_REVISION" ./scripts/package /pkg

FROM node:20-bookworm-slim
# fping for the ping source (Debian's package gives it CAP_NET_RAW as a file capability, so the
# unprivileged user can probe; the container needs NET_RAW in its bounding set, Docker's default).
RUN apt-get update \
 && apt-get install -y --no-install-recommends fping \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /pkg/ /tmp/pkg/
# As on a compute host: offline, nothing to fetch. The bin lands in /usr/local/bin.
RUN npm install -g --offline --ignore-scripts --no-audit --no-fund /tmp/pkg/livemig-exporter-*.tgz \
 && rm -rf /tmp/pkg /root/.npm
# The state file (records kept across restarts) lives on a volume the user owns.
RUN mkdir -p /var/lib/livemig-exporter && chown node:node /var/lib/livemig-exporter
VOLUME ["/var/lib/livemig-exporter"]
USER node
ENV NODE_ENV=production
EXPOSE 10027
HEALTHCHECK --interval=30s --timeout=5s \
  CMD ["node", "-e", "fetch('http://127.0.0.1:10027/-/healthy').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["livemig-exporter"]
CMD ["--web.listen-address", ":10027"]
