#!/usr/bin/env python3
"""Writes deploy/grafana/dashboards/*.json, Grafana's provisioned dashboards, from the panels
below: one place where every query is written, so the dashboards stay consistent.

    python3 deploy/grafana/make-dashboards.py           # rewrite the JSON files
    python3 deploy/grafana/make-dashboards.py --check   # exit 1 if a committed file differs

Queries use only metrics the services export (checked against a real Prometheus by the
observability test, `deploy/dev/check-dashboards.py --prometheus`). Ratios whose numerator may
have no series yet (no 5xx so far) use `(a or b * 0) / b`, so they read 0, not "no data"."""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "dashboards")
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
SERVICES = ["gateway", "orchestrator", "embedder", "retriever", "cost-service", "prompt-registry", "metrics-exporter"]


def ts(title, unit, *queries, description=None):
    return {"type": "timeseries", "title": title, "unit": unit, "queries": queries, "description": description}


def stat(title, unit, *queries, description=None):
    return {"type": "stat", "title": title, "unit": unit, "queries": queries, "description": description}


def ratio(bad, all_, by):
    """bad/all by `by`, reading 0 while `bad` has no series."""
    return f"(sum by ({by}) ({bad}) or sum by ({by}) ({all_}) * 0) / sum by ({by}) ({all_})"


def q99(metric, by="le", selector="", window="5m", quantile=0.99):
    return f"histogram_quantile({quantile}, sum by ({by}) (rate({metric}_bucket{selector}[{window}])))"


def red(service):
    s = f'{{service="{service}"}}'
    s5 = f'{{service="{service}",status=~"5.."}}'
    return [
        ts("Requests per second, by route", "reqps", (f"sum by (route) (rate(conduit_http_requests_total{s}[5m]))", "{{route}}")),
        ts("5xx share, by route", "percentunit",
           (ratio(f"rate(conduit_http_requests_total{s5}[5m])", f"rate(conduit_http_requests_total{s}[5m])", "route"), "{{route}}")),
        ts("p99 time to response head, by route", "s", (q99("conduit_http_request_duration_seconds", "route, le", s), "{{route}}")),
        ts("Requests in flight", "short", (f"sum(conduit_http_requests_in_flight{s})", "in flight")),
    ]


