#!/usr/bin/env python3
"""Checks the provisioned Grafana dashboards (deploy/grafana/dashboards/*.json) without Grafana.

    check-dashboards.py                          # schema only (make check-deploy)
    check-dashboards.py --prometheus URL         # and every query against a real Prometheus

Schema: each dashboard validates against Grafana's dashboard JSON schema, each panel's `options`
and `fieldConfig.defaults.custom` against its panel type's schema (deploy/grafana/schema/), panel
ids are unique and every target has a query. Prometheus: every query returns at least one series
(a query that returns nothing fails), and every metric a query names has series of its own, so
`or ... * 0` cannot hide a metric no service exports. Prints one line per dashboard; exits 1 on
any failure, naming the panel and the query."""
import json
import os
import re
import sys
import urllib.parse
import urllib.request

import jsonschema

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DASHBOARDS = os.path.join(ROOT, "deploy", "grafana", "dashboards")
SCHEMAS = os.path.join(ROOT, "deploy", "grafana", "schema")

# PromQL words that look like metric names: functions, aggregations, keywords.
PROMQL_WORDS = {
    "sum", "min", "max", "avg", "count", "rate", "irate", "increase", "delta", "histogram_quantile", "predict_linear",
    "by", "without", "on", "ignoring", "group_left", "group_right", "or", "and", "unless", "offset", "bool", "topk",
    "bottomk", "abs", "clamp_min", "clamp_max", "vector", "scalar", "absent", "time", "avg_over_time", "max_over_time",
    "min_over_time", "sum_over_time", "quantile", "stddev", "label_replace", "deriv", "round", "ceil", "floor",
}


def load(name):
    with open(os.path.join(SCHEMAS, name)) as handle:
        return json.load(handle)


def sub_schema(document, definition):
    """`definition` of a schema document, with the document's definitions to resolve $refs."""
    return {"$schema": document.get("$schema"), "definitions": document["definitions"], "$ref": f"#/definitions/{definition}"}


def metric_names(expr):
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)              # strings
    text = re.sub(r"\{[^}]*\}", "", text)                       # label matchers
    text = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", text)  # grouping labels
    text = re.sub(r"\[[^\]]*\]", "", text)                      # ranges
    names = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", text))
    return sorted(name for name in names if name not in PROMQL_WORDS and not re.fullmatch(r"[0-9e]+", name) and "_" in name)


def schema_problems(path, panel_schemas, dashboard_schema):
    with open(path) as handle:
        board = json.load(handle)
    problems = [f"dashboard: {error.message} at {list(error.absolute_path)}"
                for error in jsonschema.Draft7Validator(dashboard_schema).iter_errors(board)]
    ids = [panel.get("id") for panel in board.get("panels", [])]
    if len(ids) != len(set(ids)):
        problems.append("panel ids repeat")
    for panel in board.get("panels", []):
        title = panel.get("title", "?")
        kind = panel.get("type")
        if kind not in panel_schemas:
            problems.append(f"panel '{title}': type {kind} has no schema here (use {sorted(panel_schemas)})")
            continue
        options, field_config = panel_schemas[kind]
        for error in jsonschema.Draft7Validator(options).iter_errors(panel.get("options", {})):
            problems.append(f"panel '{title}' options: {error.message}")
        custom = panel.get("fieldConfig", {}).get("defaults", {}).get("custom")
        if custom is not None:
            for error in jsonschema.Draft7Validator(field_config).iter_errors(custom):
                problems.append(f"panel '{title}' fieldConfig.defaults.custom: {error.message}")
        targets = panel.get("targets", [])
        if not targets or any(not target.get("expr") for target in targets):
            problems.append(f"panel '{title}': every panel needs targets with an expr")
    return board, problems


def query(prometheus, expr):
    url = f"{prometheus}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    with urllib.request.urlopen(url, timeout=10) as response:
        body = json.load(response)
    if body.get("status") != "success":
        raise RuntimeError(body.get("error", "query failed"))
    return body["data"]["result"]


def main():
    prometheus = None
    if "--prometheus" in sys.argv:
        prometheus = sys.argv[sys.argv.index("--prometheus") + 1].rstrip("/")
    dashboard_schema = load("dashboard.jsonschema.json")
    panel_schemas = {}
    for kind in ("timeseries", "stat"):
        document = load(f"{kind}.jsonschema.json")
        panel_schemas[kind] = (sub_schema(document, "Options"), sub_schema(document, "FieldConfig"))
    failed = False
    totals = {"dashboards": 0, "panels": 0, "queries": 0}
    for name in sorted(os.listdir(DASHBOARDS)):
        if not name.endswith(".json"):
            continue
        board, problems = schema_problems(os.path.join(DASHBOARDS, name), panel_schemas, dashboard_schema)
        queries = [(panel.get("title"), target["expr"]) for panel in board.get("panels", []) for target in panel.get("targets", []) if target.get("expr")]
        if prometheus:
            for title, expr in queries:
                try:
                    if not query(prometheus, expr):
                        problems.append(f"panel '{title}': no data for {expr}")
                    for metric in metric_names(expr):
                        if not query(prometheus, f'count({{__name__="{metric}"}})'):
                            problems.append(f"panel '{title}': no service exports {metric} ({expr})")
                except Exception as error:  # noqa: BLE001 - reported per query
                    problems.append(f"panel '{title}': {error} for {expr}")
        totals["dashboards"] += 1
        totals["panels"] += len(board.get("panels", []))
        totals["queries"] += len(queries)
        state = "ok" if not problems else "FAILED"
        print(f"  {name}: {len(board.get('panels', []))} panels, {len(queries)} queries, schema{' and data' if prometheus else ''} {state}")
        for problem in problems:
            print(f"    {problem}")
        failed = failed or bool(problems)
    print(f"check-dashboards: dashboards={totals['dashboards']} panels={totals['panels']} queries={totals['queries']} "
          f"{'with data from ' + prometheus if prometheus else 'schema only'}: {'FAILED' if failed else 'ok'}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
