"""The structured answer the model must give, and its validation.

The same JSON Schema goes to the model (`response_format`) and is checked here on every
answer, since OpenAI-compatible servers differ in how strictly they follow it. The
result holds plain strings and numbers only; it is text to show, never markup.
"""

from __future__ import annotations

import json
import math
from typing import Any

URGENCIES = ("info", "warning", "critical")
MAX_TEXT = 2000
MAX_ITEM = 300
MAX_ITEMS = 8

INSIGHT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "diagnosis": {"type": "string", "description": "What is most likely happening."},
        "likely_causes": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Most likely first.",
        },
        "actions": {
            "type": "array",
            "items": {"type": "string"},
            "description": "What an operator should do, most urgent first.",
        },
        "urgency": {"type": "string", "enum": list(URGENCIES)},
        "confidence": {"type": "number", "description": "From 0 to 1."},
    },
    "required": ["diagnosis", "likely_causes", "actions", "urgency", "confidence"],
    "additionalProperties": False,
}


class InvalidOutput(ValueError):
    """The model's answer is not the structured insight asked for."""


def _text(value: Any, field: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidOutput(f"{field}: must be a non-empty string")
    # Control characters other than newlines and tabs have no place in shown text.
    clean = "".join(ch for ch in value.strip() if ch.isprintable() or ch in "\n\t")
    return clean[:limit]


def _items(value: Any, field: str) -> list[str]:
    if not isinstance(value, list) or not value:
        raise InvalidOutput(f"{field}: must be a non-empty array of strings")
    return [_text(item, f"{field}[{i}]", MAX_ITEM) for i, item in enumerate(value[:MAX_ITEMS])]


def validate(data: Any) -> dict[str, Any]:
    """The insight in `data`, cleaned, or InvalidOutput naming the first problem."""
    if not isinstance(data, dict):
        raise InvalidOutput("the answer must be a JSON object")
    missing = [key for key in INSIGHT_SCHEMA["required"] if key not in data]
    if missing:
        raise InvalidOutput(f"missing {', '.join(missing)}")
    urgency = data["urgency"]
    if urgency not in URGENCIES:
        raise InvalidOutput(f"urgency: must be one of {', '.join(URGENCIES)}")
    confidence = data["confidence"]
    if isinstance(confidence, bool) or not isinstance(confidence, int | float):
        raise InvalidOutput("confidence: must be a number")
    if not math.isfinite(confidence) or not 0 <= confidence <= 1:
        raise InvalidOutput("confidence: must be from 0 to 1")
    return {
        "diagnosis": _text(data["diagnosis"], "diagnosis", MAX_TEXT),
        "likely_causes": _items(data["likely_causes"], "likely_causes"),
        "actions": _items(data["actions"], "actions"),
        "urgency": urgency,
        "confidence": float(confidence),
    }


def parse(content: str | None) -> dict[str, Any]:
    """Parse and validate the text of a model answer."""
    if not content:
        raise InvalidOutput("empty answer")
    try:
        data = json.loads(content)
    except json.JSONDecodeError as exc:
        raise InvalidOutput(f"not JSON: {exc.msg}") from None
    return validate(data)
