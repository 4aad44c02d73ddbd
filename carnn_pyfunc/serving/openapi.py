"""The service's OpenAPI 3.1 document, generated from the field table.

Every input format of /invocations has a real request schema (types, limits, required fields and
an example), and the answers have theirs: predictions, and the error shape.
"""

from __future__ import annotations

import html
import json
from typing import Any

from carnn_pyfunc.contract import FIELDS, Field
from carnn_pyfunc.contract.fields import example_record

ERROR = {"$ref": "#/components/schemas/Error"}


def field_schema(field: Field) -> dict[str, Any]:
    """JSON Schema of one field's value (null allowed where the field is optional)."""
    if not field.numeric:
        schema: dict[str, Any] = {"type": "string", "maxLength": 200}
    else:
        schema = {"type": "integer" if field.kind == "whole" else "number"}
        if field.low_inclusive:
            schema["minimum"] = field.low
        else:
            schema["exclusiveMinimum"] = field.low
        schema["maximum"] = field.high
        if field.name == "year":  # two digits, or four from 1900
            schema = {"anyOf": [{**schema, "maximum": 99}, {**schema, "minimum": 1900}]}
    if not field.required:
        schema = {"anyOf": [schema, {"type": "null"}]}
    return {**schema, "description": f"{field.label}: {field.help}", "example": field.example}


def _record_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {f.name: field_schema(f) for f in FIELDS},
        "required": [f.name for f in FIELDS if f.required],
        "example": example_record(),
    }


def _request_schemas() -> dict[str, Any]:
    record = {"$ref": "#/components/schemas/Record"}
    records = {"type": "array", "items": record, "minItems": 1}
    columns = {
        "type": "object",
        "properties": {f.name: {"type": "array", "items": field_schema(f)} for f in FIELDS},
        "required": [f.name for f in FIELDS if f.required],
    }
    split = {
        "type": "object",
        "properties": {
            "columns": {
                "type": "array",
                "items": {"type": "string", "enum": [f.name for f in FIELDS]},
            },
            "data": {"type": "array", "items": {"type": "array"}, "minItems": 1},
        },
        "required": ["columns", "data"],
    }
    params = {
        "type": "object",
        "description": "MLflow inference params, passed to the model's predict",
    }
    return {
        "DataframeRecords": _wrapped("dataframe_records", records, params),
        "DataframeSplit": _wrapped("dataframe_split", split, params),
        "Instances": _wrapped("instances", {"anyOf": [records, columns]}, params),
        "Inputs": _wrapped("inputs", {"anyOf": [records, columns]}, params),
    }


def _wrapped(key: str, schema: dict, params: dict) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {key: schema, "params": params},
        "required": [key],
        "additionalProperties": False,
    }


def _responses(ok: dict) -> dict[str, Any]:
    error = {"application/json": {"schema": ERROR}}
    return {
        "200": ok,
        "400": {
            "description": "invalid input: each error names the field and row",
            "content": error,
        },
        "401": {"description": "missing or wrong bearer token", "content": error},
        "413": {"description": "body over the size limit", "content": error},
        "415": {"description": "unsupported content type", "content": error},
        "504": {"description": "prediction took longer than the timeout", "content": error},
    }


