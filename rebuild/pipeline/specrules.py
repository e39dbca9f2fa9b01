"""Where an edit of a spec's definitions would not take effect, as rpm reads the spec.

rpm sets ``%name``, ``%version`` and ``%release`` from their tags; ``%bcond_without x`` defines ``with_x``
itself; a definition inside ``%if`` is run only when the condition holds. ``spec.edit_spec`` asks
these rules about each edit: a tag or ``%bcond`` that would undo it refuses the edit (naming the line to
change instead); a definition in a branch that a simple evaluation of the spec's conditionals shows is
not taken is named. The evaluation knows the spec's own plain definitions and ``%bcond`` switches and
nothing of the build host's macros: a condition on anything else (``%ifarch``, ``%{_arch}``, a version
literal) is not judged.
"""

from __future__ import annotations

import re

from rebuild.errors import UsageError

_TAG_MACROS = {"name": "Name", "version": "Version", "release": "Release"}


def refuse_if_a_tag_sets(spec, name: str) -> None:
    """rpm sets %name, %version and %release from their tags: a literal tag (not made of the macro) decides
    the package's value, whatever the %define says, so editing the %define would change nothing built."""
    tag = _TAG_MACROS.get(name)
    if tag is None:
        return
    pattern = re.compile(rf"^{tag}\s*:\s*(.*?)\s*$", re.I)
    uses = re.compile(rf"%\{{?[!?]*{name}\b")
    for number, body in enumerate(spec.bodies, 1):
        m = pattern.match(body)
        if m and not uses.search(m.group(1)):
            raise UsageError(f"{spec.path}:{number}: the {tag}: tag is the literal {m.group(1)!r}, and rpm sets"
                             f" %{name} from it: editing %define {name} would change nothing built; edit the"
                             f" {tag}: tag itself" + (" (or give --release-suffix)" if name == "release" else ""))


def _bconds(bodies: list[str], switch: str) -> list[tuple[int, str, bool]]:
    """(line index, line, whether it defines with_SWITCH by default) of each %bcond line for *switch*."""
    pattern = re.compile(r"^\s*%bcond(?:_(with|without)\s+|\s+)" + re.escape(switch) + r"(?:\s+(\S+))?\s*$")
    found = []
    for i, body in enumerate(bodies):
        m = pattern.match(body)
        if m:
            on = m.group(1) == "without" if m.group(1) else (m.group(2) or "0") not in ("0", "")
            found.append((i, body.strip(), on))
    return found


def _switch(name: str) -> str | None:
    for prefix in ("with_", "without_"):
        if name.startswith(prefix) and len(name) > len(prefix):
            return name[len(prefix):]
    return None


def refuse_if_a_bcond_overrides(spec, name: str, starts: list[int]) -> None:
    """``%bcond_without x`` runs ``%global with_x 1``: one after the last definition edited sets it again."""
    switch = _switch(name)
    if switch is None or not name.startswith("with_"):
        return
    for i, line, on in _bconds(spec.bodies, switch):
        if on and i > max(starts):
            raise UsageError(f"{spec.path}:{i + 1}: `{line}` comes after the definition of {name} edited and sets it"
                             f" again (rpm runs them in order): change the default there (%bcond_with {switch}: off,"
                             f" %bcond_without {switch}: on) instead")


def nothing_to_edit(spec, base: str) -> str:
    """Why *base* cannot be set: a %bcond makes it, only a conditional default defines it, or nothing does."""
    switch = _switch(base)
    for i, line, _ in _bconds(spec.bodies, switch) if switch else []:
        return (f"{spec.path}:{i + 1}: {base} is made by `{line}`, not by a %define: change its default there"
                f" (%bcond_with {switch}: off, %bcond_without {switch}: on), or build with --with/--without {switch}")
    pattern = re.compile(r"%\{!?\?!?" + re.escape(base) + r":\s*%(?:define|global)\s+" + re.escape(base) + r"\b")
    for i, body in enumerate(spec.bodies):
        if pattern.search(body):
            return (f"{spec.path}:{i + 1}: the only definition of {base} is the conditional default here, which"
                    f" applies only when {base} is not defined yet: define it first with --add {base}=VALUE"
                    f" (spec.add_macros in a recipe)")
    return (f"{spec.path}: macro {base!r} has no %define or %global to change; check the name, or define a new"
            f" one with --add {base}=VALUE (spec.add_macros in a recipe)")


def note_conditional_defaults(spec, name: str, notes: list[str], advise: bool = False) -> None:
    pattern = re.compile(r"%\{!?\?!?" + re.escape(name) + r":\s*%(?:define|global)\s+" + re.escape(name) + r"\b")
    for i, body in enumerate(spec.bodies):
        if pattern.search(body):
            notes.append(
                f"{spec.path.name}:{i + 1}: conditional default of {name} left alone (it only applies when {name} is"
                f" not already defined)" + (f"; where none of the conditions above holds it still gives {name} its"
                                            f" default: to set it in every case, --add {name}=VALUE" if advise else "")
            )


# ---------------------------------------------------------------- which branches rpm takes

_DIRECTIVE = re.compile(r"^\s*%(if|ifarch|ifnarch|ifos|ifnos|elif|else|endif)\b\s*(.*?)\s*$")
_PLAIN_DEFINE = re.compile(r"^\s*%(?:define|global)\s+([A-Za-z_][A-Za-z0-9_]*)\s+(.*?)\s*$")


