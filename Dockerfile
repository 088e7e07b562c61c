# The managed plugin's rootfs: `plugin/build.sh NAME` builds this image,
# exports a container of it as rootfs/ next to config.json, and runs
# `docker plugin create`. Without a registry to pull the base images from,
# build.sh assembles the same layout from the host instead
# (plugin/rootfs-from-host.sh): keep the two in step.

# Build: the addon against libdevmapper, the TypeScript, production modules.
FROM node:20-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends g++ make python3 pkg-config libdevmapper-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json binding.gyp ./
COPY native/ native/
# npm ci runs the install script: node-gyp builds build/Release/dmthin.node.
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY bin/ bin/
COPY src/ src/
RUN npx tsc -p tsconfig.json && npm prune --omit=dev --no-audit --no-fund

# Run: Node, libdevmapper, and the tools dmthin calls (mkfs.xfs, mkfs.ext4,
# tune2fs, resize2fs, xfs_growfs, blkid, thin_ls).
FROM node:20-bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libdevmapper1.02.1 e2fsprogs xfsprogs thin-provisioning-tools util-linux \
 && rm -rf /var/lib/apt/lists/*
# Mount destinations of config.json: the plugin socket's directory, the
# propagated mount, the state directory.
RUN mkdir -p /run/docker/plugins /mnt/dmthin /var/lib/dmthin
WORKDIR /opt/dmthin
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules/ node_modules/
COPY --from=build /src/build/Release/dmthin.node build/Release/
COPY --from=build /src/dist/src/ dist/src/
# The containerd snapshots service's wire contract, loaded at start.
COPY proto/ proto/
COPY --from=build /src/bin/ bin/
COPY LICENSE ./
# The dmthin command, for `docker exec`-like use inside the plugin (runc exec).
RUN ln -s /opt/dmthin/bin/dmthin /usr/local/bin/dmthin
CMD ["/usr/local/bin/node", "--require", "/opt/dmthin/dist/src/server/early.js", "/opt/dmthin/dist/src/cli.js", "serve"]
