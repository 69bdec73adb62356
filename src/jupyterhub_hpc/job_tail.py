"""Print the end of a job's output file, run as the job's user:
``python3 -I -S job_tail.py MAX_BYTES OUTPUT_PATTERN JOB_ID``.

OUTPUT_PATTERN is the site's fixed job output setting (Slurm's ``--output``, relative to the home directory: ``%j``
the job id, ``%u`` the user name, ``%%`` a percent sign) and JOB_ID digits: the file is found here, from the running
user's own home directory and name (the password database, never the environment), so the hub's sudo rule names
every argument but the job id, and no path of the hub's choosing is ever read. A pattern with a ``..`` component or
any other ``%`` is refused, and so is any other number of arguments.

The file is the user's: it may be a symbolic link, a FIFO, a device or a file that never ends. Only a regular
file, opened without following a link, is read, and only its last MAX_BYTES bytes (one pread, no loop): the
command ends at once whatever the file is. The first line printed is the file's size in bytes, so the hub can
say the output was cut. Standard library only, run with ``python3 -I -S``.

It ships in the package (hash-locked with it) but is never imported by it, and imports nothing from it: the
batchspawner role installs a root-owned copy of this file, which the hub's sudo rule names (``tests/`` checks that
it imports only the standard library).
"""

import os
import pwd
import re
import stat
import sys

CEILING = 65536  # whatever the caller asks, never more
USAGE = "usage: job_tail.py MAX_BYTES OUTPUT_PATTERN JOB_ID"
_FIELD = re.compile(r"%(.?)", re.DOTALL)


def _digits(text: str, most: int) -> bool:
    return 0 < len(text) <= most and text.isascii() and text.isdigit()


def output_path(pattern: str, job_id: str, user: str, home: str) -> str:
    """The job's output file: the pattern's %j, %u and %% filled, relative to the home directory. ValueError: a
    pattern this does not read (empty, a NUL or a backslash, a ``..`` component, another ``%``) or a job id that is not
    digits."""
    if not _digits(job_id, 10):
        raise ValueError("the job id is not digits")
    if not pattern or "\0" in pattern or "\\" in pattern or ".." in pattern.split("/"):
        raise ValueError("the output pattern is not a plain path below the home directory")
    fields = {"j": job_id, "u": user, "%": "%"}

    def fill(match: re.Match[str]) -> str:
        if match.group(1) not in fields:
            raise ValueError("the output pattern has a % other than %j, %u and %%")
        return fields[match.group(1)]

    name = _FIELD.sub(fill, pattern)
    if "/" in user or ".." in name.split("/"):
        raise ValueError("the output pattern is not a plain path below the home directory")
    return os.path.join(home, name)


def main(argv: list[str]) -> int:
    if len(argv) != 4 or not _digits(argv[1], 18):
        print(USAGE, file=sys.stderr)
        return 2
    want = min(int(argv[1]), CEILING)
    try:
        account = pwd.getpwuid(os.getuid())
    except KeyError:
        print("the running user has no entry in the password database", file=sys.stderr)
        return 1
    try:
        path = output_path(argv[2], argv[3], account.pw_name, account.pw_dir)
    except ValueError as err:
        print(f"{USAGE}: {err}", file=sys.stderr)
        return 2
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
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
