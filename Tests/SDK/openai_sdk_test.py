"""The official OpenAI Python SDK against Conduit's gateway.

Run by IntegrationTests (ChatProcessTests) with a gateway whose catalog serves:
  CONDUIT_SDK_CHAT_MODEL    a real model (the local SmolLM2 by default),
  CONDUIT_SDK_TOOLS_MODEL   a deployment that calls a tool, then answers from its result,
  CONDUIT_SDK_LIMITED_MODEL a deployment that always answers 429.
Environment: CONDUIT_SDK_BASE_URL (…/v1), CONDUIT_SDK_API_KEY. Exits non-zero on the first
failed check and prints one line per check.
"""
import json
import os
import sys

import openai

BASE_URL = os.environ["CONDUIT_SDK_BASE_URL"]
KEY = os.environ["CONDUIT_SDK_API_KEY"]
CHAT_MODEL = os.environ.get("CONDUIT_SDK_CHAT_MODEL", "smollm2-135m")
TOOLS_MODEL = os.environ["CONDUIT_SDK_TOOLS_MODEL"]
LIMITED_MODEL = os.environ["CONDUIT_SDK_LIMITED_MODEL"]

# No SDK retries: a 429 must surface as the exception it is.
client = openai.OpenAI(base_url=BASE_URL, api_key=KEY, max_retries=0, timeout=120)


def check(name, condition, detail=""):
    if not condition:
        print(f"FAIL {name} {detail}")
        sys.exit(1)
    print(f"ok   {name}")


def expect_error(name, exception, call):
    try:
        call()
    except exception as error:
        check(name, isinstance(error, exception), f"{type(error).__name__}")
        return error
    except Exception as error:  # the wrong class is a failure, with its name
        check(name, False, f"raised {type(error).__name__}: {error}")
    check(name, False, "no exception")


# Non-streaming chat against the real model.
completion = client.chat.completions.create(
    model=CHAT_MODEL, messages=[{"role": "user", "content": "What is the capital of France?"}], max_tokens=24
)
check("chat: object", completion.object == "chat.completion")
check("chat: model", completion.model == CHAT_MODEL, completion.model)
check("chat: content", bool(completion.choices[0].message.content), repr(completion.choices[0].message.content))
check("chat: finish_reason", completion.choices[0].finish_reason in ("stop", "length"))
check("chat: usage", completion.usage.completion_tokens > 0 and completion.usage.total_tokens
      == completion.usage.prompt_tokens + completion.usage.completion_tokens)

# Streaming chat with usage.
stream = client.chat.completions.create(
    model=CHAT_MODEL, messages=[{"role": "user", "content": "Count to five."}], max_tokens=24,
    stream=True, stream_options={"include_usage": True},
)
text, usage, finish = "", None, None
for chunk in stream:
    if chunk.usage is not None:
        usage = chunk.usage
    for choice in chunk.choices:
        text += choice.delta.content or ""
        finish = choice.finish_reason or finish
check("stream: text", len(text) > 0, repr(text))
check("stream: finish_reason", finish in ("stop", "length"), repr(finish))
check("stream: usage chunk", usage is not None and usage.completion_tokens > 0, repr(usage))

# A tool call round trip.
tools = [{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}]
messages = [{"role": "user", "content": "What is the weather in Paris?"}]
first = client.chat.completions.create(model=TOOLS_MODEL, messages=messages, tools=tools)
call = first.choices[0].message.tool_calls[0] if first.choices[0].message.tool_calls else None
check("tools: finish_reason", first.choices[0].finish_reason == "tool_calls", first.choices[0].finish_reason)
check("tools: call", call is not None and call.function.name == "get_weather"
      and json.loads(call.function.arguments) == {"city": "Paris"})
messages.append(first.choices[0].message.model_dump(exclude_none=True))
messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps({"celsius": 21})})
second = client.chat.completions.create(model=TOOLS_MODEL, messages=messages, tools=tools)
check("tools: answer uses the result", "21" in (second.choices[0].message.content or ""), repr(second.choices[0].message.content))

# Streamed tool call: the arguments arrive in pieces and join up.
pieces, name = [], None
for chunk in client.chat.completions.create(model=TOOLS_MODEL, messages=messages[:1], tools=tools, stream=True):
    for choice in chunk.choices:
        for delta in choice.delta.tool_calls or []:
            name = delta.function.name or name
            pieces.append(delta.function.arguments or "")
check("tools: streamed call", name == "get_weather" and json.loads("".join(pieces)) == {"city": "Paris"}, repr(pieces))

# Conduit's extension through extra_body: a session keeps the conversation, the client sends
# only the new message, and the response's `conduit` object names the session.
import urllib.request
session = "sdk-" + os.urandom(4).hex()
for question in ("My name is Ada.", "What is my name?"):
    answer = client.chat.completions.create(
        model=CHAT_MODEL, messages=[{"role": "user", "content": question}], max_tokens=12,
        extra_body={"conduit": {"session_id": session}})
check("extra_body: conduit.session_id", (answer.model_extra or {}).get("conduit", {}).get("session_id") == session, repr(answer.model_extra))
request = urllib.request.Request(f"{BASE_URL}/sessions/{session}", headers={"Authorization": f"Bearer {KEY}"})
stored = json.load(urllib.request.urlopen(request))
check("extra_body: session stored", [m["content"] for m in stored["messages"]][0::2] == ["My name is Ada.", "What is my name?"], repr(stored))

# The model list.
models = [model.id for model in client.models.list()]
check("models.list", CHAT_MODEL in models and TOOLS_MODEL in models, repr(models))

# Errors raise the SDK's classes.
bad_key = openai.OpenAI(base_url=BASE_URL, api_key="cdt-not-a-key", max_retries=0)
expect_error("401 → AuthenticationError", openai.AuthenticationError,
             lambda: bad_key.chat.completions.create(model=CHAT_MODEL, messages=[{"role": "user", "content": "hi"}]))
error = expect_error("400 → BadRequestError", openai.BadRequestError,
                     lambda: client.chat.completions.create(model=CHAT_MODEL, messages=[]))
check("400: param", error.param == "messages", repr(error.param))
error = expect_error("404 → NotFoundError", openai.NotFoundError,
                     lambda: client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}]))
check("404: code", error.code == "model_not_found", repr(error.code))
error = expect_error("429 → RateLimitError", openai.RateLimitError,
                     lambda: client.chat.completions.create(model=LIMITED_MODEL, messages=[{"role": "user", "content": "hi"}]))
check("429: Retry-After", error.response.headers.get("retry-after") is not None)
print("openai-sdk: all checks passed")