DASHBOARDS = {
    "conduit-overview": ("Conduit · platform overview", "Rate, errors and duration of every service, and the LLM traffic they carry.", [
        stat("Services answering scrapes", "short", ('count(up{job="conduit"} == 1)', "up")),
        stat("Model calls per second", "reqps", ("sum(rate(llm_requests_total[5m]))", "calls/s")),
        stat("Spend per hour (USD)", "currencyUSD", ("sum(rate(llm_cost_dollars_total[5m])) * 3600", "USD/h")),
        ts("Requests per second, by service", "reqps", ("sum by (service) (rate(conduit_http_requests_total[5m]))", "{{service}}")),
        ts("5xx share, by service", "percentunit",
           (ratio('rate(conduit_http_requests_total{status=~"5.."}[5m])', "rate(conduit_http_requests_total[5m])", "service"), "{{service}}")),
        ts("p99 time to response head, by service", "s", (q99("conduit_http_request_duration_seconds", "service, le"), "{{service}}")),
        ts("Requests in flight, by service", "short", ("sum by (service) (conduit_http_requests_in_flight)", "{{service}}")),
        ts("Model calls per second, by outcome", "reqps", ("sum by (status) (rate(llm_requests_total[5m]))", "{{status}}")),
    ]),
    "conduit-models": ("Conduit · models and providers", "Latency, errors, retries, fallbacks and circuit breakers per model and deployment.", [
        stat("Open circuits", "short", ("sum(conduit_provider_circuit_open)", "open")),
        ts("Model calls per second, by model and outcome", "reqps", ("sum by (model, status) (rate(llm_requests_total[5m]))", "{{model}} {{status}}")),
        ts("Request duration p50 / p99, by model", "s",
           (q99("llm_request_duration_seconds", "model, le", quantile=0.5), "p50 {{model}}"),
           (q99("llm_request_duration_seconds", "model, le"), "p99 {{model}}")),
        ts("Time to first token p50 / p99, by model", "s",
           (q99("llm_time_to_first_token_seconds", "model, le", quantile=0.5), "p50 {{model}}"),
           (q99("llm_time_to_first_token_seconds", "model, le"), "p99 {{model}}")),
        ts("Provider attempts per second, by deployment and outcome", "reqps",
           ("sum by (deployment, outcome) (rate(conduit_provider_requests_total[5m]))", "{{deployment}} {{outcome}}")),
        ts("Provider error share, by deployment", "percentunit",
           (ratio('rate(conduit_provider_requests_total{outcome!="ok"}[5m])', "rate(conduit_provider_requests_total[5m])", "deployment"), "{{deployment}}")),
        ts("Retries per second, by deployment", "reqps", ("sum by (deployment) (rate(conduit_provider_retries_total[5m]))", "{{deployment}}")),
        ts("Fallbacks per second, to deployment", "reqps", ("sum by (to_deployment) (rate(conduit_provider_fallbacks_total[5m]))", "{{to_deployment}}")),
        ts("Circuit open, by deployment", "short", ("max by (deployment) (conduit_provider_circuit_open)", "{{deployment}}")),
        ts("Model selection, by model and reason", "reqps",
           ("sum by (selected_model, reason) (rate(llm_model_selection_total[5m]))", "{{selected_model}} ({{reason}})")),
        ts("Tokens per second, by model and kind", "short", ("sum by (model, kind) (rate(llm_tokens_total[5m]))", "{{model}} {{kind}}")),
        ts("Answer quality (feedback), mean by kind", "short",
           ("sum by (kind) (rate(llm_response_quality_score_sum[1h])) / sum by (kind) (rate(llm_response_quality_score_count[1h]))", "{{kind}}")),
    ]),
    "conduit-cost": ("Conduit · cost and budgets", "Spend by model and team, cost per request, budget utilisation and the month's forecast.", [
        stat("Spend per hour (USD)", "currencyUSD", ("sum(rate(llm_cost_dollars_total[5m])) * 3600", "USD/h")),
        stat("30-day spend at the last hour's rate (USD)", "currencyUSD", ("sum(rate(llm_cost_dollars_total[1h])) * 86400 * 30", "forecast")),
        stat("Cache savings per hour (USD)", "currencyUSD", ("sum(rate(llm_cache_savings_dollars_total[5m])) * 3600", "USD/h")),
        ts("Spend per hour, by model (USD)", "currencyUSD", ("sum by (model) (rate(llm_cost_dollars_total[5m])) * 3600", "{{model}}")),
        ts("Spend per hour, by team (USD)", "currencyUSD", ("sum by (team) (rate(llm_team_cost_dollars_total[5m])) * 3600", "{{team}}")),
        ts("Cost per request p50 / p99, by model and tier", "currencyUSD",
           (q99("llm_cost_per_request_dollars", "model, tier, le", quantile=0.5), "p50 {{model}} {{tier}}"),
           (q99("llm_cost_per_request_dollars", "model, tier, le"), "p99 {{model}} {{tier}}")),
        ts("Budget utilisation (latest alert), by budget", "percentunit", ("max by (budget) (llm_budget_utilization_ratio)", "{{budget}}")),
        ts("Budget alerts in the last hour, by kind", "short", ("sum by (kind) (increase(llm_budget_alerts_total[1h]))", "{{kind}}")),
        ts("Ledger events per second, by outcome", "short", ("sum by (outcome) (rate(cost_ledger_events_total[5m]))", "{{outcome}}")),
    ]),
    "conduit-cache-rag": ("Conduit · cache and RAG", "Semantic cache hit rate and savings; retrieval latency and citations of grounded answers.", [
        stat("Cache hit rate", "percentunit",
             ("sum(rate(llm_cache_hits_total[5m])) / (sum(rate(llm_cache_hits_total[5m])) + sum(rate(llm_cache_misses_total[5m])))", "hit rate")),
        stat("Citations per grounded answer", "short",
             ("sum(rate(llm_rag_citations_total[1h])) / sum(rate(llm_rag_answers_total[1h]))", "citations")),
        ts("Cache hits and misses per second", "reqps",
           ("sum(rate(llm_cache_hits_total[5m]))", "hits"), ("sum(rate(llm_cache_misses_total[5m]))", "misses")),
        ts("Cache savings per hour (USD)", "currencyUSD", ("sum by (model) (rate(llm_cache_savings_dollars_total[5m])) * 3600", "{{model}}")),
        ts("Semantic cache entries", "short", ("sum(semantic_cache_entries)", "entries")),
        ts("Retrieval p99 (chat stage) and search p99 (retriever)", "s",
           (q99("conduit_chat_stage_duration_seconds", "le", '{stage="retrieval",phase="prepare"}'), "retrieval stage"),
           (q99("conduit_http_request_duration_seconds", "le", '{service="retriever",route="/v1/search"}'), "retriever search")),
        ts("Grounded answers and citations per second", "short",
           ("sum(rate(llm_rag_answers_total[5m]))", "answers"), ("sum(rate(llm_rag_citations_total[5m]))", "citations")),
    ]),
    "conduit-indexing": ("Conduit · indexing", "Consumer lag, throughput and dead letters of the indexing path.", [
        stat("Dead-lettered in the last hour", "short", ('sum(increase(conduit_kafka_messages_total{outcome="dead_lettered"}[1h]))', "DLQ")),
        ts("Consumer lag, by group and topic", "short", ("sum by (group, topic) (conduit_kafka_consumer_lag_messages)", "{{group}} {{topic}}")),
        ts("Messages per second, by topic and outcome", "short",
           ("sum by (topic, outcome) (rate(conduit_kafka_messages_total[5m]))", "{{topic}} {{outcome}}")),
        ts("Tokens embedded per second", "short", ("sum(rate(conduit_embedder_tokens_embedded_total[5m]))", "tokens/s")),
        ts("Embedder inference p99", "s", (q99("conduit_embedder_inference_duration_seconds"), "p99")),
        ts("Events counted by the exporter, by topic", "short", ("sum by (topic) (rate(conduit_events_consumed_total[5m]))", "{{topic}}")),
    ]),
}

