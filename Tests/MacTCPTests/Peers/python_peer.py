"""A second, independent peer for the MacTCP tests: Python's socket module.

Usage: python_peer.py SCENARIO PORT
Connects to 127.0.0.1:PORT, plays the scenario and prints one JSON line with what it saw.
Every blocking step has a deadline (socket timeout), so a broken peer cannot hang a test.
"""
import fcntl
import json
import select
import socket
import struct
import sys

SIOCATMARK = 0x8905


def at_mark(sock):
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), SIOCATMARK, b"\0\0\0\0"))[0] == 1


def read_to_end(sock):
    """Reads until end of stream; returns the data and the offsets where urgent regions end."""
    data = b""
    marks = set()
    while True:
        # At the mark the next byte is the last urgent byte: check before and after reading.
        select.select([sock], [], [], 10)
        if at_mark(sock):
            marks.add(len(data) + 1)
        chunk = sock.recv(65536)
        if not chunk:
            return data, sorted(marks)
        data += chunk
        if at_mark(sock):
            marks.add(len(data) + 1)


def main():
    scenario, port = sys.argv[1], int(sys.argv[2])
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.settimeout(10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_OOBINLINE, 1)
    result = {}
    if scenario == "urgent-to-mactcp":
        # normal, urgent, normal: MacTCP must return the region apart with its mark.
        sock.sendall(b"before|")
        sock.recv(1)  # the test's go-ahead: it has read "before|"
        sock.send(b"URGENT", socket.MSG_OOB)
        sock.sendall(b"|after")
        sock.shutdown(socket.SHUT_WR)
        result["done"] = sock.recv(16).decode()
    elif scenario == "urgent-from-mactcp":
        data, marks = read_to_end(sock)
        result["data"] = data.decode()
        result["marks"] = marks
    elif scenario == "half-close":
        # MacTCP sends and half-closes; we read to its FIN, then answer and close.
        data, _ = read_to_end(sock)
        result["data"] = data.decode()
        sock.sendall(b"answer after your FIN")
        sock.shutdown(socket.SHUT_WR)
    print(json.dumps(result), flush=True)
    sock.close()


if __name__ == "__main__":
    main()
