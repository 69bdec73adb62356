"""Print the end of a job's output file, run as the job's user: ``python3 -I -S job_tail.py MAX_BYTES PATH``.

The file is the user's: it may be a symbolic link, a FIFO, a device or a file that never ends. Only a regular
file, opened without following a link, is read, and only its last MAX_BYTES bytes (one pread, no loop): the
command ends at once whatever the file is. The first line printed is the file's size in bytes, so the hub can
say the output was cut. Standard library only, run with ``python3 -I -S``.

It ships in the package (hash-locked with it) but is never imported by it, and imports nothing from it: the
batchspawner role installs a root-owned copy of this file, which the hub's sudo rule names (``tests/`` checks that
it imports only the standard library).
"""

import os
import stat
import sys

CEILING = 65536  # whatever the caller asks, never more


def main(argv: list[str]) -> int:
    if len(argv) != 3 or not argv[1].isdigit():
        print("usage: job_tail.py MAX_BYTES PATH", file=sys.stderr)
        return 2
    want = min(int(argv[1]), CEILING)
    try:
        fd = os.open(argv[2], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as err:
        print(f"cannot open the job's output: {err.strerror}", file=sys.stderr)
        return 1
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            print("the job's output is not a regular file", file=sys.stderr)
            return 1
        start = max(0, info.st_size - want)
        data = os.pread(fd, want, start)
    finally:
        os.close(fd)
    sys.stdout.buffer.write(f"{info.st_size}\n".encode() + data)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
