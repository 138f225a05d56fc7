"""The stored report's grouping: counts by code, a few examples kept, errors first, and lower
bounds marked where the Khronos validator stopped counting."""

from __future__ import annotations

from apps.scenes.validation.report import EXAMPLES_PER_CODE, HINTS, grouped_report


def _issue(code: str, severity: str, n: int, source: str = "khronos") -> dict[str, str]:
    return {
        "code": code,
        "severity": severity,
        "message": f"m{n}",
        "pointer": f"/a/{n}",
        "source": source,
    }


def test_issues_are_grouped_by_code_errors_first() -> None:
    issues = [_issue("UNUSED_OBJECT", "info", n) for n in range(50)]
    issues += [_issue("ACCESSOR_MAX_MISMATCH", "error", n) for n in range(200)]
    issues.append(_issue("zip_no_scene", "error", 0, source="platform"))
    report = grouped_report({"ok": False, "issues": issues, "khronos": {"truncated": True}})

    groups = report["issue_groups"]
    assert [(g["code"], g["count"]) for g in groups] == [
        ("ACCESSOR_MAX_MISMATCH", 200),
        ("zip_no_scene", 1),
        ("UNUSED_OBJECT", 50),
    ]
    assert groups[0]["examples"] == ["/a/0", "/a/1", "/a/2"]
    assert groups[0]["message"] == "m0"
    assert groups[0]["at_least"] is True  # the validator stopped at its limit
    assert groups[1]["at_least"] is False  # our own checks count everything
    assert groups[1]["hint"] == HINTS["zip_no_scene"]
    assert len(report["issues"]) == 2 * EXAMPLES_PER_CODE + 1
