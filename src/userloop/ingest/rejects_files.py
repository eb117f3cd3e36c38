"""Retention of import rejects files (``WORKSPACE/rejects/PROJECT-KIND-….jsonl``): by age and by total size.

Every import that refuses rows writes such a file; without pruning they pile up forever. :func:`prune_rejects`
deletes a project's files older than ``keep_days``, then the oldest until the rest fit in ``max_bytes``; the
file just written (``keep``) is never deleted but cut at a line boundary when it alone is larger than the cap,
ending with a line that says so.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson


@dataclass
class Pruned:
    deleted: list[str] = field(default_factory=list)
    truncated: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {"deleted": self.deleted, "truncated": self.truncated}


def project_files(folder: Path, project: str) -> list[Path]:
    """The rejects files of ``project``, oldest first (project names hold no '-', so the prefix is exact)."""
    if not folder.is_dir():
        return []
    files = [p for p in folder.glob(f"{project}-*.jsonl") if p.is_file()]
    return sorted(files, key=lambda p: (p.stat().st_mtime, p.name))


def prune_rejects(folder: Path, project: str, *, keep_days: float, max_bytes: int, keep: Path | None = None) -> Pruned:
    """Apply the retention (see the module docstring) to ``project``'s rejects files in ``folder``."""
    out = Pruned()
    cutoff = time.time() - keep_days * 86_400
    files = project_files(folder, project)
    for path in files:
        if path != keep and path.stat().st_mtime < cutoff:
            _delete(path, out)
    files = [p for p in files if p.exists()]
    total = sum(p.stat().st_size for p in files)
    for path in files:
        if total <= max_bytes:
            break
        if path != keep:
            total -= path.stat().st_size
            _delete(path, out)
    if keep is not None and keep.exists() and keep.stat().st_size > max_bytes:
        truncate_lines(keep, max_bytes)
        out.truncated = str(keep)
    return out


def truncate_lines(path: Path, max_bytes: int) -> None:
    """Cut ``path`` to whole lines within ``max_bytes`` (less room for the closing note) and add the note."""
    note = orjson.dumps({"truncated": True, "reason": f"the rejects file was cut at {max_bytes} bytes"}) + b"\n"
    room = max(0, max_bytes - len(note))
    with path.open("r+b") as f:
        head = f.read(room)
        end = head.rfind(b"\n") + 1
        f.seek(end)
        f.write(note)
        f.truncate()


def _delete(path: Path, out: Pruned) -> None:
    path.unlink(missing_ok=True)
    out.deleted.append(path.name)
