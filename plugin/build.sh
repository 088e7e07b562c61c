#!/usr/bin/env bash
# plugin/build.sh NAME: creates the managed plugin NAME (e.g. dmthin, or
# localhost:5000/dmthin:1.0 to push it later) in the Docker engine that
# DOCKER_HOST points at, from config.json and a rootfs:
#   - built from the Dockerfile when its base images can be pulled;
#   - otherwise assembled from this host (plugin/rootfs-from-host.sh), which
#     needs no registry but needs the project built (bash scripts/setup).
# The plugin is created disabled; enable it with `docker plugin enable NAME`.
# Prints what it did.
set -euo pipefail

project="$(cd "$(dirname "$0")/.." && pwd)"
name="${1:-}"
if [ -z "$name" ] || [ $# -ne 1 ]; then
  echo "usage: plugin/build.sh NAME   (creates the managed plugin NAME in the engine at DOCKER_HOST)" >&2
  exit 2
fi

say() { echo "plugin/build.sh: $*"; }
die() { echo "plugin/build.sh: $*" >&2; exit 1; }

command -v docker >/dev/null || die "no docker command on PATH"
docker version --format '{{.Server.Version}}' >/dev/null 2>&1 \
  || die "cannot reach the Docker engine at ${DOCKER_HOST:-the default socket}"
if docker plugin inspect "$name" >/dev/null 2>&1; then
  die "plugin $name already exists: docker plugin disable $name; docker plugin rm $name; then build again"
fi

bundle="$(mktemp -d "${TMPDIR:-/var/tmp}/dmthin-plugin.XXXXXX")"
image="dmthin-plugin-rootfs:$$"
container=""
cleanup() {
  if [ -n "$container" ]; then docker rm -f "$container" >/dev/null 2>&1 || true; fi
  docker image rm "$image" >/dev/null 2>&1 || true
  rm -rf "$bundle"
}
trap cleanup EXIT
say "engine: ${DOCKER_HOST:-default socket}, Docker $(docker version --format '{{.Server.Version}}')"

# The images the Dockerfile starts FROM, less its own stage names.
base_images() {
  awk 'toupper($1) == "FROM" { from[++n] = $2; if (toupper($3) == "AS") stage[$4] = 1 }
       END { for (i = 1; i <= n; i++) if (!(from[i] in stage)) print from[i] }' "$project/Dockerfile"
}

pullable=yes
for base in $(base_images); do
  if docker image inspect "$base" >/dev/null 2>&1; then continue; fi
  if ! output="$(docker pull --quiet "$base" 2>&1)"; then
    say "base image $base cannot be pulled: ${output##*$'\n'}"
    pullable=no
    break
  fi
done

mkdir -p "$bundle/rootfs"
SECONDS=0
if [ "$pullable" = yes ]; then
  say "building the rootfs from the Dockerfile"
  docker build --quiet --tag "$image" "$project" >/dev/null
  container="$(docker create "$image" true)"
  docker export "$container" | tar -x -C "$bundle/rootfs"
  say "rootfs: exported from an image of $project/Dockerfile ($SECONDS s)"
else
  say "assembling the rootfs from this host instead"
  "$project/plugin/rootfs-from-host.sh" "$bundle/rootfs" | sed 's/^/  /'
  say "rootfs assembled ($SECONDS s)"
fi

cp "$project/config.json" "$bundle/config.json"
# Every directory config.json mounts on, and /run/docker/plugins where dockerd
# binds the socket's directory, must exist in the rootfs; the entrypoint too.
# shellcheck disable=SC2016 # JavaScript template literals, not shell
node -e '
  const fs = require("node:fs"), path = require("node:path");
  const [configFile, rootfs] = process.argv.slice(1);
  const config = JSON.parse(fs.readFileSync(configFile, "utf8"));
  const dirs = ["/run/docker/plugins", config.propagatedMount, ...(config.mounts ?? []).map((m) => m.destination)];
  for (const dir of dirs.filter(Boolean)) fs.mkdirSync(path.join(rootfs, dir), { recursive: true });
  const entry = path.join(rootfs, config.entrypoint[0]);
  try { fs.accessSync(entry, fs.constants.X_OK); } catch { console.error(`entrypoint ${config.entrypoint[0]} is not in the rootfs`); process.exit(1); }
  for (const arg of config.entrypoint.slice(1).filter((a) => a.startsWith("/"))) {
    if (!fs.existsSync(path.join(rootfs, arg))) { console.error(`entrypoint argument ${arg} is not in the rootfs`); process.exit(1); }
  }
  console.log(`mount points: ${dirs.join(" ")}`);
' "$bundle/config.json" "$bundle/rootfs" | sed 's/^/plugin\/build.sh: /'

SECONDS=0
docker plugin create "$name" "$bundle" >/dev/null
say "docker plugin create took $SECONDS s"
say "created plugin $(docker plugin inspect --format '{{.Name}} ({{.Id}}), enabled: {{.Enabled}}' "$name")"
say "next: docker plugin enable $name   (or: docker plugin push $name)"
