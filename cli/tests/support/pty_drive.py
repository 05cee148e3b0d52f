"""Drive a program through a pseudo-terminal, as a person at a terminal would.

usage: pty_drive.py STEPS_JSON -- PROGRAM ARGS...
STEPS_JSON is a list of [text to wait for, keys to type]. Prints the whole transcript; exits with
the program's exit code, or 90 when a text does not appear within 20 seconds."""
import json, os, pty, select, sys, time

steps = json.loads(sys.argv[1])
argv = sys.argv[sys.argv.index("--") + 1:]
pid, fd = pty.fork()
if pid == 0:
    os.environ["TERM"] = "xterm"
    os.execvp(argv[0], argv)

seen = b""
def read_for(seconds):
    global seen
    end = time.time() + seconds
    while time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.05)
        if r:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                return False
            if not chunk:
                return False
            seen += chunk
        else:
            return True
    return True

pos = 0
for text, keys in steps:
    deadline = time.time() + 20
    while text.encode() not in seen[pos:]:
        if time.time() > deadline or not read_for(0.2) and text.encode() not in seen[pos:]:
            sys.stdout.write(seen.decode("utf-8", "replace"))
            sys.stdout.write(f"\n[pty_drive] never saw {text!r}\n")
            os.kill(pid, 9)
            sys.exit(90)
    pos = seen.index(text.encode(), pos) + len(text)
    time.sleep(0.1)
    read_for(0.1)
    os.write(fd, keys.encode())

status = None
deadline = time.time() + 30
while time.time() < deadline:
    read_for(0.2)
    done, st = os.waitpid(pid, os.WNOHANG)
    if done:
        status = st
        read_for(0.2)
        break
if status is None:
    os.kill(pid, 9)
    _, status = os.waitpid(pid, 0)
sys.stdout.write(seen.decode("utf-8", "replace"))
sys.exit(os.waitstatus_to_exitcode(status))