def document(*, auth: bool = False, title: str = "carnn scoring service") -> dict[str, Any]:
    """The whole OpenAPI document (``auth``: the guarded routes need a bearer token)."""
    security = [{"bearer": []}] if auth else [{}]
    schemas = {"Record": _record_schema(), **_request_schemas()}
    json_body = {"oneOf": [{"$ref": f"#/components/schemas/{n}"} for n in _request_schemas()]}
    table = {"type": "string", "description": "a table of records, one column per field"}
    predictions = {
        "type": "object",
        "properties": {
            "predictions": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"mpg": {"type": "number"}},
                    "required": ["mpg"],
                },
            }
        },
        "required": ["predictions"],
    }
    error = {
        "type": "object",
        "properties": {
            "error_code": {"type": "string"},
            "message": {"type": "string"},
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "row": {"type": ["integer", "null"]},
                        "field": {"type": ["string", "null"]},
                        "expected": {"type": "string"},
                        "value": {"type": ["string", "null"]},
                    },
                },
            },
        },
        "required": ["error_code", "message", "errors"],
    }
    example = {"dataframe_records": [example_record()]}
    invocations = {
        "summary": "Predict MPG for raw car records (MLflow's scoring protocol)",
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": json_body, "example": example},
                "text/csv": {"schema": table},
                "application/vnd.apache.parquet": {
                    "schema": {"type": "string", "format": "binary"}
                },
            },
        },
        "responses": _responses(
            {
                "description": "one prediction per record, in order",
                "content": {"application/json": {"schema": predictions}},
            }
        ),
        "security": security,
    }
    score_csv = {
        "summary": "CSV in, CSV out: the same rows with mpg and error columns (the web page's)",
        "requestBody": {
            "required": True,
            "content": {"text/csv": {"schema": table, "example": _csv_example()}},
        },
        "responses": _responses(
            {
                "description": "every row, in order, with mpg (empty for a row that failed "
                "validation) and error (the field and what was expected, or empty)",
                "headers": {
                    name: {"description": what, "schema": {"type": "integer"}}
                    for name, what in (("X-Carnn-Rows", "rows"), ("X-Carnn-Failed", "failed"))
                },
                "content": {"text/csv": {"schema": table}},
            }
        ),
        "security": security,
    }
    plain = {"200": {"description": "the service is up"}}
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": "1"},
        "paths": {
            "/invocations": {"post": invocations},
            "/score.csv": {"post": score_csv},
            "/ping": {"get": {"summary": "liveness", "responses": plain}},
            "/health": {"get": {"summary": "readiness", "responses": plain}},
            "/version": {"get": {"summary": "MLflow version", "responses": plain}},
            "/model": {
                "get": {
                    "summary": "the served model: name, version, alias, run, fields",
                    "responses": {"200": {"description": "model metadata"}},
                    "security": security,
                }
            },
        },
        "components": {
            "schemas": {**schemas, "Predictions": predictions, "Error": error},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _csv_example() -> str:
    record = example_record()
    bad = {**record, "weight": -1}
    return (
        "\n".join(
            ",".join(str(r[f.name]) for f in FIELDS)
            for r in ({f.name: f.name for f in FIELDS}, record, bad)
        )
        + "\n"
    )


def docs_page(doc: dict[str, Any]) -> str:
    """A self-contained HTML page of the document: routes, the record's fields, an example."""
    rows = []
    for path, methods in doc["paths"].items():
        for method, spec in methods.items():
            rows.append(f"<tr><td>{method.upper()}</td><td><code>{path}</code></td>"
                        f"<td>{html.escape(spec.get('summary', ''))}</td></tr>")  # fmt: skip
    record = doc["components"]["schemas"]["Record"]
    fields = "".join(
        f"<tr><td><code>{name}</code></td><td>{'yes' if name in record['required'] else 'no'}"
        f"</td><td>{html.escape(spec['description'])}</td></tr>"
        for name, spec in record["properties"].items()
    )
    example = json.dumps({"dataframe_records": [record["example"]]}, indent=2)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(doc["info"]["title"])}</title>
<style>body{{font-family:sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}}
td,th{{border-bottom:1px solid #ddd;padding:.3rem;text-align:left;vertical-align:top}}
table{{border-collapse:collapse}}</style></head>
<body><h1>{html.escape(doc["info"]["title"])}</h1>
<p>The full OpenAPI document: <a href="/openapi.json">/openapi.json</a>.</p>
<h2>Routes</h2><table><tr><th>method</th><th>path</th><th>what</th></tr>{"".join(rows)}</table>
<h2>A record's fields</h2><table><tr><th>field</th><th>required</th><th>meaning</th></tr>{fields}
</table><h2>Example</h2><pre>POST /invocations  Content-Type: application/json
{html.escape(example)}</pre></body></html>
"""