EXTRA = {
    "gateway": [
        ts("Audit events published per second", "short", ("sum(rate(gateway_audit_events_published_total[5m]))", "published")),
        ts("API keys known", "short", ("sum(gateway_api_keys_known)", "keys")),
    ],
    "orchestrator": [
        ts("Chat stage p99, by stage and phase", "s", (q99("conduit_chat_stage_duration_seconds", "stage, phase, le"), "{{stage}} {{phase}}")),
        ts("Usage events sent per second", "short", ('sum(rate(conduit_usage_events_sent_total{service="orchestrator"}[5m]))', "sent")),
    ],
    "embedder": [
        ts("Inference p99", "s", (q99("conduit_embedder_inference_duration_seconds"), "p99")),
        ts("Tokens embedded per second", "short", ("sum(rate(conduit_embedder_tokens_embedded_total[5m]))", "tokens/s")),
    ],
    "retriever": [
        ts("Chunk events per second, by outcome", "short", ('sum by (outcome) (rate(conduit_kafka_messages_total{service="retriever"}[5m]))', "{{outcome}}")),
        ts("Consumer lag", "short", ('sum by (topic) (conduit_kafka_consumer_lag_messages{service="retriever"})', "{{topic}}")),
    ],
    "cost-service": [
        ts("Ledger events per second, by outcome", "short", ("sum by (outcome) (rate(cost_ledger_events_total[5m]))", "{{outcome}}")),
        ts("Live spend ahead of the ledger (USD)", "currencyUSD", ("max(cost_budget_spend_drift_dollars)", "drift")),
    ],
    "prompt-registry": [
        ts("Usage events read per second", "short", ("sum(rate(prompt_registry_usage_events_total[5m]))", "events/s")),
        ts("Hot copies waiting for Redis", "short", ("max(prompt_registry_hot_copy_pending)", "pending")),
    ],
    "metrics-exporter": [
        ts("Events counted per second, by topic", "short", ("sum by (topic) (rate(conduit_events_consumed_total[5m]))", "{{topic}}")),
        ts("Consumer lag", "short", ('sum by (topic) (conduit_kafka_consumer_lag_messages{service="metrics-exporter"})', "{{topic}}")),
    ],
}
for name in SERVICES:
    DASHBOARDS[f"conduit-{name}"] = (f"Conduit · {name}", f"The {name} service: its routes' rate, errors and latency.", red(name) + EXTRA[name])


