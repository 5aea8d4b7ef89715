#!/usr/bin/env python3
"""Keyboard-interactive SSH client for the end-to-end tests (paramiko).

Prints one JSON object per line on stdout, each with "t" (seconds since start) and "event":
  connected                                   the transport is up
  info_request  name, instruction, prompts    one INFO_REQUEST ([text, echo] per prompt)
  auth          authenticated, error          the outcome of keyboard-interactive
  command       cmd, rc, stdout, stderr       the command run in a session, if any
  error         error                         anything else that went wrong
With --interactive, each INFO_REQUEST that holds prompts is answered only after a line arrives
on stdin (the test approves the code first); the line without its newline is the answer to
every prompt (EOF answers ''). Otherwise prompts are answered with --answer at once.

usage: kbdint_client.py HOST PORT USER [--interactive] [--answer X] [--cmd 'id'] [--timeout 30]
exit: 0 authenticated (and the command exited 0), 1 not authenticated, 2 other error
"""
import argparse
import json
import socket
import sys
import time

import paramiko

ap = argparse.ArgumentParser()
ap.add_argument('host')
ap.add_argument('port', type=int)
ap.add_argument('user')
ap.add_argument('--interactive', action='store_true')
ap.add_argument('--answer', default='')
ap.add_argument('--cmd')
ap.add_argument('--timeout', type=float, default=30)
a = ap.parse_args()
t0 = time.monotonic()


def emit(event, **fields):
    print(json.dumps({'t': round(time.monotonic() - t0, 3), 'event': event, **fields}), flush=True)


def handler(title, instructions, prompts):
    emit('info_request', name=title, instruction=instructions, prompts=[[p, bool(e)] for p, e in prompts])
    if not prompts:
        return []
    answer = a.answer
    if a.interactive:
        answer = sys.stdin.readline().rstrip('\n')
    return [answer for _ in prompts]


def main():
    sock = socket.create_connection((a.host, a.port), timeout=a.timeout)
    t = paramiko.Transport(sock)
    t.banner_timeout = a.timeout
    t.auth_timeout = a.timeout
    try:
        t.start_client(timeout=a.timeout)
        emit('connected')
        try:
            t.auth_interactive(a.user, handler)
        except paramiko.AuthenticationException as e:
            emit('auth', authenticated=False, error=repr(e))
            return 1
        emit('auth', authenticated=t.is_authenticated(), error=None)
        if not t.is_authenticated():
            return 1
        if a.cmd:
            ch = t.open_session(timeout=a.timeout)
            ch.exec_command(a.cmd)
            out = ch.makefile('rb').read().decode(errors='replace')
            err = ch.makefile_stderr('rb').read().decode(errors='replace')
            rc = ch.recv_exit_status()
            emit('command', cmd=a.cmd, rc=rc, stdout=out, stderr=err)
            return 0 if rc == 0 else 2
        return 0
    except Exception as e:  # noqa: BLE001 - every failure is reported, not raised
        emit('error', error=repr(e))
        return 2
    finally:
        t.close()


if __name__ == '__main__':
    sys.exit(main())
