#!/bin/sh
# Build a minimal root filesystem from the host's static busybox.
# Usage: bundles/make-rootfs.sh DIR   (DIR is created; default: bundles/busybox/rootfs)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dest=${1:-$here/busybox/rootfs}
case "$dest" in /*) ;; *) dest=$(pwd)/$dest ;; esac
busybox=${BUSYBOX:-$(command -v busybox || true)}
if [ -z "$busybox" ] || ! file_out=$("$busybox" --help 2>&1 | head -1) ; then
    echo "make-rootfs: busybox not found (install busybox-static)" >&2
    exit 1
fi
case "$file_out" in *BusyBox*) ;; *) echo "make-rootfs: $busybox is not busybox" >&2; exit 1;; esac
if ldd "$busybox" >/dev/null 2>&1; then
    echo "make-rootfs: $busybox is dynamically linked; install busybox-static" >&2
    exit 1
fi
rm -rf "$dest.tmp"
mkdir -p "$dest.tmp"
cd "$dest.tmp"
mkdir -p bin sbin usr/bin usr/sbin etc proc sys dev tmp root home var/run
chmod 1777 tmp
cp "$busybox" bin/busybox
for applet in $("$busybox" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "bin/$applet"
done
cat > etc/passwd <<'PW'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PW
cat > etc/group <<'GR'
root:x:0:
daemon:x:1:
tty:x:5:
nogroup:x:65534:
GR
echo "pyrunc" > etc/hostname
cd ..
rm -rf "$dest"
mv "$dest.tmp" "$dest"
echo "rootfs ready: $dest"
