#!/bin/sh
# prepare.sh [WORKDIR]: everything the VM tier needs, idempotent (a second run takes well under 1 s):
# the Debian packages (qemu, busybox, the IPVS user tools), the current stock Debian kernel package
# (its name resolved at run time: pinned names vanish after each point release), unpacked, with
# an uncompressed vmlinux (qemu boots it through the PVH entry, ~2x faster than the bzImage)
# and an initramfs whose /init is guest-init. Prints the work dir on its last line.
set -e
W=$(readlink -m "${1:-${MINIKP_VM_DIR:-/var/tmp/minikp-vm}}"); HERE=$(dirname "$(readlink -f "$0")")
mkdir -p "$W" && cd "$W"
if [ -f ready ] && [ ready -nt "$HERE/guest-init" ] && [ ready -nt "$HERE/build-initramfs.sh" ]; then echo "$W"; exit 0; fi
PKGS="qemu-system-x86 busybox-static cpio kmod ipvsadm ipset iptables conntrack"
missing=$(for p in $PKGS; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"; done)
apti() { DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends $missing >/dev/null; }
if [ -n "$missing" ]; then
  echo "vm-prepare: installing Debian packages:" $missing >&2
  apti || { apt-get -q update >/dev/null && apti; }
fi
kpkg() { apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}'; }
if [ ! -d kpkg/lib/modules ]; then
  PKG=$(kpkg)
  # after a Debian point release the lists can name a package the mirror no longer has: refresh once
  { [ -n "$PKG" ] && apt-get -q -o APT::Sandbox::User=root download "$PKG" >&2; } || {
    apt-get -q update >/dev/null; PKG=$(kpkg); apt-get -q -o APT::Sandbox::User=root download "$PKG" >&2; }
  rm -rf kpkg.tmp && dpkg -x "$(ls -t "$PKG"_*.deb | head -1)" kpkg.tmp && mv kpkg.tmp kpkg && rm -f "$PKG"_*.deb
fi
KVER=$(ls kpkg/lib/modules)
[ -f "kpkg/lib/modules/$KVER/modules.dep" ] || depmod -b kpkg "$KVER"
if [ ! -f vmlinux ]; then  # the bzImage's xz payload is the ELF vmlinux
  python3 -c "import lzma,sys;d=open(sys.argv[1],'rb').read();i=d.find(b'\xfd7zXZ\0');open(sys.argv[2],'wb').write(lzma.LZMADecompressor().decompress(d[i:]))" "kpkg/boot/vmlinuz-$KVER" vmlinux.tmp
  mv -f vmlinux.tmp vmlinux
fi
"$HERE/build-initramfs.sh" kpkg initramfs.cpio.gz >&2
touch ready
echo "$W"
