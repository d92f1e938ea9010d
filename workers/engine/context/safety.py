"""Make untrusted text (repository files, issue text) unable to forge chat structure."""

from __future__ import annotations

import re

# Qwen's special-token texts and the tags its chat template uses for tool traffic.
_SPECIAL = re.compile(
    r"<\|(?:im_start|im_end|endoftext|fim_prefix|fim_middle|fim_suffix|fim_pad|repo_name|"
    r"file_sep|object_ref_start|object_ref_end|box_start|box_end|quad_start|quad_end|"
    r"vision_start|vision_end|vision_pad|image_pad|video_pad)\|>"
    r"|</?(?:tool_call|tool_response|think|tools)>"
    r"|<(?:function|parameter)=|</(?:function|parameter)>",
    re.IGNORECASE,
)


def neutralise(text: str) -> str:
    """Break every special sequence with a zero-width space after its first character, so
    the tokenizer cannot produce the special token and no parser sees the tag. What a human
    reads is unchanged."""
    return _SPECIAL.sub(lambda m: m.group(0)[0] + "\u200b" + m.group(0)[1:], text)


_HTML_COMMENT = re.compile(r"<!--.*?(?:-->|$)", re.S)
# Characters a reader does not see but a model reads: bidirectional overrides and
# isolates, zero-width characters, the word joiner, the byte-order mark, and the Unicode
# "tag" block (invisible ASCII look-alikes, a known smuggling channel).
_INVISIBLE = re.compile(
    "[\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\U000e0000-\U000e007f]"
)


def visible_only(text: str) -> str:
    """What a person reading the issue on GitHub sees: no HTML comments (GitHub hides
    them), no invisible or direction-changing characters. For text people wrote
    (issues, comments, pull-request descriptions), before the model sees it."""
    return _INVISIBLE.sub("", _HTML_COMMENT.sub("", text))


def untrusted(text: str) -> str:
    """Text people wrote, as the model gets it: what a reader sees, and unable to forge
    chat turns or tool calls."""
    return neutralise(visible_only(text))


def fence_safe(text: str) -> str:
    """Text that cannot close the ``` code block it is shown in (test output in a PR)."""
    return text.replace("```", "``\u200b`")
