"""RAG quality and overhead against a running Conduit gateway (run by deploy/dev/bench-rag.sh).

Indexes the shipped corpus (corpus.jsonl) through POST /v1/documents, waits until the
retriever holds it, then:
  --overhead N   sends N chat requests without and N with retrieval (interleaved, one at a
                 time) to a model that answers instantly, and prints the latency percentiles;
                 the difference is what RAG adds apart from the model.
  --model NAME   asks every labelled question (questions.jsonl) with retrieval and reports the
                 retrieval hit rate (a relevant document among the top 4 of /v1/search) and the
                 citation precision (cited documents that are labelled relevant).
Prints one line of key=value pairs.
"""
import argparse, http.client, json, os, sys, time, urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))


class Client:
    def __init__(self, base, key):
        url = urllib.parse.urlparse(base)
        self.connection = http.client.HTTPConnection(url.hostname, url.port, timeout=300)
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def call(self, method, path, body=None, headers=None):
        self.connection.request(method, path, body=json.dumps(body) if body is not None else None, headers={**self.headers, **(headers or {})})
        response = self.connection.getresponse()
        data = response.read()
        return response.status, json.loads(data) if data else None


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round((len(ordered) - 1) * p))]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--gateway", required=True)
    parser.add_argument("--retriever", required=True)
    parser.add_argument("--tenant", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--collection", default="northwind")
    parser.add_argument("--overhead", type=int, default=0)
    parser.add_argument("--overhead-model", default="bench")
    parser.add_argument("--model")
    args = parser.parse_args()
    gateway = Client(args.gateway, args.key)
    corpus = [json.loads(line) for line in open(os.path.join(HERE, "corpus.jsonl"))]
    questions = [json.loads(line) for line in open(os.path.join(HERE, "questions.jsonl"))]

    documents = [{"collection": args.collection, "doc_id": d["doc_id"], "text": d["text"], "metadata": {"title": d["title"]}} for d in corpus]
    status, body = gateway.call("POST", "/v1/documents", {"documents": documents})
    if status != 202:
        sys.exit(f"indexing request refused: {status} {body}")
    retriever = Client(args.retriever, "unused")
    deadline = time.time() + 180
    while True:
        status, stats = retriever.call("GET", f"/v1/collections/{args.collection}", headers={"X-Conduit-Tenant": args.tenant})
        if status == 200 and stats.get("documents") == len(corpus):
            break
        if time.time() > deadline:
            sys.exit(f"the corpus was not indexed in time: {stats}")
        time.sleep(0.5)

    results = {}
    if args.overhead:
        rag = {"rag": {"collection": args.collection, "top_k": 4}}
        latencies = {"plain": [], "rag": []}
        for index in range(args.overhead + 10):
            question = questions[index % len(questions)]["question"]
            for kind in ("plain", "rag"):
                body = {"model": args.overhead_model, "max_tokens": 32, "messages": [{"role": "user", "content": question}], "conduit": {"cache": False}}
                if kind == "rag":
                    body["conduit"].update(rag)
                started = time.perf_counter()
                status, answer = gateway.call("POST", "/v1/chat/completions", body)
                elapsed = (time.perf_counter() - started) * 1000
                if status != 200:
                    sys.exit(f"{kind} request failed: {status} {answer}")
                if index >= 10:  # the first ten warm connections and caches
                    latencies[kind].append(elapsed)
        for kind in ("plain", "rag"):
            results[f"{kind}_p50_ms"] = percentile(latencies[kind], 0.5)
            results[f"{kind}_p99_ms"] = percentile(latencies[kind], 0.99)
        results["overhead_p50_ms"] = results["rag_p50_ms"] - results["plain_p50_ms"]
        results["overhead_p99_ms"] = results["rag_p99_ms"] - results["plain_p99_ms"]

    if args.model:
        hits = cited_total = cited_relevant = answered_with_citations = explicit = 0
        for item in questions:
            relevant = set(item["relevant"])
            status, found = gateway.call("POST", "/v1/search", {"collection": args.collection, "query": item["question"], "top_k": 4})
            if status == 200 and relevant & {r["doc_id"] for r in found["results"]}:
                hits += 1
            status, answer = gateway.call("POST", "/v1/chat/completions", {
                "model": args.model, "temperature": 0, "max_tokens": 96,
                "messages": [{"role": "user", "content": item["question"]}],
                "conduit": {"rag": {"collection": args.collection, "top_k": 4}, "cache": False}})
            if status != 200:
                sys.exit(f"question failed: {status} {answer}")
            citations = (answer.get("conduit") or {}).get("citations") or []
            cited_total += len(citations)
            cited_relevant += sum(1 for c in citations if c["document_id"] in relevant)
            explicit += sum(1 for c in citations if c["cited"])
            answered_with_citations += 1 if citations else 0
            text = answer["choices"][0]["message"]["content"].replace("\n", " ")
            print(f"  {item['question'][:50]:50} cites {[c['document_id'] for c in citations]} | {text[:80]}", file=sys.stderr)
        results["questions"] = len(questions)
        results["retrieval_hit_rate_at_4"] = hits / len(questions)
        results["citation_precision"] = cited_relevant / cited_total if cited_total else 0.0
        results["answers_with_citations"] = answered_with_citations / len(questions)
        results["explicit_citation_share"] = explicit / cited_total if cited_total else 0.0
    print(" ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in results.items()))


if __name__ == "__main__":
    main()
