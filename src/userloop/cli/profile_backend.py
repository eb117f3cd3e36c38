"""Where ``userloop tags|segments|users`` send their work: the owning server's API, or the workspace in process.

:func:`profile_backend` yields an object with the operations of :class:`userloop.profile.platform.Profiles`;
over HTTP (:class:`RemoteProfiles`) each maps to one route of ``/api/v1/tags|segments|users`` and returns the
same JSON the local call returns, so each command is written once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from userloop.api.client import ServerClient
    from userloop.profile.platform import Profiles


class RemoteProfiles:
    """The :class:`Profiles` operations through the server's API."""

    def __init__(self, client: ServerClient, project: str) -> None:
        self.client = client
        self.project = project

    def _call(self, method: str, path: str, *, params: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        query = {"project": self.project, **{k: v for k, v in (params or {}).items() if v is not None}}
        return self.client.call(method, path, params=query, **kwargs)

    # tags
    def tags(self) -> Any:
        return self._call("GET", "/api/v1/tags")

    def tag(self, name: str) -> Any:
        return self._call("GET", f"/api/v1/tags/{name}")

    def save_tag(self, definition: dict[str, Any]) -> Any:
        return self._call("POST", "/api/v1/tags", json=definition)

    def update_tag(self, name: str, definition: dict[str, Any]) -> Any:
        return self._call("PUT", f"/api/v1/tags/{name}", json=definition)

    def delete_tag(self, name: str) -> None:
        self._call("DELETE", f"/api/v1/tags/{name}")

    def install_starter(self) -> Any:
        return self._call("POST", "/api/v1/tags/starter")

    def materialise(self, names: list[str] | None = None, *, run_date: date | None = None, full: bool = False) -> Any:
        body = {"names": names, "date": run_date.isoformat() if run_date else None, "full": full}
        return self._call("POST", "/api/v1/tags/materialise", json=body)

    def upload_tag(self, name: str, csv_text: str, *, id_column: str, id_kind: str, value_column: str | None) -> Any:
        params = {"id_column": id_column, "id_kind": id_kind, "value_column": value_column}
        return self._call("POST", f"/api/v1/tags/{name}/upload", params=params, content=csv_text.encode(),
                          headers={"Content-Type": "text/csv"})  # fmt: skip

    # segments
    def segments(self) -> Any:
        return self._call("GET", "/api/v1/segments")

    def segment(self, segment_id: int) -> Any:
        return self._call("GET", f"/api/v1/segments/{segment_id}")

    def estimate(self, rule: dict[str, Any], *, timeout_s: float = 30.0) -> Any:
        return self._call("POST", "/api/v1/segments/estimate", json={"rule": rule, "timeout": timeout_s})

    def save_segment(
        self, name: str, rule: dict[str, Any], *, description: str = "", refresh: str = "daily", compute: bool = True
    ) -> Any:
        body = {"name": name, "rule": rule, "description": description, "refresh": refresh, "compute": compute}
        return self._call("POST", "/api/v1/segments", json=body)

    def update_segment(self, segment_id: int, **changes: Any) -> Any:
        return self._call("PATCH", f"/api/v1/segments/{segment_id}", json=changes)

    def delete_segment(self, segment_id: int) -> None:
        self._call("DELETE", f"/api/v1/segments/{segment_id}")

    def refresh_segment(self, segment_id: int, *, run_date: date | None = None) -> Any:
        params = {"date": run_date.isoformat() if run_date else None}
        return self._call("POST", f"/api/v1/segments/{segment_id}/refresh", params=params)

    def static_segment(self, name: str, ids: list[str], *, id_kind: str = "distinct_id", description: str = "") -> Any:
        body = {"name": name, "ids": ids, "id_kind": id_kind, "description": description}
        return self._call("POST", "/api/v1/segments/static", json=body)

    def segment_from_analysis(self, name: str, definition: dict[str, Any], *, description: str = "") -> Any:
        body = {"name": name, "definition": definition, "description": description}
        return self._call("POST", "/api/v1/segments/from-analysis", json=body)

    def members(self, segment_id: int, *, limit: int = 1000, after: int | None = None) -> Any:
        return self._call("GET", f"/api/v1/segments/{segment_id}/members", params={"limit": limit, "after": after})

    def changes(self, segment_id: int, day: date) -> Any:
        return self._call("GET", f"/api/v1/segments/{segment_id}/changes", params={"date": day.isoformat()})

    def compare(
        self, a: Any, b: Any = None, *, kinds: tuple[str, ...] = ("tag", "property"), correction: str = "bh",
        alpha: float = 0.05,
    ) -> Any:  # fmt: skip
        body = {"a": a, "b": b, "features": list(kinds), "correction": correction, "alpha": alpha}
        return self._call("POST", "/api/v1/segments/compare", json=body)

    def lookalike(
        self, name: str, seed: int, *, top_n: int, kinds: tuple[str, ...] = ("tag", "property"), save: bool = True
    ) -> Any:
        body = {"name": name, "seed": seed, "top_n": top_n, "features": list(kinds), "save": save}
        return self._call("POST", "/api/v1/segments/lookalike", json=body)

    def export_fields(self) -> Any:
        return self._call("GET", "/api/v1/segments/export-fields")

    def export(
        self, segment_id: int, fields: list[str], *, path: Path, fmt: str = "csv", unmask: bool = False,
        limit: int | None = None,
    ) -> Any:  # fmt: skip
        params = {"fields": ",".join(fields), "format": fmt, "unmask": unmask, "limit": limit}
        query = {"project": self.project, **{k: v for k, v in params.items() if v is not None}}
        size = self.client.download(f"/api/v1/segments/{segment_id}/export", path, params=query)
        return {"path": str(path), "bytes": size, "fields": fields, "format": fmt}

    # people
    def user(self, key: str, *, unmask: bool = False) -> Any:
        return self._call("GET", f"/api/v1/users/{_quote(key)}", params={"unmask": unmask})

    def timeline(
        self, key: str, *, limit: int = 50, before: str | None = None, events: list[str] | None = None,
        unmask: bool = False,
    ) -> Any:  # fmt: skip
        params = {"limit": limit, "before": before, "events": ",".join(events) if events else None, "unmask": unmask}
        return self._call("GET", f"/api/v1/users/{_quote(key)}/timeline", params=params)


def _quote(key: str) -> str:
    from urllib.parse import quote

    return quote(key, safe="")


@contextmanager
def profile_backend(workspace: Path, project: str, *, writes: bool = False) -> Iterator[Profiles | RemoteProfiles]:
    """The server's API when a server owns the workspace, else the workspace opened here (read-only unless the
    command ``writes``: computing tags or members writes the event store)."""
    from userloop.cli.session import open_local, server_client
    from userloop.profile.platform import Profiles

    client = server_client(workspace)
    if client is not None:
        yield RemoteProfiles(client, project)
        return
    with open_local(workspace, read_only=not writes) as ws:
        yield Profiles(ws.meta, ws.project(project), ws.project_info(project))
