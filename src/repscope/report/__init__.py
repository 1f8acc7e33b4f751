"""Self-contained HTML reports of a study (figures embedded, no network needed)."""

from repscope.report.build import build_report, write_report
from repscope.report.html import HtmlReport

__all__ = ["HtmlReport", "build_report", "write_report"]
