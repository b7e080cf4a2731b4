"""The locks of a sweep folder: `SweepLock` (an exclusive `flock` on a file naming its holder, or an
exclusive create where the file system has no `flock`, taken over from a run that is gone), `SweepBusy`
when another run holds one, the lock file names, and `say`, the one-line messages of a sweep on stderr."""

from __future__ import annotations

import datetime
import errno
import json
import os
import socket
import sys
import time

LOCK_NAME = "sweep.lock"
try:
    import fcntl

    _FLOCK = True
except ImportError:  # pragma: no cover - not POSIX
    _FLOCK = False


class SweepBusy(ValueError):
    """Another run holds the lock of the sweep folder."""


def say(message: str) -> None:
    """A one-line message of the sweep on stderr, prefixed `collapse-jax: `."""
    print(f"collapse-jax: {message}", file=sys.stderr, flush=True)


def _holder(info: dict | None) -> str:
    if not info:
        return "holder unknown: the lock file is empty or unreadable"
    text = f"pid {info.get('pid')} on host {info.get('host')}, since {info.get('started')}"
    return text + (f": {info['command']}" if info.get("command") else "")


def parse_holder(data: bytes) -> dict | None:
    """The holder a lock file names (its JSON object), or None where it is empty or unreadable."""
    try:
        info = json.loads(data.decode())
    except (UnicodeDecodeError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def pid_alive(pid) -> bool:
    """Whether a process `pid` runs on this host (a process of another user counts as running)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. another user's process
        return True
    return True


def lock_name(shard: tuple[int, int] | None) -> str:
    """The lock file of a run: `sweep.lock` unsharded, `sweep.shard-i-of-N.lock` for shard i of N."""
    return LOCK_NAME if shard is None else f"sweep.shard-{shard[0]}-of-{shard[1]}.lock"


class SweepLock:
    """An exclusive lock in a sweep folder (see the docstring of `collapse_jax.sweep`): `out/sweep.lock` by default, held
    for a whole run. `acquire` raises `SweepBusy` naming the folder (`subject`) and the holder."""

    def __init__(self, path: str, fd: int | None):
        self.path, self.fd = path, fd

    @classmethod
    def acquire(
        cls,
        out: str,
        name: str = LOCK_NAME,
        subject: str | None = None,
        advice: str = "two runs must not write one folder: wait for it to finish or choose another --out",
    ) -> SweepLock:
        path = os.path.join(out, name)
        if os.path.exists(out) and not os.path.isdir(out):
            raise ValueError(f"out: {out} is not a directory")
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            return cls._acquire(out, path, subject or out, advice)
        except OSError as error:
            raise ValueError(f"out: cannot lock {path}: {error.strerror or error}") from None

    @classmethod
    def _acquire(cls, out: str, path: str, subject: str, advice: str) -> SweepLock:
        me = json.dumps(
            {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                "command": " ".join(sys.argv),
            }
        ).encode()
        if _FLOCK:
            for _ in range(100):
                try:
                    fd, created = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644), True
                except FileExistsError:
                    fd, created = os.open(path, os.O_RDWR), False
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    holder = parse_holder(os.pread(fd, 1 << 16, 0))
                    # its holder may be between taking the lock and writing its name (slow on a loaded
                    # machine): wait up to 2 s for the name before reporting the holder as unknown
                    for _ in range(40):
                        if holder is not None:
                            break
                        time.sleep(0.05)
                        holder = parse_holder(os.pread(fd, 1 << 16, 0))
                    os.close(fd)
                    raise SweepBusy(
                        f"out: {subject} is in use by another sweep run ({_holder(holder)}); {advice}"
                    ) from None
                except OSError as error:
                    os.close(fd)
                    if error.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                        raise
                    if created:
                        os.unlink(path)
                    break  # no flock on this file system: an exclusive create instead
                try:
                    try:  # a releasing holder unlinks the file: lock the file that is at `path` now
                        same = os.path.samestat(os.stat(path), os.fstat(fd))
                    except FileNotFoundError:
                        same = False
                    if not same:
                        os.close(fd)
                        continue
                    left = os.pread(fd, 1 << 16, 0)
                    if left:
                        say(f"{out}: taking over the lock left by a run that is gone ({_holder(parse_holder(left))})")
                    os.ftruncate(fd, 0)
                    os.pwrite(fd, me, 0)
                    os.fsync(fd)
                except BaseException:
                    os.close(fd)
                    raise
                return cls(path, fd)
            else:
                raise SweepBusy(f"out: could not lock {path}: it keeps being replaced")
        for _ in range(100):
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                try:
                    with open(path, "rb") as stream:
                        holder = parse_holder(stream.read())
                except FileNotFoundError:
                    continue
                if holder and holder.get("host") == socket.gethostname() and not pid_alive(holder.get("pid")):
                    say(f"{out}: taking over the lock left by a run that is gone ({_holder(holder)}: no such process)")
                    try:
                        os.unlink(path)
                    except FileNotFoundError:
                        pass
                    continue
                raise SweepBusy(
                    f"out: {subject} is in use by another sweep run ({_holder(holder)}); {advice} (if that "
                    f"run is gone, remove {path})"
                ) from None
            try:
                os.write(fd, me)
                os.fsync(fd)
            finally:
                os.close(fd)
            return cls(path, None)
        raise SweepBusy(f"out: could not lock {path}: it keeps being replaced")

    def release(self) -> None:
        try:
            os.unlink(self.path)  # before closing: a run waiting on this file then sees it is gone
        except FileNotFoundError:
            pass
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
