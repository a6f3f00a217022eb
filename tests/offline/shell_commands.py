"""The external commands a bash script calls, read from its text.

A small lexer of the bash the project writes: it knows quotes, ``$(...)``, ``<(...)``,
``${...}``, ``((...))``, ``[[ ... ]]``, redirections, assignments before a command, case
patterns and comments, and reports each word in command position that is a literal name
(not a builtin, a keyword, a function the scripts define, or a word built from a variable).
``timeout``'s command counts too. What it cannot read it reports rather than skips: a
command name it does not know makes the coverage test fail until someone maps it.
"""

from __future__ import annotations

import re

# bash(1) "SHELL BUILTIN COMMANDS" and "Reserved Words" (the ones these scripts may use).
BUILTINS = frozenset(
    """. : [ alias bg bind break builtin caller cd command compgen complete compopt continue
    declare dirs disown echo enable eval exec exit export false fc fg getopts hash help history
    jobs kill let local logout mapfile popd printf pushd pwd read readarray readonly return set
    shift shopt source suspend test times trap true type typeset ulimit umask unalias unset
    wait""".split()  # noqa: SIM905 (a list literal of 60 names reads worse)
)
KEYWORDS_THEN_COMMAND = frozenset(["if", "then", "else", "elif", "do", "while", "until", "!", "{"])
KEYWORDS_OTHER = frozenset(["fi", "done", "esac", "}", "in", "function"])
# Commands that run the command that follows their own arguments: name -> how many
# non-option words come before that command.
WRAPPERS = {"timeout": 1}

_ASSIGNMENT = re.compile(r"[A-Za-z_]\w*(\[[^]]*\])?\+?=")
_FUNCTION = re.compile(r"^\s*(?:function\s+)?([A-Za-z_][\w-]*)\s*\(\)\s*\{?", re.M)
_NAME = re.compile(r"[A-Za-z0-9_][\w.+-]*|/[\w./+-]+")


def defined_functions(text: str) -> set[str]:
    return set(_FUNCTION.findall(text))


