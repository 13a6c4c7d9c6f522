"""Opening and writing files safely: regular files only, bounded reads, atomic writes that
follow the umask.

A FIFO, a device or a directory given where a file is expected is refused from its `stat`,
before any `open` that could block; JSON and other small files are read with a size limit.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path

from harness.errors import BadInput

MAX_SMALL_FILE = 16 * 1024 * 1024  # configs, manifests, tokenizers: far larger is not one


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def regular_file(path: str | Path, what: str = "file") -> os.stat_result:
    """stat of `path` (symlinks followed) if it is a regular file; BadInput otherwise."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise BadInput(path, f"no such file ({what})") from None
    except PermissionError:
        raise BadInput(path, "permission denied") from None
    except OSError as e:
        raise BadInput(path, f"cannot stat: {e.strerror or e}") from None
    if not stat.S_ISREG(st.st_mode):
        raise BadInput(path, f"is {_kind(st.st_mode)}, expected a regular {what}")
    return st


def open_regular(path: str | Path, what: str = "file"):
    """Open a regular file for binary reading without ever blocking on a FIFO (O_NONBLOCK),
    and re-check the type on the open descriptor (the path may have been swapped)."""
    regular_file(path, what)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except PermissionError:
        raise BadInput(path, "permission denied") from None
    except OSError as e:
        raise BadInput(path, f"cannot open: {e.strerror or e}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise BadInput(path, f"is {_kind(st.st_mode)}, expected a regular {what}")
    return os.fdopen(fd, "rb")


def read_small(path: str | Path, what: str = "file", limit: int = MAX_SMALL_FILE) -> bytes:
    """The bytes of a small regular file (config, manifest, tokenizer), at most `limit`."""
    size = regular_file(path, what).st_size
    if size > limit:
        raise BadInput(path, f"{size} bytes; a {what} larger than {limit} bytes is refused")
    try:
        with open_regular(path, what) as f:
            return f.read(limit + 1)[:limit]
    except OSError as e:
        raise BadInput(path, f"cannot read: {e.strerror or e}") from None


def read_json_object(path: str | Path, what: str = "JSON file") -> dict:
    """A small regular file holding one JSON object; every fault is one BadInput line."""
    raw = read_small(path, what)
    try:
        data = json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise BadInput(path, "not valid JSON (nested too deeply)") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise BadInput(path, f"not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise BadInput(path, f"is not a JSON object (a {type(data).__name__}): not a {what}")
    return data


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def follow_umask(path: str | Path, directory: bool = False) -> None:
    """mkstemp/mkdtemp create 0600/0700; give the result the mode open()/mkdir() would."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


def check_output_target(path: str | Path, force: bool = False, hint: str = "") -> None:
    """An output path must be absent or a regular file (or a link to one): never replace a
    device node, a FIFO or a directory (renaming over /dev/null as root replaces the device)
    unless forced. `hint` tells how to force it."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    except OSError as e:
        raise BadInput(path, f"cannot write: {e.strerror or e}") from None
    if stat.S_ISDIR(st.st_mode):
        raise BadInput(path, "cannot write: is a directory")
    if not stat.S_ISREG(st.st_mode) and not force:
        raise BadInput(path, f"cannot write: is {_kind(st.st_mode)}; refusing to replace it"
                             + hint)


@contextmanager
def atomic_file(path: str | Path, suffix: str = ".tmp"):
    """Yield a temporary path beside `path`; on success it is renamed onto `path` with the
    umask's mode, on any failure (signals included) it is removed."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
        os.close(fd)
    except OSError as e:
        raise BadInput(path, f"cannot write: {e.strerror or e}") from None
    try:
        yield Path(tmp)
        follow_umask(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_dir(path: str | Path):
    """Yield a temporary directory beside `path`, filled by the caller, then renamed onto
    `path` (which must be absent or empty). Removed on any failure, signals included. If
    another process made `path` meanwhile, FileExistsError is raised (the caller decides
    whether that result is acceptable)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    except OSError as e:
        raise BadInput(path, f"cannot write: {e.strerror or e}") from None
    try:
        yield tmp
        follow_umask(tmp, directory=True)
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()
        try:
            os.replace(tmp, path)
        except OSError as e:
            if path.exists():  # ENOTEMPTY/EEXIST: someone else's complete result is there
                raise FileExistsError(str(path)) from e
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
