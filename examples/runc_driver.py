#!/usr/bin/env python3
"""A minimal runc-style parent for examples/minimal_runc_init (what runc's Go side does).

    runc_driver.py INIT_BINARY MESSAGE.bin

Makes a socketpair, starts INIT_BINARY with its end on fd 3 and _LIBCONTAINER_INITPIPE=3, writes
the bootstrap message (from `nsentry encode --runc 1.2 plan.json`), reads the pid report
{"stage1_pid":N,"stage2_pid":M} (skipping runc 1.1's 0x00 "past initial setup" bytes), then
reaps stage-0 and the two stages, which are our children: the init clones them with
CLONE_PARENT, as runc's nsexec does. Prints the pid report, then stage-2's stdout; exits 0 only
if every stage exited 0.
"""
import json
import os
import socket
import subprocess
import sys


def main():
    binary, message_file = sys.argv[1], sys.argv[2]
    with open(message_file, "rb") as f:
        message = f.read()
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)

    def child_end_on_fd3():
        if child.fileno() == 3:
            os.set_inheritable(3, True)
        else:
            os.dup2(child.fileno(), 3)  # dup2 clears CLOEXEC on fd 3

    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "_LIBCONTAINER_INITPIPE": "3"}
    stage0 = subprocess.Popen([binary], preexec_fn=child_end_on_fd3, close_fds=False, env=env,
                              stdout=subprocess.PIPE)
    child.close()
    parent.sendall(message)

    line = b""
    while not line.endswith(b"\n"):
        b = parent.recv(1)
        if not b:
            sys.exit("runc_driver: end of file before the pid report")
        if line == b"" and b == b"\0":
            continue
        line += b
    pids = json.loads(line)
    print("pid report: " + line.decode().strip(), flush=True)

    ok = stage0.wait(timeout=20) == 0
    for name in ("stage1_pid", "stage2_pid"):
        _, status = os.waitpid(pids[name], 0)
        ok = ok and os.waitstatus_to_exitcode(status) == 0
    sys.stdout.write(stage0.stdout.read().decode())
    parent.close()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
