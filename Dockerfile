# The managed plugin's rootfs: `plugin/build.sh NAME` builds this image,
# exports a container of it as rootfs/ next to config.json, and runs
# `docker plugin create`. What goes in it is described once, in
# plugin/rootfs.sh, which plugin/rootfs-from-host.sh reads too when the
# base images cannot be pulled and the rootfs is assembled from the host.

# Build: the addon against libdevmapper, the TypeScript, production modules,
# then the rootfs's files laid out under /out.
FROM node:20-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends g++ make python3 pkg-config libdevmapper-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json binding.gyp ./
COPY native/ native/
# npm ci runs the install script: node-gyp builds build/Release/dmthin.node.
RUN npm ci --no-audit --no-fund
COPY tsconfig.json LICENSE ./
COPY bin/ bin/
COPY src/ src/
# The containerd snapshots service's wire contract, loaded at start.
COPY proto/ proto/
COPY plugin/rootfs.sh plugin/
RUN npx tsc -p tsconfig.json && npm prune --omit=dev --no-audit --no-fund \
 && . plugin/rootfs.sh \
 && mkdir -p "/out$DMTHIN_APP_DIR" /out/usr/local/bin \
 && tar -cf - $DMTHIN_APP_FILES node_modules | tar -C "/out$DMTHIN_APP_DIR" -xf - \
 && ln -s "$DMTHIN_APP_DIR/bin/dmthin" /out/usr/local/bin/dmthin

# Run: Node, libdevmapper and the tools dmthin calls, each checked to be there.
FROM node:20-bookworm-slim
COPY plugin/rootfs.sh /tmp/rootfs.sh
RUN . /tmp/rootfs.sh \
 && apt-get update \
 && apt-get install -y --no-install-recommends $DMTHIN_RUNTIME_PACKAGES \
 && rm -rf /var/lib/apt/lists/* \
 && for tool in $DMTHIN_TOOLS; do command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }; done \
 && mkdir -p $DMTHIN_MOUNT_DIRS \
 && rm /tmp/rootfs.sh
# The project, and the dmthin command for `docker exec`-like use inside the plugin (runc exec).
COPY --from=build /out/ /
WORKDIR /opt/dmthin
CMD ["/usr/local/bin/node", "--require", "/opt/dmthin/dist/src/server/early.js", "/opt/dmthin/dist/src/cli.js", "serve"]
