"""Burr's tracking UI reading the conversation database: a backend on Burr's own interface
(``BackendBase``), so that ``/burr`` on any replica shows every run of every replica.

Burr's stock local backend reads one machine's files; its S3 backend indexes files it
copies. This one answers from the rows ``chatbot.tracking.database`` writes, and scopes
them by who is asking: an admin sees every user's runs under their storage projects
(``demo:<owner>``), anyone else sees only their own, under the project names they use
(``demo``), the names Burr's demo page asks for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import fastapi
from burr.tracking.common.models import ChildApplicationModel, PointerModel
from burr.tracking.server import schema
from burr.tracking.server.backend import BackendBase, BurrSettings

from chatbot.domain.owners import LOCAL, Caller, project_name
from chatbot.tracking.records import TrackedApp, TrackingRecords
from server.authentication import CALLER


@dataclass(frozen=True, slots=True)
class _View:
    """The runs one caller may see, and the names they see them under."""

    caller: Caller

    @property
    def owner(self) -> str | None:
        return None if self.caller.admin else self.caller.owner

    def stored(self, project: str | None) -> str | None:
        if project is None or self.caller.admin:
            return project
        return self.caller.project(project)

    def shown(self, stored: str | None) -> str | None:
        if stored is None or self.caller.admin:
            return stored
        return project_name(stored)


class DatabaseBackend(BackendBase):
    """Burr's UI backend over the tracking rows; ``signed_in``: the server checks callers
    (without it every request is the ``local`` user's, who sees everything)."""

    def __init__(self, records: TrackingRecords, *, signed_in: bool) -> None:
        self._records = records
        self._signed_in = signed_in

    def _view(self, request: fastapi.Request) -> _View:
        caller = request.scope.get(CALLER)
        if caller is None:
            if self._signed_in:  # the auth middleware lets no such request through
                raise fastapi.HTTPException(401, "sign in to read Burr's tracking")
            caller = LOCAL
        return _View(caller)

    async def list_projects(self, request: fastapi.Request) -> Sequence[schema.Project]:
        view = self._view(request)
        return [
            schema.Project(
                name=view.shown(found.project_id),
                id=view.shown(found.project_id),
                uri="",
                created=found.created,
                last_written=found.last_written,
                num_apps=found.apps,
            )
            for found in await self._records.projects(view.owner)
        ]

    async def list_apps(
        self,
        request: fastapi.Request,
        project_id: str,
        partition_key: str | None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[Sequence[schema.ApplicationSummary], int]:
        view = self._view(request)
        apps, total = await self._records.apps(
            view.stored(project_id),
            view.stored(partition_key),
            view.owner,
            limit=limit,
            offset=offset,
        )
        return [_summary(app, view) for app in apps], total

    async def get_application_logs(
        self, request: fastapi.Request, project_id: str, app_id: str, partition_key: str | None
    ) -> schema.ApplicationLogs:
        view = self._view(request)
        found = await self._records.log(view.stored(project_id), app_id, view.owner)
        if found is None:
            raise fastapi.HTTPException(404, f"no run {app_id!r} in project {project_id!r}")
        return schema.ApplicationLogs(
            application=schema.ApplicationModel.model_validate_json(found.graph),
            steps=schema.Step.from_logs(found.entries),
            parent_pointer=_parent(found.app, view),
            children=[
                ChildApplicationModel(
                    child=PointerModel(
                        app_id=child.app_id,
                        sequence_id=None,
                        partition_key=view.shown(child.partition_key),
                    ),
                    event_time=child.created_at,
                    event_type="fork",
                    sequence_id=child.parent_sequence_id,
                )
                for child in found.children
            ],
        )

    def supports_demos(self) -> bool:
        return True  # the demo page's calls reach this chatbot's own router

    @classmethod
    def settings_model(cls) -> type[BurrSettings]:
        return BurrSettings  # built by the server, never from Burr's environment


def _parent(app: TrackedApp, view: _View) -> PointerModel | None:
    if app.parent_app_id is None:
        return None
    return PointerModel(
        app_id=app.parent_app_id,
        sequence_id=app.parent_sequence_id,
        partition_key=view.shown(app.partition_key),
    )


def _summary(app: TrackedApp, view: _View) -> schema.ApplicationSummary:
    return schema.ApplicationSummary(
        app_id=app.app_id,
        partition_key=view.shown(app.partition_key),
        first_written=app.created_at,
        last_written=app.updated_at,
        num_steps=app.steps,
        tags={},
        parent_pointer=_parent(app, view),
    )
