#!/bin/sh
# /init of the test initramfs: checks urk's io level ladder on the running
# kernel, prints URK-KERNEL-PASS or URK-KERNEL-FAIL, and powers off.
# The kernel command line says what to expect: urk.best=LEVEL and
# urk.lacks="LEVEL ..." (levels this kernel must refuse).
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
ip link set lo up

best=$(sed -n 's/.*urk\.best=\([a-z]*\).*/\1/p' /proc/cmdline)
lacks=$(sed -n 's/.*urk\.lacks=\([a-z,]*\).*/\1/p' /proc/cmdline | tr ',' ' ')
fail=0
say() { echo "URK-CHECK $*"; }
bad() { echo "URK-CHECK FAIL: $*"; fail=1; }

echo "URK-KERNEL $(uname -r)"
/server 600 > /tmp/server.url &
i=0
while [ ! -s /tmp/server.url ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
url=$(head -n 1 /tmp/server.url)
say "server $url"

# auto picks the best level this kernel really has, and says so.
/urk -t1 -c4 -n 200 --json "$url" > /tmp/auto.json 2> /tmp/auto.err
# Both kernels here predate incremental buffers (6.12): the probe must fall
# back to whole buffers.
if grep -q "\"level\": \"$best\"" /tmp/auto.json && grep -q '"requests": 200,' /tmp/auto.json \
    && grep -q '"incremental_buffers": false' /tmp/auto.json; then
    say "auto -> $best, 200 requests; setup flags $(grep -A3 '"setup_flags"' /tmp/auto.json | tr -d ' \n' | sed 's/.*\[\(.*\)\].*/[\1]/'), $(grep -o '"ext_arg": [a-z]*' /tmp/auto.json), $(grep -o '"incremental_buffers": [a-z]*' /tmp/auto.json)"
else
    bad "auto: $(cat /tmp/auto.err) $(grep -E '"level"|"requests"|"incremental_buffers"' /tmp/auto.json)"
fi

# every level the kernel supports completes exactly N requests.
for level in full basic legacy epoll; do
    case " $lacks " in *" $level "*) continue ;; esac
    /urk -t2 -c8 -n 500 --io "$level" --json "$url" > /tmp/l.json 2> /tmp/l.err
    if [ $? -eq 0 ] && grep -q '"requests": 500,' /tmp/l.json && grep -q '"connect": 0,' /tmp/l.json; then
        say "$level: 500 requests"
    else
        bad "$level: $(cat /tmp/l.err) $(grep -E '"requests"|"connect"|"read"' /tmp/l.json | tr -d '\n')"
    fi
done

# long bodies are discarded unread (MSG_TRUNC receives) at every level, and
# every byte is still counted: 200 x (100000 + a 61-byte head).
/server 600 100000 > /tmp/big.url &
i=0
while [ ! -s /tmp/big.url ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
big=$(head -n 1 /tmp/big.url)
for level in full basic legacy epoll; do
    case " $lacks " in *" $level "*) continue ;; esac
    /urk -t1 -c4 -n 200 --io "$level" --json "$big" > /tmp/b.json 2> /tmp/b.err
    if [ $? -eq 0 ] && grep -q '"requests": 200,' /tmp/b.json && grep -q '"bytes_read": 20012200,' /tmp/b.json \
        && ! grep -q '"skips_per_1000_requests": 0.0' /tmp/b.json; then
        say "$level: 200 long bodies, $(grep -o '"skips_per_1000_requests": [0-9.]*' /tmp/b.json)"
    else
        bad "$level long bodies: $(cat /tmp/b.err) $(grep -E '"requests"|"bytes_read"|"read"|"timeout"|"skips' /tmp/b.json | tr -d '\n')"
    fi
done

# a level the kernel lacks is refused with one line and status 2.
for level in $lacks; do
    /urk -n 10 --io "$level" "$url" > /tmp/r.out 2> /tmp/r.err
    rc=$?
    if [ $rc -eq 2 ] && [ "$(wc -l < /tmp/r.err)" -eq 1 ] && [ ! -s /tmp/r.out ]; then
        say "$level refused: $(cat /tmp/r.err)"
    else
        bad "$level: exit $rc, $(cat /tmp/r.err)"
    fi
done

if [ $fail -eq 0 ]; then echo "URK-KERNEL-PASS $(uname -r)"; else echo "URK-KERNEL-FAIL $(uname -r)"; fi
poweroff -f
