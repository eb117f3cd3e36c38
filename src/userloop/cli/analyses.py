"""Where the analysis commands send their work: the server that owns the workspace, or the files directly.

:func:`analyses` yields an :class:`AnalysisBackend` — the same operations over HTTP (:class:`RemoteAnalyses`) or
in process (:class:`LocalAnalyses`) — so each command is written once, whichever way it runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from userloop.api.client import ServerClient
    from userloop.store import Workspace


class AnalysisBackend(Protocol):
    def query(self, definition: dict[str, Any], *, timeout: float, explain: bool) -> dict[str, Any]: ...
    def insights(self, dashboard: str | None) -> list[dict[str, Any]]: ...
    def save_insight(
        self, name: str, definition: dict[str, Any], *, description: str, dashboard: str | None
    ) -> dict[str, Any]: ...
    def insight(self, insight_id: int) -> dict[str, Any]: ...
    def update_insight(self, insight_id: int, **changes: Any) -> dict[str, Any]: ...
    def delete_insight(self, insight_id: int) -> None: ...
    def run_insight(self, insight_id: int, *, timeout: float) -> dict[str, Any]: ...
    def core_metrics(self, last: int) -> dict[str, Any]: ...


class RemoteAnalyses:
    def __init__(self, client: ServerClient, project: str) -> None:
        self.client = client
        self.project = project

    def query(self, definition: dict[str, Any], *, timeout: float, explain: bool) -> dict[str, Any]:
        return dict(self.client.query(definition, project=self.project, timeout=timeout, explain=explain))

    def insights(self, dashboard: str | None) -> list[dict[str, Any]]:
        return list(self.client.insights(project=self.project, dashboard=dashboard))

    def save_insight(
        self, name: str, definition: dict[str, Any], *, description: str, dashboard: str | None
    ) -> dict[str, Any]:
        return dict(
            self.client.save_insight(
                name, definition, project=self.project, description=description, dashboard=dashboard
            )
        )

    def insight(self, insight_id: int) -> dict[str, Any]:
        return dict(self.client.insight(insight_id, project=self.project))

    def update_insight(self, insight_id: int, **changes: Any) -> dict[str, Any]:
        return dict(self.client.update_insight(insight_id, project=self.project, **changes))

    def delete_insight(self, insight_id: int) -> None:
        self.client.delete_insight(insight_id, project=self.project)

    def run_insight(self, insight_id: int, *, timeout: float) -> dict[str, Any]:
        return dict(self.client.run_insight(insight_id, project=self.project, timeout=timeout))

    def core_metrics(self, last: int) -> dict[str, Any]:
        return dict(self.client.core_metrics(project=self.project, last=last))


class LocalAnalyses:
    def __init__(self, ws: Workspace, project: str) -> None:
        from userloop.query.engine import Engine

        self.ws = ws
        self.info = ws.project_info(project)
        self.engine = Engine(ws.project(project), self.info.timezone)

    def query(self, definition: dict[str, Any], *, timeout: float, explain: bool) -> dict[str, Any]:
        return self.engine.run(definition, timeout_s=timeout, explain=explain).model_dump(mode="json")

    def insights(self, dashboard: str | None) -> list[dict[str, Any]]:
        from userloop.query import insights

        return [i.as_dict() for i in insights.listing(self.ws.meta, self.info.id, dashboard=dashboard)]

    def save_insight(
        self, name: str, definition: dict[str, Any], *, description: str, dashboard: str | None
    ) -> dict[str, Any]:
        from userloop.query import insights

        row = insights.save(self.ws.meta, self.info.id, name, definition, description=description, dashboard=dashboard)
        return row.as_dict()

    def insight(self, insight_id: int) -> dict[str, Any]:
        from userloop.query import insights

        return insights.get(self.ws.meta, self.info.id, insight_id).as_dict()

    def update_insight(self, insight_id: int, **changes: Any) -> dict[str, Any]:
        from userloop.query import insights

        return insights.update(self.ws.meta, self.info.id, insight_id, **changes).as_dict()

    def delete_insight(self, insight_id: int) -> None:
        from userloop.query import insights

        insights.delete(self.ws.meta, self.info.id, insight_id)

    def run_insight(self, insight_id: int, *, timeout: float) -> dict[str, Any]:
        row = self.insight(insight_id)
        return {"insight": row, **self.query(row["definition"], timeout=timeout, explain=False)}

    def core_metrics(self, last: int) -> dict[str, Any]:
        from userloop.query.dashboards import core_metrics

        return core_metrics.run(self.engine, last_days=last)


@contextmanager
def analyses(workspace: Path, project: str) -> Iterator[AnalysisBackend]:
    """The backend for ``project``: the owning server's API when one runs, else the workspace opened here
    (the event store read-only: saving insights writes only the metadata DB)."""
    from userloop.cli.session import open_local, server_client

    client = server_client(workspace)
    if client is not None:
        yield RemoteAnalyses(client, project)
        return
    with open_local(workspace, read_only=True) as ws:
        yield LocalAnalyses(ws, project)
