#!/usr/bin/env python3
"""An mDNS reflector for the labs, as an office's mDNS gateway (or Avahi's reflector) is:
every mDNS packet heard on one interface goes out of the others, to the mDNS group.

Usage: mdns_reflector.py IFACE ADDR [IFACE ADDR ...] (each interface with its IPv4 address,
in the network namespace it runs in). Prints "ready" once it listens; ends when stdin
closes or on SIGTERM.
"""
import select
import socket
import sys

GROUP = ("224.0.0.251", 5353)


def member(name, addr):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, name.encode())
    sock.bind(("", GROUP[1]))
    group = socket.inet_aton(GROUP[0]) + socket.inet_aton(addr)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, group)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(addr))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
    # mDNS receivers may insist on a hop limit of 255 (RFC 6762 section 11).
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
    return sock


def main():
    args = sys.argv[1:]
    sockets = [member(name, addr) for name, addr in zip(args[0::2], args[1::2])]
    ours = set(args[1::2])
    print("ready", flush=True)
    while True:
        readable, _, _ = select.select(sockets + [sys.stdin], [], [])
        for sock in readable:
            if sock is sys.stdin:
                if not sys.stdin.readline():
                    return
                continue
            data, source = sock.recvfrom(9000)
            if source[0] in ours:
                continue
            for other in sockets:
                if other is not sock:
                    other.sendto(data, GROUP)


if __name__ == "__main__":
    main()
