#!/usr/bin/env python3
"""Captures request bodies exactly as the official OpenAI Python SDK sends them.

Starts a throwaway HTTP server on a loopback port, points the SDK at it, makes one call per
fixture, and writes each captured JSON body to Tests/ConduitProtocolTests/Fixtures/<name>.json.
The server answers 400 so the SDK neither retries nor needs a real response.

    pip install openai && python3 deploy/dev/capture-openai-fixtures.py
"""
import http.server
import json
import pathlib
import threading

import openai

OUT = pathlib.Path(__file__).resolve().parents[2] / "Tests" / "ConduitProtocolTests" / "Fixtures"
captured = {}


class Capture(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        captured["last"] = (self.path, json.loads(body))
        reply = json.dumps({"error": {"message": "captured", "type": "invalid_request_error", "param": None, "code": None}}).encode()
        self.send_response(400)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Capture)
threading.Thread(target=server.serve_forever, daemon=True).start()
client = openai.OpenAI(api_key="sk-test", base_url=f"http://127.0.0.1:{server.server_port}/v1", max_retries=0)

weather_tool = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        "strict": True,
    },
}

calls = {
    "chat_basic": lambda: client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello!"}]),
    "chat_all_parameters": lambda: client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "developer", "content": "Be terse."}, {"role": "user", "content": "Hi", "name": "ada"}],
        temperature=0.2, top_p=0.9, n=2, stop=["\n\n", "END"], max_tokens=64, max_completion_tokens=128,
        seed=42, user="user-123", metadata={"team": "search"}, presence_penalty=0.1, frequency_penalty=0.2,
        logit_bias={"50256": -100}, logprobs=True, top_logprobs=2, store=False, parallel_tool_calls=False),
    "chat_stream_with_usage": lambda: list(client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Count to 3"}], stream=True,
        stream_options={"include_usage": True})),
    "chat_tools": lambda: client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "system", "content": "You can call tools."},
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp_c\": 21}"},
        ],
        tools=[weather_tool], tool_choice={"type": "function", "function": {"name": "get_weather"}}),
    "chat_tool_choice_auto": lambda: client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Weather?"}], tools=[weather_tool], tool_choice="auto"),
    "chat_image_parts": lambda: client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": [
            {"type": "text", "text": "What is in this image?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}},
        ]}]),
    "chat_json_schema": lambda: client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Give me a person"}],
        response_format={"type": "json_schema", "json_schema": {"name": "person", "strict": True, "schema": {
            "type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"], "additionalProperties": False}}}),
    "chat_unknown_fields": lambda: client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}],
        extra_body={"conduit": {"rag": {"collection": "docs", "top_k": 4}}, "some_future_field": [1, 2]}),
    "embeddings_default": lambda: client.embeddings.create(model="text-embedding-3-small", input="The quick brown fox"),
    "embeddings_float_batch": lambda: client.embeddings.create(
        model="text-embedding-3-small", input=["first", "second"], encoding_format="float", dimensions=256, user="u1"),
    "embeddings_tokens": lambda: client.embeddings.create(model="text-embedding-3-small", input=[1996, 4248, 2829]),
    "embeddings_token_arrays": lambda: client.embeddings.create(model="text-embedding-3-small", input=[[101, 102], [7592]]),
}

OUT.mkdir(parents=True, exist_ok=True)
for name, call in calls.items():
    captured.pop("last", None)
    try:
        call()
    except openai.BadRequestError:
        pass
    path, body = captured["last"]
    (OUT / f"{name}.json").write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")
    print(f"{name}: POST {path}")
server.shutdown()
