#!/usr/bin/env python3
"""Drive one real PAM login for the demo: run pamtester against the oidc-demo service, show the
prompt exactly as pam_oidc.so sends it, approve the code at the provider (or wait for you to
approve it in a browser), press Enter, and report how long the login took after approval.

usage: login.py USER LOGIN PASSWORD [--browser]
"""
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
APPROVE = os.path.join(HERE, '..', 'tests', 'tools', 'approve_device.py')


def main():
    user, login, password = sys.argv[1:4]
    browser = '--browser' in sys.argv
    t0 = time.monotonic()
    p = subprocess.Popen(['pamtester', '-v', 'oidc-demo', user, 'authenticate', 'acct_mgmt'],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    # pam_oidc sends one prompt (QR, URL, code, "Press Enter...") and waits for the answer.
    buf = b''
    while b'Press Enter' not in buf:
        chunk = os.read(p.stdout.fileno(), 4096)
        if not chunk:
            sys.stdout.write(buf.decode(errors='replace'))
            print('\ndemo: pamtester ended before the prompt', file=sys.stderr)
            return 1
        buf += chunk
    # The prompt ends after "Press Enter ..." — read what is left of that line.
    while not buf.rstrip(b' ').endswith((b':', b'.', b'\n')):
        buf += os.read(p.stdout.fileno(), 4096)
    text = buf.decode(errors='replace')
    prompt_at = time.monotonic()
    print('-' * 78)
    print(text.rstrip())
    print('-' * 78)
    code = re.search(r'code:?\s+([A-Z0-9]{4}-[A-Z0-9]{4})', text)
    uri = re.search(r'(https?://\S+/device)\b', text)
    if not code or not uri:
        print('demo: could not read the code from the prompt', file=sys.stderr)
        p.kill()
        return 1
    if browser:
        print(f'demo: open {uri.group(1)} in a browser on this machine, enter {code.group(1)},')
        print(f'demo: sign in as {login} / {password}, approve, then press Enter here.')
        sys.stdin.readline()
        approved_at = time.monotonic()
    else:
        print(f'demo: approving code {code.group(1)} at the provider as {login} (what you would do on your phone)...')
        rc = subprocess.call([sys.executable, APPROVE, uri.group(1), code.group(1), login, password],
                             stderr=subprocess.DEVNULL)
        approved_at = time.monotonic()
        print(f'demo: approval {"done" if rc == 0 else "FAILED"} in {approved_at - prompt_at:.2f} s; pressing Enter')
    p.stdin.write(b'\n')
    p.stdin.flush()
    rest = p.stdout.read().decode(errors='replace')
    rc = p.wait()
    done = time.monotonic()
    print(rest.rstrip())
    print(f'demo: pamtester exit {rc}; login finished {1000 * (done - approved_at):.0f} ms after approval '
          f'({done - t0:.2f} s in all)')
    return rc


if __name__ == '__main__':
    sys.exit(main())