def panel(index, spec, x, y, w, h):
    defaults = {"unit": spec["unit"]}
    if spec["type"] == "timeseries":
        options = {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True, "calcs": []},
                   "tooltip": {"mode": "multi", "sort": "desc"}}
        defaults["custom"] = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10, "showPoints": "never", "spanNulls": False}
    else:
        options = {"graphMode": "area", "colorMode": "value", "justifyMode": "auto", "textMode": "auto", "wideLayout": True,
                   "showPercentChange": False, "percentChangeColorMode": "standard", "orientation": "auto",
                   "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}}
    result = {
        "id": index, "type": spec["type"], "title": spec["title"], "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options,
        "targets": [{"refId": chr(ord("A") + n), "datasource": DATASOURCE, "expr": expr, "legendFormat": legend, "range": True}
                    for n, (expr, legend) in enumerate(spec["queries"])],
    }
    if spec.get("description"):
        result["description"] = spec["description"]
    return result


def dashboard(uid, title, description, panels):
    laid, x, y = [], 0, 0
    stats = [p for p in panels if p["type"] == "stat"]
    for index, spec in enumerate(stats):
        width = 24 // len(stats)
        laid.append(panel(len(laid) + 1, spec, index * width, 0, width, 4))
    y = 4 if stats else 0
    for spec in (p for p in panels if p["type"] != "stat"):
        laid.append(panel(len(laid) + 1, spec, x, y, 12, 8))
        x = 12 - x
        if x == 0:
            y += 8
    return {
        "uid": uid, "title": title, "description": description, "tags": ["conduit"], "timezone": "browser", "editable": True,
        "graphTooltip": 1, "schemaVersion": 39, "version": 1, "refresh": "30s", "time": {"from": "now-1h", "to": "now"},
        "templating": {"list": []}, "annotations": {"list": []}, "links": [], "panels": laid,
    }


def render():
    return {f"{uid}.json": json.dumps(dashboard(uid, *spec), indent=2) + "\n" for uid, spec in DASHBOARDS.items()}


if __name__ == "__main__":
    files = render()
    if "--check" in sys.argv:
        stale = [name for name, text in files.items()
                 if not os.path.exists(os.path.join(OUT, name)) or open(os.path.join(OUT, name)).read() != text]
        extra = sorted(set(os.listdir(OUT)) - set(files))
        if stale or extra:
            print(f"make-dashboards: out of date: {stale}; not generated: {extra} (run deploy/grafana/make-dashboards.py)", file=sys.stderr)
            sys.exit(1)
        sys.exit(0)
    os.makedirs(OUT, exist_ok=True)
    for name in set(os.listdir(OUT)) - set(files):
        os.remove(os.path.join(OUT, name))
    for name, text in files.items():
        with open(os.path.join(OUT, name), "w") as out:
            out.write(text)
    print(f"wrote {len(files)} dashboards to {OUT}")
