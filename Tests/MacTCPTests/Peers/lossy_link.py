#!/usr/bin/env python3
"""A faulty link between two TUN devices, for the fault-injection tests.

    lossy_link.py NEAR_TUN FAR_NAMESPACE FAR_TUN LOSS REORDER SEED

NEAR_TUN is a TUN device in this process's network namespace, FAR_TUN one in the namespace
FAR_NAMESPACE (both made beforehand with `ip tuntap add ... mode tun`). Every IP packet read
from one is written to the other, except that each packet is dropped with probability LOSS
and held back with probability REORDER (it then goes out after the next packet in its
direction, or after 2 ms if none comes). SIGUSR1 cuts the link (every packet is dropped, both
ways) and SIGUSR2 heals it. "ready" is printed once both devices are attached; on SIGTERM the
counts are printed as one JSON line and the program ends.
"""
import ctypes
import fcntl
import json
import os
import random
import select
import signal
import struct
import sys

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
CLONE_NEWNET = 0x40000000


def attach(name):
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


def enter(namespace):
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open("/run/netns/" + namespace, os.O_RDONLY)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns " + namespace)
    os.close(fd)


def main():
    near_name, far_namespace, far_name = sys.argv[1:4]
    loss, reorder = float(sys.argv[4]), float(sys.argv[5])
    chance = random.Random(int(sys.argv[6]))
    near = attach(near_name)
    enter(far_namespace)
    far = attach(far_name)
    other = {near: far, far: near}
    held = {near: None, far: None}  # a packet held back, per direction (by its source)
    counts = {"forwarded": 0, "dropped": 0, "reordered": 0, "cutDropped": 0}
    state = {"cut": False, "running": True}

    def cut(*_):
        state["cut"] = True

    def heal(*_):
        state["cut"] = False

    def stop(*_):
        state["running"] = False

    signal.signal(signal.SIGUSR1, cut)
    signal.signal(signal.SIGUSR2, heal)
    signal.signal(signal.SIGTERM, stop)
    print("ready", flush=True)
    while state["running"]:
        waiting = any(packet is not None for packet in held.values())
        try:
            readable, _, _ = select.select([near, far], [], [], 0.002 if waiting else 0.1)
        except InterruptedError:
            continue
        for source in (near, far):
            if source not in readable and held[source] is not None:
                os.write(other[source], held[source])
                held[source] = None
        for source in readable:
            try:
                packet = os.read(source, 65536)
            except BlockingIOError:
                continue
            if state["cut"]:
                counts["cutDropped"] += 1
                continue
            if chance.random() < loss:
                counts["dropped"] += 1
                continue
            if held[source] is None and chance.random() < reorder:
                held[source] = packet
                counts["reordered"] += 1
                continue
            try:
                os.write(other[source], packet)
                if held[source] is not None:
                    os.write(other[source], held[source])
                    held[source] = None
                counts["forwarded"] += 1
            except OSError:
                counts["dropped"] += 1
    print(json.dumps(counts), flush=True)


if __name__ == "__main__":
    main()
