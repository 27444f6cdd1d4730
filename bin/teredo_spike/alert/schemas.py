"""The JSON Schemas of the payload and of the enriched event, checked with jsonschema."""
import json
import os
from typing import Any, Iterable, Optional

from jsonschema import Draft202012Validator

SCHEMA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schemas")
# Values at these paths are never quoted in a message: they are secrets.
SECRET_PATHS = {"session_key", "configuration.webhook_secret"}


def load_schema(name: str) -> dict:
    """name: 'payload' or 'event'."""
    with open(os.path.join(SCHEMA_DIR, name + ".schema.json"), encoding="utf-8") as f:
        return json.load(f)


def validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(load_schema(name))


def _path(parts: Iterable[Any]) -> str:
    return ".".join(str(p) for p in parts) or "(top level)"


def first_problem(checker: Draft202012Validator, instance: Any) -> Optional[str]:
    """The first schema violation as 'path: what is wrong', or None when the instance is valid.

    Errors are ordered by path so that the message is the same from run to run.
    """
    errors = sorted(checker.iter_errors(instance), key=lambda e: [str(p) for p in e.absolute_path])
    if not errors:
        return None
    error = errors[0]
    path = _path(error.absolute_path)
    if path in SECRET_PATHS:
        return "{}: does not satisfy '{}' of the schema".format(path, error.validator)
    return "{}: {}".format(path, error.message)
