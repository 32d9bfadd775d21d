"""The flow-file JSON Schema (ivr_flows/schema.json), generated from the node types' SCHEMAs."""
import json

from .loader import node_schema
from .nodes import NODE_TYPES


def flow_schema():
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "hotline IVR flow",
        "type": "object",
        "additionalProperties": False,
        "required": ["nodes"],
        "properties": {
            "name": {"type": "string"},
            "entry": {"type": "object", "additionalProperties": {"type": "string"}},
            "fallback": {"type": "string"},
            "max_depth": {"type": "integer", "minimum": 1},
            "variables": {"type": "object"},
            "schedule": {"type": "object", "additionalProperties": False, "properties": {
                "timezone": {"type": "string"},
                "cn_calendar": {"type": "boolean", "description": "statutory holidays and make-up days from chinese-calendar"},
                "windows": {"type": "object", "additionalProperties": {"type": "object", "properties": {
                    "days": {"type": "array", "items": {"enum": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]}},
                    "hours": {"type": "array", "items": {"type": "string", "pattern": "^\\d\\d:\\d\\d-\\d\\d:\\d\\d$",
                                                              "description": "a span of hours like 08:30-12:00"}}}}},
                "holidays": {"type": "array", "items": {"type": "string"}},
                "workdays": {"type": "array", "items": {"type": "string"}}}},
            "prompts": {"type": "object", "additionalProperties": {"anyOf": [
                {"type": "string"},
                {"type": "object", "properties": {"text": {"type": "string"}, "voice": {"type": "string"},
                                                  "file": {"type": "string"}}, "additionalProperties": False}]}},
            "nodes": {"type": "object", "additionalProperties": {
                "oneOf": [node_schema(module) for module in NODE_TYPES.values()]}},
        },
    }


def schema_text():
    return json.dumps(flow_schema(), ensure_ascii=False, indent=1, sort_keys=True) + "\n"
