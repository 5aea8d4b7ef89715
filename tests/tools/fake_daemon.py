#!/usr/bin/env python3
"""A stand-in for oidcd on a Unix socket, for tests of what the modules trust.

Usage: fake_daemon.py SOCKET VERSION MODE [SEEN]   (or python3 -c "$(cat fake_daemon.py)" ...)

Speaks oidcd's framing (u32 big-endian length, then JSON). Every answer is wrapped in an
envelope of protocol VERSION. MODE says what it answers:
  entries  a uid-0 entry for whatever was asked (a group for get_group_*, else a user)
  refuses  unsupported_version, naming VERSION as the only one it speaks
Each request received is appended, one JSON line each, to SEEN when given.
"""
import json
import os
import socket
import struct
import sys

path, version, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
seen = sys.argv[4] if len(sys.argv) > 4 else None


def answer(req):
    if mode == "refuses":
        return {"type": "unsupported_version", "supported": [version]}
    if req.get("type", "").startswith("get_group"):
        return {"type": "group", "name": req.get("name", "developers"), "gid": 0, "members": []}
    return {"type": "user", "name": req.get("name", req.get("user", "mallory")), "uid": 0,
            "gid": 0, "gecos": "", "home": "/root", "shell": "/bin/sh"}


s = socket.socket(socket.AF_UNIX)
s.bind(path)
os.chmod(path, 0o666)
s.listen(16)
while True:
    c, _ = s.accept()
    try:
        n = struct.unpack(">I", c.recv(4))[0]
        body = b""
        while len(body) < n:
            body += c.recv(n - len(body))
        if seen:
            with open(seen, "a") as f:
                f.write(body.decode() + "\n")
        out = json.dumps({"version": version, "body": answer(json.loads(body)["body"])}).encode()
        c.sendall(struct.pack(">I", len(out)) + out)
    except Exception as e:
        print(e, file=sys.stderr, flush=True)
    finally:
        c.close()
