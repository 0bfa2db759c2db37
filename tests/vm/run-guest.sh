#!/bin/sh
# run-guest.sh WORKDIR OUTDIR 'COMMAND': boot the prepared Debian kernel under qemu and run
# COMMAND (a path on this machine, no spaces) as root in the guest, with this machine's / as its
# root (read-only + RAM overlay) and OUTDIR shared read-write at /mnt/out. Exits with COMMAND's
# exit code (99: none came back). Plain emulation (-accel tcg): KVM with a stock kernel fails
# on these machines. -smp 1 (2 is slower on a 2-CPU host), 512 MB (128 hangs), always a timeout.
# env: TIMEOUT (s, default 600), MEM, APPEND (extra NAME=value words: the guest command's environment),
# PROJECT (a folder shared again at the same path, for a checkout under /tmp or another mount
# that the guest's view of / does not show)
W=$1; OUT=$2; CMD=$3
set --
[ -n "${PROJECT:-}" ] && set -- -fsdev "local,id=p,path=$PROJECT,security_model=none,readonly=on,multidevs=remap" \
  -device virtio-9p-pci,fsdev=p,mount_tag=project
mkdir -p "$OUT"; rm -f "$OUT/rc"
timeout -k 5 "${TIMEOUT:-600}" qemu-system-x86_64 -accel tcg,thread=multi -cpu max -smp 1 -m "${MEM:-512}" \
  -nographic -no-reboot -nodefaults -serial stdio -kernel "$W/vmlinux" -initrd "$W/initramfs.cpio.gz" \
  -fsdev local,id=r,path=/,security_model=none,readonly=on,multidevs=remap -device virtio-9p-pci,fsdev=r,mount_tag=hostroot \
  -fsdev local,id=o,path="$OUT",security_model=none -device virtio-9p-pci,fsdev=o,mount_tag=hostout "$@" \
  -append "console=ttyS0 panic=-1 quiet kmoddir=$W/kpkg guestcmd=$CMD projdir=${PROJECT:-} $APPEND" </dev/null
q=$?
[ -f "$OUT/rc" ] || { echo "run-guest: no exit code from the guest (qemu/timeout rc=$q)" >&2; exit 99; }
exit "$(cat "$OUT/rc")"
