"""The alert's JSON Schemas, read from the app for tests."""
import json
import os

SCHEMA_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "bin", "teredo_spike", "alert", "schemas")


def event_schema() -> dict:
    with open(os.path.join(SCHEMA_DIR, "event.schema.json"), encoding="utf-8") as f:
        return json.load(f)


def payload_schema() -> dict:
    with open(os.path.join(SCHEMA_DIR, "payload.schema.json"), encoding="utf-8") as f:
        return json.load(f)
