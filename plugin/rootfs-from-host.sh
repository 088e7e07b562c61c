#!/usr/bin/env bash
# plugin/rootfs-from-host.sh ROOTFS: assembles the plugin's rootfs from this
# host, for when the Dockerfile's base images cannot be pulled. What goes
# in it is plugin/rootfs.sh's, as for the Dockerfile: node at
# /usr/local/bin/node, the project's files and production node_modules
# under the app directory, the tools dmthin runs, the mount destinations,
# and every shared library these need (from ldd).
# Needs the project built first (bash scripts/setup). Prints what it copied.
set -euo pipefail

project="$(cd "$(dirname "$0")/.." && pwd)"
rootfs="${1:?usage: plugin/rootfs-from-host.sh ROOTFS}"
# shellcheck source=plugin/rootfs.sh
. "$project/plugin/rootfs.sh"
app="$DMTHIN_APP_DIR"
read -r -a tools <<<"$DMTHIN_TOOLS"
read -r -a app_files <<<"$DMTHIN_APP_FILES"

say() { echo "rootfs-from-host: $*"; }
die() { echo "rootfs-from-host: $*" >&2; exit 1; }

for built in dist/src/main.js dist/src/cli.js build/Release/dmthin.node node_modules package-lock.json; do
  [ -e "$project/$built" ] || die "$project/$built is missing: build the project first (bash scripts/setup)"
done
mkdir -p "$rootfs"
[ -z "$(ls -A "$rootfs")" ] || die "$rootfs is not empty"

# Debian's merged /usr: /bin, /sbin, /lib, /lib64 are links into /usr.
for top in bin sbin lib lib64; do
  if [ -L "/$top" ]; then ln -s "$(readlink "/$top")" "$rootfs/$top"; fi
done

copied=0
# Copies a host path into the rootfs at its canonical directory, keeping
# symlinks as symlinks (mkfs.ext4 -> mke2fs, thin_ls -> pdata_tools) and
# following them to the file they name.
copy_path() {
  local path dir name
  dir="$(readlink -f "$(dirname "$1")")"
  name="$(basename "$1")"
  path="$dir/$name"
  if [ -e "$rootfs$path" ] || [ -L "$rootfs$path" ]; then return 0; fi
  mkdir -p "$rootfs$dir"
  if [ -L "$path" ]; then
    local target
    target="$(readlink "$path")"
    ln -s "$target" "$rootfs$path"
    case "$target" in /*) copy_path "$target" ;; *) copy_path "$dir/$target" ;; esac
  else
    cp -p "$path" "$rootfs$path"
    copied=$((copied + 1))
  fi
}

# Copies the shared libraries ldd finds for an executable or addon.
copy_libraries() {
  local lib libs
  # ldd prints "name => /path (addr)" or "/path (addr)"; vdso has no path.
  # (No process substitution: a /dev without /dev/fd, as in the VM, breaks it.)
  libs="$(ldd "$1" 2>/dev/null | grep -o '/[^ ]*' || true)"
  for lib in $libs; do
    copy_path "$lib"
  done
}

node="$(command -v node)" || die "node is not on PATH"
mkdir -p "$rootfs/usr/local/bin"
cp -p "$(readlink -f "$node")" "$rootfs/usr/local/bin/node" # where the official image has it
copy_libraries "$node"
say "node $("$node" --version) from $node -> /usr/local/bin/node"

for tool in "${tools[@]}"; do
  found="$(PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" command -v "$tool")" \
    || die "$tool is not installed (bash scripts/setup installs it)"
  copy_path "$found"
  copy_libraries "$found"
done
say "tools: ${tools[*]}"

copy_libraries "$project/build/Release/dmthin.node"
mkdir -p "$rootfs$app"
tar -C "$project" -cf - "${app_files[@]}" | tar -C "$rootfs$app" -xf -
ln -s "$app/bin/dmthin" "$rootfs/usr/local/bin/dmthin"
say "app: ${app_files[*]} (bin/dmthin also as /usr/local/bin/dmthin) -> $app"

# Production modules: the lockfile's packages not marked dev-only that are
# installed here (optional ones for other platforms are not).
production="$(node -e '
  const fs = require("node:fs");
  const lock = require(process.argv[1]);
  for (const [key, entry] of Object.entries(lock.packages ?? {})) {
    if (!key.startsWith("node_modules/") || entry.dev || entry.devOptional) continue;
    if (fs.existsSync(`${process.argv[2]}/${key}`)) console.log(key);
  }' "$project/package-lock.json" "$project")"
# One tar for them all: a process per package is slow where processes are (under emulation).
# shellcheck disable=SC2086 # one path a word; npm package paths have no spaces
tar -C "$project" -cf - $production | tar -C "$rootfs$app" -xf -
say "$(echo "$production" | wc -l) production modules from package-lock.json -> $app/node_modules"
say "$copied executables and shared libraries copied from this host"

# mke2fs reads its defaults from here; the host's file gives the host's mkfs.ext4 results.
mkdir -p "$rootfs/etc"
if [ -f /etc/mke2fs.conf ]; then cp -p /etc/mke2fs.conf "$rootfs/etc/"; fi
printf 'root:x:0:0:root:/root:/usr/sbin/nologin\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\n' >"$rootfs/etc/group"
mkdir -p "$rootfs/root" "$rootfs/dev" "$rootfs/proc" "$rootfs/sys" "$rootfs/run"
for dir in $DMTHIN_MOUNT_DIRS; do mkdir -p "$rootfs$dir"; done
# os.tmpdir(): dmthin probes xfs support with a mount there.
mkdir -p "$rootfs/tmp" && chmod 1777 "$rootfs/tmp"
say "done: $(du -sh "$rootfs" | cut -f1) in $rootfs"
