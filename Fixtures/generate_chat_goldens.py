#!/usr/bin/env python3
"""Chat-template goldens from transformers' apply_chat_template (run by hand; output committed).

Templates: SmolLM2-Instruct (from its tokenizer_config.json), Llama-2-chat, Llama-3-Instruct and
Qwen2-Instruct, as those models ship them. Each is rendered by transformers itself (its sandboxed
Jinja environment with trim_blocks and lstrip_blocks) for several conversations.

    pip install transformers tokenizers && python3 Fixtures/generate_chat_goldens.py
"""
import json, sys
from pathlib import Path

from tokenizers import Tokenizer
from tokenizers.models import BPE
from transformers import PreTrainedTokenizerFast

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent / "scripts"))
import make_smollm2  # noqa: E402

LLAMA2 = ("{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}"
          "{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
          "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
          "{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
          "{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
          "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}")
LLAMA3 = ("{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + "
          "'<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
          "{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}")
QWEN2 = ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}"
         "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
# A multi-line template exercising trim_blocks / lstrip_blocks and whitespace control.
MULTILINE = """{%- for message in messages %}
    {%- if message['role'] == 'system' %}
System: {{ message['content'] | trim }}
    {% elif message['role'] == 'user' -%}
User: {{ message['content'] }}
    {%- else %}
Assistant: {{ message['content'] }}{{ eos_token }}
    {% endif %}
{%- endfor %}
{%- if add_generation_prompt %}Assistant:{% endif %}"""

CONVERSATIONS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hi!"}],
    [{"role": "user", "content": "  padded question  \n"}, {"role": "assistant", "content": " An answer. "}, {"role": "user", "content": "And then?"}],
    [{"role": "system", "content": "Système: réponds en français 🇫🇷"}, {"role": "user", "content": "Ça va?\n\nLigne deux."},
     {"role": "assistant", "content": "Oui."}, {"role": "user", "content": "日本語も?"}],
    [{"role": "user", "content": "one"}, {"role": "user", "content": "two"}],  # Llama-2 raises on this
]


def main():
    smol = json.loads((make_smollm2.build(make_smollm2.DEFAULT_OUT) / "tokenizer_config.json").read_text())["chat_template"]
    templates = {
        "smollm2": {"template": smol, "bos": "<|im_start|>", "eos": "<|im_end|>"},
        "llama2": {"template": LLAMA2, "bos": "<s>", "eos": "</s>"},
        "llama3": {"template": LLAMA3, "bos": "<|begin_of_text|>", "eos": "<|eot_id|>"},
        "qwen2": {"template": QWEN2, "bos": "", "eos": "<|im_end|>"},
        "multiline": {"template": MULTILINE, "bos": "<s>", "eos": "</s>"},
    }
    cases = []
    for name, t in templates.items():
        tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(BPE(vocab={"a": 0}, merges=[])),
                                      bos_token=t["bos"] or None, eos_token=t["eos"])
        tok.chat_template = t["template"]
        for conv in CONVERSATIONS:
            for gen in (True, False):
                case = {"template": name, "messages": conv, "add_generation_prompt": gen}
                try:
                    case["rendered"] = tok.apply_chat_template(conv, tokenize=False, add_generation_prompt=gen)
                except Exception as e:  # e.g. Llama-2's raise_exception on non-alternating roles
                    case["error"] = str(e)
                cases.append(case)
    (ROOT / "chat" / "goldens.json").write_text(json.dumps({"templates": templates, "cases": cases}, ensure_ascii=False, indent=1) + "\n")
    print(len(cases), "cases,", sum("error" in c for c in cases), "errors")


if __name__ == "__main__":
    main()
