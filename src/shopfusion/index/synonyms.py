"""Synonyms file: one group per line, `tv, television, telly` (all equivalent) or `hoover => vacuum` (one way).

Terms go through the same analysis as the index, so a group written with plain words matches stemmed forms.
"""

from __future__ import annotations

from pathlib import Path

from shopfusion.index.text import analyze


class SynonymError(ValueError):
    pass


class Synonyms:
    def __init__(self, rules: list[tuple[tuple[str, ...], list[tuple[str, ...]]]]) -> None:
        self.rules = rules  # (analysed term, analysed expansions)

    @classmethod
    def parse(cls, text: str) -> Synonyms:
        rules: list[tuple[tuple[str, ...], list[tuple[str, ...]]]] = []
        for number, line in enumerate(text.splitlines(), 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            left, arrow, right = line.partition("=>")
            sources = [tuple(analyze(t)) for t in left.split(",") if t.strip()]
            targets = [tuple(analyze(t)) for t in right.split(",") if t.strip()] if arrow else sources
            if not all(sources) or not all(targets) or not sources or (arrow and not targets):
                raise SynonymError(f"synonyms line {number}: {line!r} has an empty or stopword-only term")
            rules.extend((s, [t for t in targets if t != s]) for s in sources)
        return cls(rules)

    @classmethod
    def load(cls, path: Path | None) -> Synonyms:
        if path is None:
            return cls([])
        try:
            return cls.parse(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise SynonymError(f"cannot read synonyms file {path}: {exc}") from exc

    def expand(self, tokens: list[str]) -> list[str]:
        """The query tokens plus the tokens of every synonym whose term occurs in them (as a token sequence)."""
        extra: list[str] = []
        for term, expansions in self.rules:
            n = len(term)
            if any(tuple(tokens[i : i + n]) == term for i in range(len(tokens) - n + 1)):
                for expansion in expansions:
                    extra.extend(t for t in expansion if t not in tokens and t not in extra)
        return tokens + extra
