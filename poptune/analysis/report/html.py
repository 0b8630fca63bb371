"""report.html: report.md rendered once, with its images embedded, so one file travels alone.

The Markdown is the single source: whatever any part of the analysis writes into report.md shows
up in the HTML too. Images are inlined as base64 data URIs; only files inside the report's own
folder are read (a link cannot pull in an arbitrary file).
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

import markdown

_IMG_SRC = re.compile(r'(<img\b[^>]*?\bsrc=")([^"]+)(")')
_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 60rem;
       margin: 2rem auto; padding: 0 1rem; line-height: 1.45; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.6rem; text-align: left; }
th { background: #f3f3f3; }
img { max-width: 100%; height: auto; display: block; margin: 1rem 0; }
code { background: #f3f3f3; padding: 0 0.2rem; }
"""


def markdown_to_html(md_text: str, base_dir: str | Path, *, title: str = "poptune report") -> str:
    body = markdown.markdown(md_text, extensions=["tables"], output_format="html")
    base = Path(base_dir).resolve()
    body = _IMG_SRC.sub(lambda m: m.group(1) + _data_uri(base, m.group(2)) + m.group(3), body)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )


def _data_uri(base: Path, src: str) -> str:
    if src.startswith("data:"):
        return src
    path = (base / html.unescape(src)).resolve()
    if not path.is_relative_to(base) or not path.is_file() or path.suffix.lower() != ".png":
        return src  # left as a link: nothing outside the report folder is read
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")
