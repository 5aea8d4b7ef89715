#!/usr/bin/env python3
"""Looks users up through glibc (getpwnam_r, via ctypes) and prints one JSON line per lookup,
with what glibc returned: {"name", "ret" (0 or the errno getpwnam_r returned: EAGAIN = 11 for
UNAVAIL), "found", "uid", "gecos", "ms"}.

    nss_probe.py NAME...           one lookup per name
    nss_probe.py --serve           a long-running process: a name per stdin line, one answer
                                   line each; "!maps" answers how many mappings of nss.map
                                   the process holds
    nss_probe.py --fork NAME...    looks up, forks; the child looks each name up again
    nss_probe.py --exec NAME...    looks up, then execs ls -l /proc/self/fd (fd leak check)
"""
import ctypes
import json
import os
import sys
import time

libc = ctypes.CDLL("libc.so.6", use_errno=True)


class Passwd(ctypes.Structure):
    _fields_ = [
        ("pw_name", ctypes.c_char_p),
        ("pw_passwd", ctypes.c_char_p),
        ("pw_uid", ctypes.c_uint),
        ("pw_gid", ctypes.c_uint),
        ("pw_gecos", ctypes.c_char_p),
        ("pw_dir", ctypes.c_char_p),
        ("pw_shell", ctypes.c_char_p),
    ]


def lookup(name):
    pw = Passwd()
    buf = ctypes.create_string_buffer(16384)
    res = ctypes.POINTER(Passwd)()
    t = time.perf_counter()
    ret = libc.getpwnam_r(name.encode(), ctypes.byref(pw), buf, len(buf), ctypes.byref(res))
    ms = (time.perf_counter() - t) * 1000
    out = {"name": name, "ret": ret, "found": bool(res) and ret == 0, "ms": round(ms, 3)}
    if out["found"]:
        out["uid"] = pw.pw_uid
        out["gecos"] = pw.pw_gecos.decode()
    return out


def map_count():
    """Mappings of the map file, current or replaced ("/run/oidcd/nss.map (deleted)")."""
    with open("/proc/self/maps") as f:
        return sum(1 for line in f if "/nss.map" in line)


def say(obj):
    print(json.dumps(obj), flush=True)


def main():
    args = sys.argv[1:]
    if args and args[0] == "--serve":
        say({"ready": True})
        for line in sys.stdin:
            name = line.strip()
            if name == "!maps":
                say({"maps": map_count()})
            elif name:
                say(lookup(name))
        return
    if args and args[0] == "--fork":
        names = args[1:]
        for n in names:
            say(dict(lookup(n), who="parent", maps=map_count()))
        pid = os.fork()
        if pid == 0:
            for n in names:
                say(dict(lookup(n), who="child"))
            sys.stdout.flush()
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        say({"child_status": status})
        return
    if args and args[0] == "--exec":
        for n in args[1:]:
            say(dict(lookup(n), maps=map_count()))
        sys.stdout.flush()
        os.execv("/bin/ls", ["ls", "-l", "/proc/self/fd/"])
    for n in args:
        say(lookup(n))


main()
