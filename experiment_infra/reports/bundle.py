"""The files one report rebuild writes, held in memory so a dry run can list them.

Rebuilds are incremental: a file whose content on disk already says the same is not
written again, so its ``generated_at`` (the ``**Generated**:`` line of a markdown
file) stays what it was. "The same" means identical bytes once the timestamp is
set aside; anything else that changed rewrites the file with the new timestamp.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from pydantic import BaseModel

from ..files.atomic import atomic_write_bytes
from ..files.atomic import json_bytes
from ..records import record_json
from .ui_limits import MAX_INLINE_IMAGE_BYTES, cap_markdown

_RELATIVE_LINK = re.compile(r"(?<!!)\[([^\]]*)\]\((?![a-z]+:)[^)]*\)")
GENERATED_LINE = re.compile(r"^\*\*Generated\*\*: .*$", re.MULTILINE)


def report_json(record: BaseModel) -> bytes:
    """``record_json(record)`` as UTF-8, the same bytes, through orjson when that is exact
    (pure-Python indented ``json`` is most of a large rebuild's cost)."""
    return json_bytes(record.model_dump(mode="json", exclude_none=False)) + b"\n"


def current_bytes(path: Path) -> bytes | None:
    """What a regular file at ``path`` holds now; None when absent, a link or unreadable."""
    try:
        if path.is_symlink() or not path.is_file():
            return None
        return path.read_bytes()
    except OSError:
        return None


_PLAIN_STAMP = re.compile(r"[0-9A-Za-z:.+\- ]*")  # an ISO timestamp: nothing JSON escapes


def _record_unchanged(record: BaseModel, new: bytes, old: bytes) -> bool:
    if new == old:
        return True
    now = getattr(record, "generated_at", None)
    if "generated_at" not in type(record).model_fields or not isinstance(now, str):
        return False
    try:
        stamp = json.loads(old).get("generated_at")
    except (ValueError, AttributeError):
        return False
    if not isinstance(stamp, str) or len(old) - len(new) != len(stamp.encode()) - len(now.encode()):
        return False  # differs by more than the stamp
    if _PLAIN_STAMP.fullmatch(stamp) and _PLAIN_STAMP.fullmatch(now):
        # The new text with the old stamp in its one top-level "generated_at" (the report
        # records nest no other): the bytes that serializing it with the old stamp gives.
        field_now = f'"generated_at": "{now}"'.encode()
        if new.count(field_now) == 1:
            return new.replace(field_now, f'"generated_at": "{stamp}"'.encode()) == old
    return record_json(record.model_copy(update={"generated_at": stamp})).encode("utf-8") == old


def _text_unchanged(text: str, new: bytes, old: bytes) -> bool:
    if new == old:
        return True
    try:
        old_text = old.decode("utf-8")
    except UnicodeDecodeError:
        return False
    line = GENERATED_LINE.search(old_text)
    ours = GENERATED_LINE.search(text)
    if line is None or ours is None or len(old_text) - len(text) != len(line.group(0)) - len(ours.group(0)):
        return False
    return text[: ours.start()] + line.group(0) + text[ours.end():] == old_text


@dataclass
class ReportBundle:
    """The files a rebuild writes, held in memory so a dry run can list them.

    ``images_later`` (with ``later_paths``, the files it returns) supplies images still
    being drawn elsewhere: they are collected when first needed, after every other file
    has been compared (and, by ``write``, written).
    """

    kind: str  # "agent_eval" or "standard"
    root: Path
    title: str
    summary_markdown: str
    records: dict[Path, BaseModel] = field(default_factory=dict)
    texts: dict[Path, str] = field(default_factory=dict)
    images: dict[Path, bytes] = field(default_factory=dict)
    images_later: Callable[[], dict[Path, bytes]] | None = None
    later_paths: list[Path] = field(default_factory=list)
    serialized: dict[Path, bytes] = field(default_factory=dict)  # records' bytes, when already made
    _docs: dict[Path, bytes] | None = field(default=None, init=False, repr=False, compare=False)
    _pictures: dict[Path, bytes] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def paths(self) -> list[Path]:
        """Every report file of this rebuild (written or already up to date)."""
        return sorted({*self.records, *self.texts, *self.images, *self.later_paths})

    def all_images(self) -> dict[Path, bytes]:
        if self.images_later is not None:
            later, self.images_later = self.images_later, None
            self.images.update(later())
        return self.images

    def _pending_docs(self) -> dict[Path, bytes]:
        if self._docs is None:
            out: dict[Path, bytes] = {}
            for path, record in self.records.items():
                new = self.serialized.get(path) or report_json(record)
                old = current_bytes(path)
                if old is None or not _record_unchanged(record, new, old):
                    out[path] = new
            for path, text in self.texts.items():
                new = text.encode("utf-8")
                old = current_bytes(path)
                if old is None or not _text_unchanged(text, new, old):
                    out[path] = new
            self._docs = out
        return self._docs

    def _pending_images(self) -> dict[Path, bytes]:
        if self._pictures is None:
            self._pictures = {path: data for path, data in self.all_images().items() if current_bytes(path) != data}
        return self._pictures

    def pending(self) -> dict[Path, bytes]:
        """The files whose content on disk differs (or that are missing), with their new bytes."""
        return {**self._pending_images(), **self._pending_docs()}

    def changed(self) -> list[Path]:
        """The files a ``write()`` would write now (a dry run lists these)."""
        return sorted(self.pending())

    def write(self) -> list[Path]:
        """Write the files whose content changed, atomically; returns those written.

        JSON and markdown first, the plots last (they may still be being drawn). No
        fsync: reports are views of the run files, and one a crash leaves empty
        differs from its content, so the next rebuild writes it again.
        """
        written = []
        for pending in (self._pending_docs, self._pending_images):
            for path, data in pending().items():
                atomic_write_bytes(path, data, fsync=False)
                written.append(path)
        self._docs, self._pictures = {}, {}
        return sorted(written)

    def artifact_markdown(self) -> str:
        """Summary table plus the plots inlined as data URIs (a Prefect artifact has no files),
        small enough for the server: a plot too large to inline is named instead."""
        # Relative links mean nothing in the Prefect UI: keep their text only.
        summary = cap_markdown(_RELATIVE_LINK.sub(r"\1", self.summary_markdown), "the report files in the directory")
        lines = [f"# {self.title}", "", f"`{self.root}`", "", summary, ""]
        for path, data in sorted(self.all_images().items()):
            title = path.stem.replace("_", " ").capitalize()
            if len(data) > MAX_INLINE_IMAGE_BYTES:
                lines += [f"### {title}", "", f"*{len(data):,} bytes, too large to show here: `{path}`*", ""]
                continue
            encoded = base64.b64encode(data).decode("ascii")
            lines += [f"### {title}", "", f"![{path.stem}](data:image/png;base64,{encoded})", ""]
        return "\n".join(lines)
