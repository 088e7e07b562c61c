# The managed plugin's rootfs, described once. Sourced (POSIX sh) by the
# Dockerfile, which builds it from Debian images, and by
# plugin/rootfs-from-host.sh, which assembles the same from this host.

# Where the project lives in the rootfs (config.json's entrypoint and workdir name it too).
DMTHIN_APP_DIR=/opt/dmthin
# The project's files under it, beside its production node_modules.
DMTHIN_APP_FILES="package.json LICENSE bin/dmthin build/Release/dmthin.node dist/src proto"
# What dmthin runs (src/deviceset: runTool, hasTool), sh for hasTool's
# `command -v`, and thin_check, which its errors tell users to run.
DMTHIN_TOOLS="sh mkfs.xfs mkfs.ext4 tune2fs resize2fs xfs_growfs blkid thin_ls thin_check"
# The Debian packages they and the addon come from.
DMTHIN_RUNTIME_PACKAGES="libdevmapper1.02.1 e2fsprogs xfsprogs thin-provisioning-tools util-linux"
# Mount destinations of config.json: the plugin socket's directory, the
# propagated mount, the state directory.
DMTHIN_MOUNT_DIRS="/run/docker/plugins /mnt/dmthin /var/lib/dmthin"
