"""The table of conversations that the chat-format tests render (shared by the golden script and the tests)."""

from __future__ import annotations

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
CLOCK = {"name": "get_time", "description": "Current time, ünïcødé", "parameters": {"type": "object", "properties": {}}}

CALL_DICT = {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
CALL_STR = {"type": "function", "function": {"name": "get_time", "arguments": "{}"}}

# name -> (messages, tools)
CASES: dict[str, tuple[list[dict], list[dict] | None]] = {
    "user": ([{"role": "user", "content": "Hi"}], None),
    "system_user": ([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}], None),
    "system_no_think": (
        [{"role": "system", "content": "Be brief. /no_think"}, {"role": "user", "content": "  Hi  "}],
        None,
    ),
    "system_only_flag": ([{"role": "system", "content": "/no_think"}, {"role": "user", "content": "Hi"}], None),
    "system_think": (
        [{"role": "system", "content": "/think You are helpful."}, {"role": "user", "content": "Hi"}],
        None,
    ),
    "empty_system": ([{"role": "system", "content": ""}, {"role": "user", "content": "Hi"}], None),
    "user_no_think": ([{"role": "user", "content": "What is 2+2? /no_think"}], None),
    "both_flags_one_message": ([{"role": "user", "content": "/no_think then /think"}], None),
    "system_flag_overridden_by_user": (
        [{"role": "system", "content": "Sys /think"}, {"role": "user", "content": "Q /no_think"}],
        None,
    ),
    "multi_turn_reasoning": (
        [
            {"role": "system", "content": "You are a math tutor."},
            {"role": "user", "content": "Solve 2x+3=7 /no_think"},
            {"role": "assistant", "content": "<think>\nSubtract 3, divide by 2.\n</think>\n\nx = 2"},
            {"role": "user", "content": "And 3x=9? /think"},
            {"role": "assistant", "content": "x = 3"},
            {"role": "user", "content": "Thanks"},
        ],
        None,
    ),
    "multi_turn_last_user_flag": (
        [
            {"role": "user", "content": "Hi /think"},
            {"role": "assistant", "content": "<think>greet</think>Hello!"},
            {"role": "user", "content": "Bye /no_think"},
        ],
        None,
    ),
    "tools": ([{"role": "user", "content": "Weather in Paris?"}], [WEATHER, CLOCK]),
    "tools_with_system": (
        [{"role": "system", "content": "Use tools. /no_think"}, {"role": "user", "content": "Weather in Paris?"}],
        [WEATHER],
    ),
    "tool_round_trip": (
        [
            {"role": "system", "content": "Assistant with tools."},
            {"role": "user", "content": "Weather and time?"},
            {"role": "assistant", "content": "", "tool_calls": [CALL_DICT, CALL_STR]},
            {"role": "tool", "content": '{"temperature": 21}'},
            {"role": "tool", "content": '"12:00"'},
            {"role": "assistant", "content": "It is 21 degrees at noon."},
            {"role": "user", "content": "Thanks!"},
        ],
        [WEATHER, CLOCK],
    ),
    "assistant_text_and_call": (
        [
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": "<think>need tool</think>Let me check.", "tool_calls": [CALL_STR]},
            {"role": "tool", "content": "sunny"},
        ],
        [CLOCK],
    ),
    "last_assistant_prefill": (
        [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "  Hello there  "}],
        None,
    ),
    "last_assistant_tool_call": (
        [{"role": "user", "content": "Time?"}, {"role": "assistant", "content": "", "tool_calls": [CALL_STR]}],
        [CLOCK],
    ),
    "second_system_message": (
        [
            {"role": "user", "content": "Hi"},
            {"role": "system", "content": "Late system /no_think"},
            {"role": "user", "content": "Again"},
        ],
        None,
    ),
    "unicode": ([{"role": "user", "content": "Größe von 東京? 🙂"}], None),
}

# The official templates that the built-in renderers must reproduce, by zoo chat format.
TEMPLATES = {
    "nemotron-v2": "nvidia-nemotron-nano-v2.jinja",
    "llama-nemotron-v1.5": "llama-nemotron-super-v1.5.jinja",
    "deepseek-r1": "deepseek-r1-distill-qwen.jinja",
}
BOS = {"nemotron-v2": "<s>", "llama-nemotron-v1.5": "<|begin_of_text|>", "deepseek-r1": "<｜begin▁of▁sentence｜>"}
