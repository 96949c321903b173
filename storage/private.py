"""Files and folders only their owner may read: the data dir, the databases, key files.

The data dir is created 0700 and the stores' files 0600 (tightened at open when an older
version left them 0644): inference logs, password hashes and encrypted channel secrets are
nobody else's business on a shared host.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

__all__ = ["private_dir", "private_file"]


def private_dir(path: str | Path) -> Path:
    """Create ``path`` (and missing parents) as 0700; a folder that exists is left as it is
    (it may be a mount point the operator set up)."""
    p = Path(path).expanduser()
    if not p.exists():
        p.mkdir(parents=True, exist_ok=True, mode=0o700)
        p.chmod(0o700)  # mkdir's mode is masked by the umask
    return p


def private_file(path: str | Path, *, create: bool = False) -> None:
    """Make ``path`` 0600 (``create``: create it empty first, 0600 from the start)."""
    p = Path(path).expanduser()
    if create and not p.exists():
        with contextlib.suppress(FileExistsError):
            os.close(os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    try:
        mode = stat.S_IMODE(p.stat().st_mode)
    except FileNotFoundError:
        return
    if mode & 0o077:
        p.chmod(mode & 0o700 or 0o600)
