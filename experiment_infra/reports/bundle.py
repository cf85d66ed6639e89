"""The files one report rebuild writes, held in memory so a dry run can list them."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel

from ..atomic import atomic_write_bytes, atomic_write_text
from ..records import write_record

_RELATIVE_LINK = re.compile(r"(?<!!)\[([^\]]*)\]\((?![a-z]+:)[^)]*\)")


@dataclass
class ReportBundle:
    """The files a rebuild writes, held in memory so a dry run can list them."""

    kind: str  # "agent_eval" or "standard"
    root: Path
    title: str
    summary_markdown: str
    records: dict[Path, BaseModel] = field(default_factory=dict)
    texts: dict[Path, str] = field(default_factory=dict)
    images: dict[Path, bytes] = field(default_factory=dict)

    @property
    def paths(self) -> list[Path]:
        return sorted({*self.records, *self.texts, *self.images})

    def write(self) -> list[Path]:
        """Write every file atomically (JSON through records.write_record)."""
        for path, data in self.images.items():
            atomic_write_bytes(path, data)
        for path, record in self.records.items():
            write_record(path, record)
        for path, text in self.texts.items():
            atomic_write_text(path, text)
        return self.paths

    def artifact_markdown(self) -> str:
        """Summary table plus the plots inlined as data URIs (a Prefect artifact has no files)."""
        # Relative links mean nothing in the Prefect UI: keep their text only.
        summary = _RELATIVE_LINK.sub(r"\1", self.summary_markdown)
        lines = [f"# {self.title}", "", f"`{self.root}`", "", summary, ""]
        for path, data in sorted(self.images.items()):
            encoded = base64.b64encode(data).decode("ascii")
            lines += [f"### {path.stem.replace('_', ' ').capitalize()}", "",
                      f"![{path.stem}](data:image/png;base64,{encoded})", ""]
        return "\n".join(lines)
