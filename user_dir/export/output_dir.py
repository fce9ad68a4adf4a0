"""The export folder appears whole or not at all.

Everything is written into a temporary sibling folder (same file system, so the final ``rename``
is atomic); only when the export and its checks finished is it renamed to ``--out``. A previous
export at ``--out`` is replaced the same way; any other existing, non-empty folder is refused
rather than overwritten. On any failure the temporary folder is removed and ``--out`` is left as
it was.
"""
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

CARD = "model_card.json"


class OutputError(ValueError):
    """``--out`` cannot be written."""


def check_out(out: str) -> None:
    """Refuse ``out`` before any work: a file, or a non-empty folder that is not an export of ours."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise OutputError(f"--out {out}: exists and is not a folder")
    if path.is_dir() and any(path.iterdir()) and not (path / CARD).is_file():
        raise OutputError(f"--out {out}: a non-empty folder that is not an export ({CARD} missing); choose "
                          "another --out or remove it")


@contextmanager
def atomic_folder(out: str):
    """Yield a temporary folder; on success it becomes ``out``, on an exception it is removed."""
    check_out(out)
    target = Path(out).absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    os.chmod(tmp, 0o755)  # mkdtemp's 0700 would stay on the installed folder
    try:
        yield tmp
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.rename(target, old / "previous")
            os.rename(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
