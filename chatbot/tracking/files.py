"""Burr's tracking as Burr's own files: ``<directory>/<project>/<app id>/``, with the
``log.jsonl``, ``graph.json``, ``metadata.json`` and parents' ``children.jsonl`` that
Burr's stock UI reads (``CHATBOT_TRACKING=file``: one machine's runs)."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from pathlib import Path
from typing import IO

import pydantic
from burr.tracking.client import LocalTrackingClient
from burr.tracking.common.models import ApplicationMetadataModel, PointerModel

from chatbot.domain.branch_ids import BRANCH_SEPARATOR
from chatbot.tracking.sinks import NewApplication

_DAY_S = 86400.0


class FileLog:
    """An application's ``log.jsonl``, open for appending; flushed at each batch's end."""

    def __init__(self, sink: FileSink, file: IO[str]) -> None:
        self._sink = sink
        self._file = file

    def append(self, entry: pydantic.BaseModel) -> None:
        self._file.write(entry.model_dump_json() + "\n")
        self._sink.dirty.add(self._file)

    def close(self) -> None:
        self._sink.dirty.discard(self._file)
        self._file.close()


class FileSink:
    """Burr's local layout under ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.dirty: set[IO[str]] = set()  # files appended to since the batch began

    def open(self, application: NewApplication) -> FileLog:
        folder = self.directory / application.project / application.app_id
        folder.mkdir(parents=True, exist_ok=True)
        log = open(  # noqa: SIM115 (closed by FileLog.close)
            folder / LocalTrackingClient.LOG_FILENAME, "a", encoding="utf-8", errors="replace"
        )
        graph_file = folder / LocalTrackingClient.GRAPH_FILENAME
        if not graph_file.exists():  # a new application: its graph, metadata and parents
            graph_file.write_text(application.describe(), encoding="utf-8")
            metadata = ApplicationMetadataModel(
                partition_key=application.partition_key,
                parent_pointer=PointerModel.from_pointer(application.parent),
                spawning_parent_pointer=PointerModel.from_pointer(application.spawning_parent),
            )
            (folder / LocalTrackingClient.METADATA_FILENAME).write_text(
                metadata.model_dump_json(), encoding="utf-8"
            )
            # Burr's own writer of the parents' ``children.jsonl`` (it only reads the path).
            LocalTrackingClient(application.project, str(self.directory))._log_child_relationships(
                application.parent,
                application.spawning_parent,
                application.app_id,
                partition_key=application.partition_key,
            )
        return FileLog(self, log)

    def end_batch(self) -> None:
        dirty, self.dirty = self.dirty, set()
        for file in dirty:
            if not file.closed:
                file.flush()

    async def remove_conversation(self, project: str, conversation_id: str) -> None:
        project_dir = self.directory / project
        folders = [
            project_dir / conversation_id,
            *project_dir.glob(f"{conversation_id}{BRANCH_SEPARATOR}*"),
        ]
        await asyncio.to_thread(_remove, folders)

    async def remove_app(self, project: str, app_id: str) -> None:
        await asyncio.to_thread(_remove, [self.directory / project / app_id])

    async def prune(self, older_than_days: float) -> int:
        return await asyncio.to_thread(self._prune, time.time() - older_than_days * _DAY_S)

    def _prune(self, before: float) -> int:
        old = [
            folder
            for project in _folders(self.directory)
            for folder in _folders(project)
            if _last_written(folder) < before
        ]
        _remove(old)
        return len(old)


def _folders(path: Path) -> list[Path]:
    return [entry for entry in path.iterdir() if entry.is_dir()] if path.is_dir() else []


def _last_written(folder: Path) -> float:
    log = folder / LocalTrackingClient.LOG_FILENAME
    return (log if log.exists() else folder).stat().st_mtime


def _remove(folders: list[Path]) -> None:
    for folder in folders:
        shutil.rmtree(folder, True)


def tracking_dir_writable(path: Path) -> None:
    """Create the tracking directory up front so a bad path fails at start-up, not mid-turn."""
    path.mkdir(parents=True, exist_ok=True)
    if not os.access(path, os.W_OK):
        raise PermissionError(f"Burr tracking directory {path} is not writable")
