#!/usr/bin/env python3
"""A userspace Ethernet hub with netem's impairments, for kernels built without sch_netem.

Creates one TAP device per name given (in the network namespace it runs in), prints
"ready", then forwards every frame read from one TAP to all the others, dropping it with
probability --loss and delaying it by --delay-ms +- --jitter-ms (uniform, so frames may be
reordered, as with netem's jitter). The test moves each TAP into its host's namespace; the
file descriptors stay attached. Ends when stdin closes or on SIGTERM.
"""
import argparse
import fcntl
import heapq
import os
import random
import select
import signal
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000


def open_tap(name):
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
    return fd


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--loss", type=float, default=0.0)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("taps", nargs="+")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    rng = random.Random(args.seed)
    fds = [open_tap(name) for name in args.taps]
    print("ready", flush=True)
    pending = []  # (due, sequence, destination fd, frame)
    sequence = 0
    forwarded = dropped = 0
    while True:
        timeout = max(0.0, pending[0][0] - time.monotonic()) if pending else 1.0
        readable, _, _ = select.select(fds + [sys.stdin], [], [], timeout)
        if sys.stdin in readable and not sys.stdin.buffer.read1(4096):
            break
        for fd in readable:
            if fd is sys.stdin:
                continue
            while True:
                try:
                    frame = os.read(fd, 65536)
                except BlockingIOError:
                    break
                if rng.random() < args.loss:
                    dropped += 1
                    continue
                delay = args.delay_ms + rng.uniform(-args.jitter_ms, args.jitter_ms)
                due = time.monotonic() + max(0.0, delay) / 1000.0
                for other in fds:
                    if other != fd:
                        heapq.heappush(pending, (due, sequence, other, frame))
                        sequence += 1
                forwarded += 1
        now = time.monotonic()
        while pending and pending[0][0] <= now:
            _, _, fd, frame = heapq.heappop(pending)
            try:
                os.write(fd, frame)
            except OSError:
                pass  # the host's interface is down: the frame is lost, as on a real wire
    print(f"forwarded {forwarded} frames, dropped {dropped}", file=sys.stderr)


if __name__ == "__main__":
    main()
