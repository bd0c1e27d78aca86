#!/usr/bin/env bash
# Boots real Debian kernels (5.10 from bullseye, 6.1 from bookworm) under
# qemu (software emulation: KVM is not usable here) with an initramfs of
# busybox, urk and the bundled example server, and runs tests/kernels/init.sh
# inside each: `--io auto` picks the level the kernel really has, every
# supported level completes exactly N requests, missing levels are refused.
# Kernel packages are cached in $URK_KERNEL_CACHE (default
# /var/cache/urk-kernels). Usage: bash tests/kernels/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
cache=${URK_KERNEL_CACHE:-/var/cache/urk-kernels}
mkdir -p "$cache"

need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
[ -x /bin/busybox ] && busybox --list 2>/dev/null | grep -qx ip || need+=(busybox-static)
command -v cpio >/dev/null || need+=(cpio)
bullseye=/etc/apt/sources.list.d/urk-bullseye.sources
if [ ! -f "$bullseye" ]; then
    printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bullseye\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' > "$bullseye"
    updated=
fi
if [ ${#need[@]} -gt 0 ] || [ -z "${updated-x}" ] || ! ls "$cache"/linux-image-5.10.0-*.deb >/dev/null 2>&1 || ! ls "$cache"/linux-image-6.1.0-*.deb >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    [ ${#need[@]} -gt 0 ] && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The newest cloud kernel of each series, downloaded once.
fetch() {
    local pattern=$1
    if ! ls "$cache"/$pattern*.deb >/dev/null 2>&1; then
        local pkg
        pkg=$(apt-cache search --names-only "^${pattern}[0-9]+-cloud-amd64-unsigned\$" | cut -d' ' -f1 | sort -V | tail -n 1)
        [ -n "$pkg" ] || { echo "no package matches $pattern" >&2; exit 1; }
        # Its progress goes to stderr: this function's stdout is the kernel path.
        (cd "$cache" && apt-get download "$pkg" >&2 2>/dev/null)
    fi
    local deb
    deb=$(ls "$cache"/$pattern*.deb | sort -V | tail -n 1)
    local out="$cache/${pattern}x"
    if [ ! -d "$out" ]; then
        mkdir -p "$out" && dpkg-deb -x "$deb" "$out"
    fi
    ls "$out"/boot/vmlinuz-*
}
k510=$(fetch linux-image-5.10.0-)
k61=$(fetch linux-image-6.1.0-)

cargo build --release -q -p urk
cargo build --release -q -p urk-engine --example server
work=$(mktemp -d)
trap '[ -n "${URK_KEEP:-}" ] || rm -rf "$work"' EXIT
initrd="$work/root"
mkdir -p "$initrd"/{bin,proc,sys,dev,tmp,lib64,lib/x86_64-linux-gnu}
cp /bin/busybox "$initrd/bin/busybox"
ln -s busybox "$initrd/bin/sh"
cp target/release/urk "$initrd/urk"
cp target/release/examples/server "$initrd/server"
for lib in $(ldd target/release/urk target/release/examples/server | grep -o '/[^ ]*\.so[^ ]*' | sort -u); do
    mkdir -p "$initrd$(dirname "$lib")"
    cp -L "$lib" "$initrd$lib"
done
cp tests/kernels/init.sh "$initrd/init"
chmod +x "$initrd/init"
(cd "$initrd" && find . | cpio -o -H newc --quiet | gzip -1) > "$work/initrd.gz"

status=0
boot() {
    local kernel=$1 best=$2 lacks=$3
    local log="$work/$(basename "$kernel").log"
    timeout 300 qemu-system-x86_64 -accel tcg -cpu max -m 1024 -smp 2 -nographic -no-reboot -nic none \
        -kernel "$kernel" -initrd "$work/initrd.gz" \
        -append "console=ttyS0 quiet panic=-1 urk.best=$best urk.lacks=$lacks" > "$log" 2>&1 || true
    grep -E "^URK-" "$log" | tr -d "\r" || true
    if grep -q '^URK-KERNEL-PASS' "$log"; then
        echo "kernel $(basename "$kernel"): pass"
    else
        echo "kernel $(basename "$kernel"): FAIL (last lines of the console follow)"
        tail -n 20 "$log"
        status=1
    fi
}
boot "$k510" legacy full,basic
boot "$k61" full ""
exit $status