def untaken_branches(bodies: list[str]) -> dict[int, str]:
    """Line index -> the ``%if`` (with its line) whose branch holding that line is not taken, for the lines
    a simple evaluation can judge."""
    macros: dict[str, str | None] = {}  # value, or None where it is defined but not plain text
    stack: list[list] = []  # [description, state (True/False/None), any branch taken so far]
    out: dict[int, str] = {}
    for i, body in enumerate(bodies):
        m = _DIRECTIVE.match(body)
        if m:
            word, rest = m.groups()
            if word.startswith("if"):
                state = evaluate(rest, macros) if word == "if" else None
                stack.append([f"`%{word} {rest}` (line {i + 1})", state, state is True])
            elif stack and word == "elif":
                top = stack[-1]
                state = False if top[2] else evaluate(rest, macros) if top[1] is not None else None
                top[0], top[1] = f"`%elif {rest}` (line {i + 1})", state
                top[2] = top[2] or state is True
            elif stack and word == "else":
                top = stack[-1]
                top[0] = f"the %else of {top[0]}"
                top[1] = None if top[1] is None else not top[2]
            elif stack and word == "endif":
                stack.pop()
            continue
        false = [entry for entry in stack if entry[1] is False]
        if false:
            out[i] = false[-1][0]
            continue
        d = _PLAIN_DEFINE.match(body)
        if d:
            uncertain = None in [entry[1] for entry in stack]  # inside a branch not judged: value unknown
            macros[d.group(1)] = None if uncertain or "%" in d.group(2) else d.group(2)
        for switch_line in re.finditer(r"^\s*%bcond_without\s+(\S+)", body):
            macros[f"with_{switch_line.group(1)}"] = "1"
    return out


_MACRO = re.compile(r"%\{(!?)(\?)?([A-Za-z_][A-Za-z0-9_]*)(?::([^{}%]*))?\}|%\{(with|without|defined|undefined)\s+"
                    r"([A-Za-z_][A-Za-z0-9_]*)\}|%([A-Za-z_][A-Za-z0-9_]*)")


def evaluate(expression: str, macros: dict[str, str | None]) -> bool | None:
    """Whether rpm's %if takes *expression*, given *macros*; None where that cannot be told here."""
    unknown = False

    def expand(m: re.Match) -> str:
        nonlocal unknown
        if m.group(5):  # %{with x}, %{defined x}
            word, name = m.group(5), m.group(6)
            name = f"with_{name}" if word in ("with", "without") else name
            present = name in macros
            return "1" if present == (word in ("with", "defined")) else "0"
        negated, optional, name, alternative = m.group(1), m.group(2), m.group(3) or m.group(7), m.group(4)
        defined = name in macros
        if optional:
            if alternative is not None:
                return alternative if defined != bool(negated) else ""
            if negated:
                return ""
            if defined and macros[name] is None:
                unknown = True
            return (macros.get(name) or "") if defined else ""
        if not defined or macros[name] is None:
            unknown = True
            return ""
        return macros[name] or ""

    text = expression
    for _ in range(4):  # a macro's value may name another
        text = _MACRO.sub(expand, text)
    if unknown or "%" in text:
        return None
    try:
        value = _Expression(text).parse()
    except ValueError:
        return None
    return bool(value)


class _Expression:
    """rpm's %if expressions: integers, "strings", ! - ( ), comparisons, && and ||."""

    _TOKEN = re.compile(r"\s*(\d+|\"[^\"]*\"|&&|\|\||==|!=|<=|>=|[<>!()-])")

    def __init__(self, text: str) -> None:
        self.tokens, position = [], 0
        text = text.strip()
        while position < len(text):
            m = self._TOKEN.match(text, position)
            if not m:
                raise ValueError(text[position:])
            self.tokens.append(m.group(1))
            position = m.end()
        if not self.tokens:
            raise ValueError("empty")

    def parse(self):
        value = self._or()
        if self.tokens:
            raise ValueError(self.tokens[0])
        return value

    def _take(self, *words: str) -> str | None:
        if self.tokens and self.tokens[0] in words:
            return self.tokens.pop(0)
        return None

    def _or(self):
        return self._chain("||", self._and, lambda left, right: left or right)

    def _and(self):
        return self._chain("&&", self._compare, lambda left, right: left and right)

    def _chain(self, word: str, operand, combine):
        value = operand()
        while self._take(word):
            value = combine(value, operand())
        return value

    def _compare(self):
        left = self._unary()
        op = self._take("==", "!=", "<", ">", "<=", ">=")
        if op is None:
            return left
        right = self._unary()
        if type(left) is not type(right):
            raise ValueError("types differ")
        return {"==": left == right, "!=": left != right, "<": left < right, ">": left > right,
                "<=": left <= right, ">=": left >= right}[op]

    def _unary(self):
        if self._take("!"):
            return not self._unary()
        if self._take("-"):
            return -self._unary()
        if self._take("("):
            value = self._or()
            if not self._take(")"):
                raise ValueError("no )")
            return value
        if not self.tokens:
            raise ValueError("end")
        token = self.tokens.pop(0)
        if token.isdigit():
            return int(token)
        if token.startswith('"'):
            return token[1:-1]
        raise ValueError(token)