class _Lexer:
    def __init__(self, text: str, functions: set[str]) -> None:
        self.text = text
        self.functions = functions
        self.found: set[str] = set()

    def skip_balanced(self, i: int, open_: str, close: str) -> int:
        """Index after the ``close`` that balances an ``open_`` just before ``i``."""
        text, depth = self.text, 1
        while i < len(text):
            if text[i] == "\\":
                i += 2
            elif text[i] == "'":
                i = text.index("'", i + 1) + 1
            elif text[i] == '"':
                i = self.skip_double(i + 1)
            elif text.startswith(open_, i):
                depth += 1
                i += len(open_)
            elif text.startswith(close, i):
                depth -= 1
                i += len(close)
                if depth == 0:
                    return i
            else:
                i += 1
        raise ValueError(f"unbalanced {open_!r}")

    def skip_double(self, i: int) -> int:
        """Index after the closing quote of a double-quoted string whose text starts at
        ``i``; the commands of its ``$(...)`` count."""
        text = self.text
        while text[i] != '"':
            if text[i] == "\\":
                i += 2
            elif text.startswith("$((", i):
                i = self.skip_balanced(i + 3, "((", "))")
            elif text.startswith("$(", i):
                i = self.scan(i + 2, top=False)
            elif text.startswith("${", i):
                i = self.skip_balanced(i + 2, "{", "}")
            else:
                i += 1
        return i + 1

    def word_end(self, i: int) -> tuple[int, bool]:
        """The end of the word at ``i``, and whether it is literal (no quote, no expansion)."""
        text, literal = self.text, True
        while i < len(text) and text[i] not in " \t\n;&|<>()":
            if text[i] == "'":
                i = text.index("'", i + 1) + 1
                literal = False
            elif text[i] == '"':
                i = self.skip_double(i + 1)
                literal = False
            elif text.startswith("$((", i):
                i = self.skip_balanced(i + 3, "((", "))")
                literal = False
            elif text.startswith("$(", i):
                i = self.scan(i + 2, top=False)
                literal = False
            elif text.startswith("${", i):
                i = self.skip_balanced(i + 2, "{", "}")
                literal = False
            elif text[i] == "\\":
                i += 2
            else:
                literal = literal and text[i] != "$"
                i += 1
        return i, literal

    def scan(self, i: int, top: bool) -> int:
        """Scan commands from ``i`` to the ``)`` that closes this level (or the end)."""
        text = self.text
        at_command = True
        wrapper_args = -1  # words still to skip before a wrapper's command; -1: none
        line_names: list[str] = []  # this line's names, dropped if they were a case pattern
        in_test = redirect = False
        while i < len(text):
            c = text[i]
            if c == "\n":
                self.found.update(line_names)
                line_names = []
                at_command, wrapper_args, redirect = True, -1, False
                i += 1
            elif c in " \t":
                i += 1
            elif text.startswith("\\\n", i):
                i += 2
            elif c == "#":
                end = text.find("\n", i)
                i = len(text) if end < 0 else end
            elif text.startswith("((", i) or text.startswith("$((", i):
                i = self.skip_balanced(text.index("((", i) + 2, "((", "))")
                at_command = False
            elif text.startswith("$(", i) or text.startswith("<(", i) or text.startswith(">(", i):
                i = self.scan(i + 2, top=False)
            elif c == ")":
                if not top:
                    self.found.update(line_names)
                    return i + 1
                # A case pattern's end: the words before it on this line were the pattern.
                line_names = []
                at_command, wrapper_args = True, -1
                i += 1
            elif c == "(":
                i = self.scan(i + 1, top=False)
            elif c in ";&|":
                at_command, wrapper_args, redirect = True, -1, False
                i += 1
            elif c in "<>":
                while i < len(text) and text[i] in "<>&":
                    i += 1
                # >&1 names a descriptor, every other redirection a file (the next word).
                redirect = not (text[i - 1] == "&" and i < len(text) and text[i].isdigit())
                if not redirect:
                    i = self.word_end(i)[0]
            else:
                start = i
                i, literal = self.word_end(i)
                word = text[start:i]
                if word.endswith("=") and text.startswith("(", i) and _ASSIGNMENT.match(word):
                    i = self.skip_balanced(i + 1, "(", ")")  # an array's words are no commands
                    continue
                if word.isdigit() and i < len(text) and text[i] in "<>":
                    continue  # a file descriptor before a redirection
                if redirect:
                    redirect = False
                elif in_test:
                    in_test = word != "]]"
                elif word == "[[":
                    in_test = True
                elif at_command:
                    name = self.command_name(word, literal)
                    if name is None:
                        continue  # an assignment or a keyword: the command comes next
                    if wrapper_args > 0:
                        wrapper_args -= 0 if word.startswith("-") else 1
                        continue
                    at_command = False
                    if name:
                        line_names.append(name)
                        if name in WRAPPERS:
                            at_command, wrapper_args = True, WRAPPERS[name]
        self.found.update(line_names)
        return i

    def command_name(self, word: str, literal: bool) -> str | None:
        """None for a word after which the command still comes (an assignment, a keyword
        such as ``then``); "" for a command that is not an external one; else its name."""
        if _ASSIGNMENT.match(word) or word in KEYWORDS_THEN_COMMAND:
            return None
        if word in ("for", "case", "select") or word in KEYWORDS_OTHER or word in BUILTINS:
            return ""
        if not literal or word in self.functions or not _NAME.fullmatch(word):
            return ""
        return word.rsplit("/", 1)[-1]


def commands(text: str, functions: frozenset[str] = frozenset()) -> set[str]:
    """The literal command names in command position in ``text`` (nested $(...) included)."""
    lexer = _Lexer(text, set(functions) | defined_functions(text))
    lexer.scan(0, top=True)
    return lexer.found
