#!/bin/sh
# build-initramfs.sh KPKG_DIR OUT.cpio.gz: busybox, the modules that mount the host's root
# over virtio-9p with a RAM overlay (in modprobe's dependency order), and guest-init as /init.
set -e
KP=$(readlink -f "$1"); OUT=$(readlink -m "$2"); KVER=$(ls "$KP/lib/modules")
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
mkdir -p "$W/bin" "$W/mods"
cp /bin/busybox "$W/bin/busybox"
cp "$(dirname "$(readlink -f "$0")")/guest-init" "$W/init"; chmod +x "$W/init"
for m in virtio_pci 9pnet_virtio 9p overlay; do
  modprobe -d "$KP" -S "$KVER" --show-depends "$m" | awk '$1=="insmod"{print $2}'
done | awk '!seen[$0]++' | while read -r f; do
  cp "$f" "$W/mods/"; basename "$f" .ko >> "$W/modules.list"
done
(cd "$W" && find . | cpio -o -H newc --quiet | gzip -1 > "$OUT.tmp") && mv "$OUT.tmp" "$OUT"
