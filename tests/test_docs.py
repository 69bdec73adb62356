"""Every relative link and image in the tracked Markdown files points at a file or folder that exists."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Links to the web and to e-mail addresses are not files of the repository.
EXTERNAL_SCHEMES = {"http", "https", "mailto"}
FENCE = re.compile(r"^\s*(```|~~~)")
CODE_SPAN = re.compile(r"(`+).*?\1")
# `](target)` or `](target "title")`: ends both links and images, also an image nested in a link.
INLINE = re.compile(r"\]\(\s*(<[^>]*>|[^\s)]+)(?:\s+(?:\"[^\"]*\"|'[^']*'|\([^)]*\)))?\s*\)")
# `[label]: target` reference definitions (not `[^1]:` footnotes).
REFERENCE = re.compile(r"^\s{0,3}\[(?!\^)[^\]]+\]:\s*(<[^>]*>|\S+)")


def markdown_files() -> list[str]:
    # -z: names as they are (spaces, non-ASCII), not quoted.
    listed = subprocess.run(["git", "ls-files", "-z", "*.md"], cwd=ROOT, capture_output=True, text=True, check=True)
    return [name for name in listed.stdout.split("\0") if name]


def link_targets(text: str) -> list[tuple[int, str]]:
    """(line number, target) of every link and image, outside code blocks and code spans."""
    targets: list[tuple[int, str]] = []
    in_fence = False
    for number, line in enumerate(text.splitlines(), start=1):
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        prose = CODE_SPAN.sub("", line)
        found = [m.group(1) for m in INLINE.finditer(prose)]
        found += [m.group(1) for m in REFERENCE.finditer(prose)]
        targets += [(number, target.strip("<>")) for target in found]
    return targets


def local_path(markdown: Path, target: str) -> Path | None:
    """The file a target names, or None for a web link or an anchor in the same page."""
    parts = urlsplit(target)
    if parts.scheme in EXTERNAL_SCHEMES or not parts.path:
        return None
    path = unquote(parts.path)
    # GitHub resolves a leading slash against the repository's root.
    return ROOT / path.lstrip("/") if path.startswith("/") else markdown.parent / path


def test_link_targets_are_found_outside_code() -> None:
    text = "\n".join(
        [
            '[a](docs/a.md#part) ![b](img/b.png "B") [c](https://example.org) [d](#here) `[e](no.md)`',
            "[![f](f.png)](g.md)",
            "[h]: <h path.md>",
            "```",
            "[i](no.md)",
            "```",
        ]
    )
    found = [target for _line, target in link_targets(text)]
    assert found == ["docs/a.md#part", "img/b.png", "https://example.org", "#here", "f.png", "g.md", "h path.md"]
    markdown = ROOT / "docs" / "x.md"
    assert [local_path(markdown, target) for target in found] == [
        ROOT / "docs" / "docs" / "a.md",
        ROOT / "docs" / "img" / "b.png",
        None,
        None,
        ROOT / "docs" / "f.png",
        ROOT / "docs" / "g.md",
        ROOT / "docs" / "h path.md",
    ]


@pytest.mark.parametrize("name", markdown_files())
def test_relative_links_resolve(name: str) -> None:
    markdown = ROOT / name
    broken = []
    for number, target in link_targets(markdown.read_text(encoding="utf-8")):
        path = local_path(markdown, target)
        if path is not None and not path.exists():
            broken.append(f"{name}:{number}: {target}")
    assert not broken, "links to nothing:\n" + "\n".join(broken)
