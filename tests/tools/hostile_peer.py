"""A hostile local user on oidcd's socket (run under setpriv as an unprivileged uid).

    hostile_peer.py send                 frames (hex, one a line) on stdin, each on a new
                                         connection, half-closed; prints each reply in hex
    hostile_peer.py hog CONNS NAME [DEPTH]
                                         CONNS connections (a thread each) sending
                                         get_user_by_name NAME back to back, DEPTH (2) in flight
                                         on each; prints READY after the first answer, then
                                         "ANSWERS n BUSY n" every 0.5 s
    hostile_peer.py trickle CONNS        CONNS connections each announcing a 100-byte request
                                         and sending one byte every 100 ms; reconnects when
                                         dropped; prints READY, then "DROPPED n" every 0.5 s
    hostile_peer.py hold CONNS LEN SEND  CONNS connections each announcing LEN bytes and
                                         sending SEND of them, then holding the connection;
                                         prints READY
Runs until killed (except send).
"""
import json
import select
import socket
import struct
import sys
import threading
import time

SOCKET = "/run/oidcd/socket"


def connect():
    s = socket.socket(socket.AF_UNIX)
    s.connect(SOCKET)
    return s


def frame(body):
    data = json.dumps({"version": 1, "body": body}).encode()
    return struct.pack(">I", len(data)) + data


def read_frame(s):
    head = b""
    while len(head) < 4:
        got = s.recv(4 - len(head))
        if not got:
            return None
        head += got
    (n,) = struct.unpack(">I", head)
    body = b""
    while len(body) < n:
        got = s.recv(n - len(body))
        if not got:
            return None
        body += got
    return json.loads(body)


def send():
    for line in sys.stdin:
        data = bytes.fromhex(line.strip())
        s = connect()
        s.settimeout(3)
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        got = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
        except OSError:
            pass
        s.close()
        print(got.hex(), flush=True)


def hog(conns, name, depth):
    """A thread per connection keeping DEPTH requests in flight on it, so new ones are always
    waiting whole in the socket when the daemon has answered the last, whatever the other
    connections do."""
    request = frame({"type": "get_user_by_name", "name": name})
    counts = [[0, 0] for _ in range(conns)]

    def run(mine):
        s = None
        while True:
            try:
                if s is None:
                    s = connect()
                    s.sendall(request * depth)
                reply = read_frame(s)
                if reply is None or reply["body"].get("code") == "busy":
                    raise OSError("refused")
                mine[0] += 1
                s.sendall(request)
            except OSError:
                mine[1] += 1
                if s is not None:
                    s.close()
                s = None
                time.sleep(0.01)

    for c in counts:
        threading.Thread(target=run, args=(c,), daemon=True).start()
    while sum(c[0] for c in counts) == 0:
        time.sleep(0.01)
    print("READY", flush=True)
    while True:
        time.sleep(0.5)
        answers = sum(c[0] for c in counts)
        busy = sum(c[1] for c in counts)
        print(f"ANSWERS {answers} BUSY {busy}", flush=True)


def trickle(conns):
    def start():
        s = connect()
        s.setblocking(False)
        s.send(struct.pack(">I", 100))
        return s

    socks = [start() for _ in range(conns)]
    dropped = 0
    print("READY", flush=True)
    last = time.monotonic()
    while True:
        time.sleep(0.1)
        for i, s in enumerate(socks):
            try:
                readable, _, _ = select.select([s], [], [], 0)
                if readable and not s.recv(4096):
                    raise OSError("closed")
                s.send(b" ")
            except OSError:
                dropped += 1
                s.close()
                socks[i] = start()
        if time.monotonic() - last >= 0.5:
            last = time.monotonic()
            print(f"DROPPED {dropped}", flush=True)


def hold(conns, length, count):
    held = []
    chunk = b"[" * 65536
    for _ in range(conns):
        s = connect()
        s.settimeout(5)
        held.append(s)
        try:
            s.sendall(struct.pack(">I", length))
            left = count
            while left > 0:
                left -= s.send(chunk[: min(left, len(chunk))])
        except OSError:
            pass  # refused and closed by the daemon, or it stopped reading: both are fine
    print("READY", flush=True)
    while True:
        time.sleep(60)


def main():
    cmd = sys.argv[1]
    if cmd == "send":
        send()
    elif cmd == "hog":
        hog(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else 2)
    elif cmd == "trickle":
        trickle(int(sys.argv[2]))
    elif cmd == "hold":
        hold(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
    else:
        sys.exit(f"unknown command {cmd}")


main()
