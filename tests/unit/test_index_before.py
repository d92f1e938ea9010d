"""The dated package index: PEP 691 pages without the files uploaded on or after the
date, as JSON or PEP 503 HTML."""

from __future__ import annotations

from typing import Any

from workers.eval.index_before import as_html, dated

PAGE: dict[str, Any] = {
    "meta": {"api-version": "1.1"},
    "name": "docutils",
    "files": [
        {
            "filename": "docutils-0.21.2-py3-none-any.whl",
            "url": "https://files.example/docutils-0.21.2-py3-none-any.whl",
            "hashes": {"sha256": "ab"},
            "requires-python": ">=3.9",
            "upload-time": "2024-04-23T18:57:25.123456Z",
            "yanked": False,
        },
        {
            "filename": "docutils-0.22-py3-none-any.whl",
            "url": "https://files.example/docutils-0.22-py3-none-any.whl",
            "hashes": {"sha256": "cd"},
            "requires-python": ">=3.9",
            "upload-time": "2025-07-29T15:20:31.000000Z",
            "yanked": False,
        },
        {
            "filename": "docutils-0.21.1.tar.gz",
            "url": "https://files.example/docutils-0.21.1.tar.gz",
            "hashes": {"sha256": "ef"},
            "requires-python": None,
            "upload-time": "2024-04-10T00:00:00Z",
            "yanked": "broken",
        },
    ],
}


def test_files_uploaded_on_or_after_the_date_are_left_out() -> None:
    kept = dated(PAGE, "2025-01-01")
    assert [f["filename"] for f in kept["files"]] == [
        "docutils-0.21.2-py3-none-any.whl",
        "docutils-0.21.1.tar.gz",
    ]
    assert kept["name"] == "docutils" and len(PAGE["files"]) == 3  # the page itself kept
    assert dated(PAGE, "2024-04-23T18:57:25.123456Z")["files"][0]["filename"].endswith(
        "0.21.1.tar.gz"
    )


def test_the_html_page_keeps_hashes_python_requirements_and_yanks() -> None:
    page = as_html(dated(PAGE, "2025-01-01"))
    assert (
        '<a href="https://files.example/docutils-0.21.2-py3-none-any.whl#sha256=ab" '
        'data-requires-python="&gt;=3.9">docutils-0.21.2-py3-none-any.whl</a>'
    ) in page
    assert 'data-yanked="broken">docutils-0.21.1.tar.gz</a>' in page
    assert "0.22" not in page
