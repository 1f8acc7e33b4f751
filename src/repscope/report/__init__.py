"""Self-contained HTML reports of a study (figures drawn in the page, no network needed)."""

from repscope.report.build import build_report, write_report
from repscope.report.page import HtmlReport

__all__ = ["HtmlReport", "build_report", "write_report"]
