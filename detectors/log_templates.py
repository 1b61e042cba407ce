"""Online log template mining: messages in, templates (``<*>`` for variable parts) out.

The miner follows Drain (He et al., "Drain: An Online Log Parsing Approach with Fixed Depth
Tree", ICWS 2017), with our own masking and similarity:

1. **Masking.** Obvious parameters are replaced by ``<*>`` inside the message, by one regular
   expression: UUIDs, IPv4 addresses (with a port), ``host.domain:port``, ``0x`` hex numbers and hex
   ids of 8 or more characters, sizes and durations with their unit (``12ms``, ``4 bytes``,
   ``(1.2 KB)``, ``<1 sec``) and numbers (also ``12:07:00``, ``1.5``, ``-3``) that stand alone, i.e.
   not glued to a letter, ``name_123`` ids, dates, and the name after ``user``. So ``user=42``
   becomes ``user=<*>``, while constant words that hold a digit stay (``en0:``, ``HTTP/1.1"``,
   ``PS/2``, ``e820``). Runs of ``<*>`` tokens collapse into one, so ``4 bytes (1.2 KB)`` and
   ``4 bytes`` are one parameter.
2. **Routing.** Messages are grouped by token count and their first ``depth`` tokens; a token that
   holds a digit or ``<*>`` routes as ``<*>`` (it is likely a parameter).
3. **Matching.** Within a group a message joins the most similar template if their similarity (the
   share of positions with *equal* tokens; a ``<*>`` the template learned does not match a word, so
   templates cannot snowball into all-``<*>`` forms) is at least ``similarity``; the template's
   differing positions become ``<*>``. Otherwise it starts a new template.
4. **Bounded.** At most ``max_templates`` are kept; the least recently used is forgotten.

Speed caches, none of which changes a result (nor is part of the state): messages and masked
messages to their template (an entry is used only while its group is unchanged), so a repeated
message costs one dictionary look-up and a repeated message shape one masking; tokens to their
masked form; and token shapes (digits 2-9 read as 1) to where their masks go, so the regular
expressions run once per shape, not once per id.

Time per message: O(message length) when cached, else O(templates in its group x tokens).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final, Self

__all__ = ["WILDCARD", "LogTemplate", "TemplateMiner", "mask_message", "mask_tokens"]

WILDCARD: Final = "<*>"

#: Parameters inside one whitespace token (applied to tokens holding a digit only).
#: Each alternative starts by consuming a character (its own "not after" test is a lookbehind of
#: width 2 right after it), so the regular expression engine skips an alternative on its first
#: character instead of running its lookbehind at every position: about 1.2-1.3x faster.
_TOKEN_MASKS: Final = re.compile(
    r"""
    (?<![A-Za-z0-9])  # no parameter starts inside a word: one test instead of one per alternative
    (?:
    [0-9a-fA-F][0-9a-fA-F]{7}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}  # UUID
    | \d(?<![\w.]\d)\d{0,2}(?:\.\d{1,3}){3}(?::\d+)?(?![\w.])                  # IPv4[:port]
    | (?<![\w:])(?=[0-9a-fA-F]{0,4}:)(?=[0-9a-fA-F:]*\d)
      (?:[0-9a-fA-F]{0,4}:){2,7}[0-9a-fA-F]{0,4}(?![\w:])                          # IPv6
    | [A-Za-z](?<![\w.-][A-Za-z])[\w-]*(?:\.[\w-]+)+:\d+(?!\w)                    # host.domain:port
    | 0(?<![\w.]0)x[0-9a-fA-F]+(?!\w)                                              # 0x hex
    | [A-Za-z](?<![\w.-][A-Za-z])[A-Za-z]*(?:_-?\d+)+(?!\w)                         # blk_-12
    | [0-9a-fA-F](?:(?<=\d)|(?=[0-9a-fA-F]*\d))[0-9a-fA-F]{7,}(?![A-Za-z0-9])       # hex id
    | [-+<>\d](?<![A-Za-z0-9./][-+<>\d])(?:(?<=\d)\d*|\d+)                          # number
      (?:[.:,]\d+)*(?:[KMGT]?B|ms|us|ns|s|%)?(?![A-Za-z0-9])
    )
    """,
    re.VERBOSE,
)
#: Phrases that span tokens: a size or duration and its unit, ``(1.2 KB)``.
_PHRASES: Final = re.compile(
    r"\(\d+(?:\.\d+)?\ ?[KMGT]?B\)"
    r"|(?<![A-Za-z0-9])\d+\ bytes(?!\w)"
    r"|<\d+(?:\.\d+)?\ ?(?:sec|ms|s)(?!\w)",
    re.VERBOSE,
)
#: Day and month names: part of a date when a masked time or number follows.
_DATE_WORDS: Final = frozenset(
    w + c
    for w in (
        *("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
        *("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
    )
    for c in ("", ",")
)
#: A token after one of these names a user (a parameter).
_NAMING: Final = frozenset({"user"})


_HAS_DIGIT: Final = re.compile(r"\d")
_TOKEN_RUNS: Final = re.compile(r"(?<!\S)<\*>(?:\s+<\*>)+(?!\S)")


#: Tokens that are one parameter as a whole (a fast path: :data:`_TOKEN_MASKS` gives the same).
_WHOLE_PARAMETER: Final = re.compile(
    r"[-+<>]?\d+(?:[.:]\d+)*(?:[KMGT]?B|ms|us|ns|s|%)?"
    r"|[A-Za-z]+(?:_-?\d+)+"
    r"|0x[0-9a-fA-F]+"
    r"|(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{8,}"
)


#: One test that settles most tokens: group 1 matches a token that is one parameter as a whole
#: (:data:`_WHOLE_PARAMETER`); the other alternatives match tokens that masking leaves as they are:
#: with no digit, or only ASCII letters and digits (``an350``, ``J18``: a parameter there would
#: have to span the whole token, and group 1 is tried first).
_WHOLE_OR_KEPT: Final = re.compile(rf"({_WHOLE_PARAMETER.pattern})|[A-Za-z0-9]+|\D*")


def _mask_token(token: str) -> str:
    settled = _WHOLE_OR_KEPT.fullmatch(token)
    if settled is None:
        return _TOKEN_MASKS.sub(WILDCARD, token)
    return token if settled.lastindex is None else WILDCARD


#: A token's shape: digits 2-9 read as 1. Masking treats all digits alike (the only digit the
#: expressions name is the 0 of ``0x``), so a token and its shape are masked at the same places,
#: and ``an350``, ``an712`` and ``an286`` share one shape: one regular expression run for all.
#: (Shapes are UTF-8 bytes: ``bytes.translate`` is about 10x faster than ``str.translate``, and
#: in UTF-8 the bytes of ASCII digits stand for nothing else.)
_SHAPE: Final = bytes.maketrans(b"23456789", b"11111111")
#: Pieces of a token's mask (see :func:`_pieces`): the token as it is, or one ``<*>``.
_KEEP: Final[tuple[tuple[int, int], ...]] = ()
_WHOLE: Final[tuple[tuple[int, int], ...]] = ((0, 0),)


def _pieces(shape: str) -> tuple[tuple[int, int], ...]:
    """Where masking keeps a token of this shape: ``(start, end)`` slices with ``<*>`` between.

    :data:`_KEEP` if it keeps the whole token, :data:`_WHOLE` if it masks the whole token.

    >>> _pieces("an111"), _pieces("11.11"), _pieces("/11.11.11.11:11")
    ((), ((0, 0),), ((0, 1), (15, 15)))
    """
    settled = _WHOLE_OR_KEPT.fullmatch(shape)
    if settled is not None:
        return _KEEP if settled.lastindex is None else _WHOLE
    pieces = []
    start = 0
    for match in _TOKEN_MASKS.finditer(shape):  # what .sub replaces: no match is empty
        pieces.append((start, match.start()))
        start = match.end()
    if not pieces:
        return _KEEP
    pieces.append((start, len(shape)))
    return tuple(pieces)


class _TokenCache(dict[str, str]):
    """Tokens to their masked form; a missing token is masked and remembered.

    Its owner bounds it (clears it when full); the shapes it learns from are bounded by ``size``.
    """

    __slots__ = ("_shapes", "size")

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size
        self._shapes: dict[bytes, tuple[tuple[int, int], ...]] = {}

    def __missing__(self, token: str) -> str:
        shape = token.encode("utf-8", "surrogatepass").translate(_SHAPE)
        pieces = self._shapes.get(shape)
        if pieces is None:
            if len(self._shapes) >= self.size:
                self._shapes.clear()
            pieces = self._shapes[shape] = _pieces(shape.decode("utf-8", "surrogatepass"))
        if pieces is _KEEP:
            masked = token
        elif pieces is _WHOLE:
            masked = WILDCARD
        elif len(pieces) == 2:
            masked = token[: pieces[0][1]] + WILDCARD + token[pieces[1][0] :]
        else:
            masked = WILDCARD.join([token[a:b] for a, b in pieces])
        self[token] = masked
        return masked


#: Words that need :func:`_join_dates_and_names`: day and month names, and ``user``.
_SPECIAL_WORDS: Final = _DATE_WORDS | _NAMING


def _masked_text(message: str, cache: _TokenCache | None = None, cache_size: int = 0) -> str:
    """:func:`mask_message`, with a token cache (shared by the caller) for speed."""
    if "bytes" in message or "B)" in message or "<" in message:
        message = _PHRASES.sub(WILDCARD, message)
    tokens = message.split()
    if cache is None:
        mask: Callable[[str], str] = _mask_token
    else:
        if len(cache) >= cache_size:
            cache.clear()
        mask = cache.__getitem__
    # A masked token is a day or month name only if the token is one (names hold no digit, and
    # a token with a digit keeps it or gets a <*>), so the tokens tell whether dates need joining.
    if _SPECIAL_WORDS.isdisjoint(tokens):
        text = " ".join(map(mask, tokens))
    else:
        text = " ".join(_join_dates_and_names(tokens, list(map(mask, tokens))))
    if "<*> <*>" in text:
        text = _TOKEN_RUNS.sub(WILDCARD, text)
    return text


def _join_dates_and_names(tokens: list[str], masked: list[str]) -> list[str]:
    """Mask the token after ``user``, and day and month names right before a masked token."""
    out: list[str] = []
    previous = ""
    for token, m in zip(tokens, masked, strict=True):
        if m == WILDCARD:
            while out and (out[-1] == WILDCARD or out[-1] in _DATE_WORDS):
                out.pop()
        elif previous in _NAMING:
            m = WILDCARD
        out.append(m)
        previous = token
    return out


def mask_tokens(message: str) -> list[str]:
    """The message's whitespace tokens with obvious parameters replaced by ``<*>``.

    Runs of ``<*>`` tokens collapse into one (see the module docstring).

    >>> mask_tokens("user=42 fetched order 9f3a1c07 in 12.5ms from 10.0.0.7:80 via en0:")
    ['user=<*>', 'fetched', 'order', '<*>', 'in', '<*>', 'from', '<*>', 'via', 'en0:']
    >>> mask_tokens("10.1.1.2 close, 97 bytes (1.2 KB) sent, lifetime 00:01 at Fri Jun 17 07:07:00")
    ['<*>', 'close,', '<*>', 'sent,', 'lifetime', '<*>', 'at', '<*>']
    """
    return _masked_text(message).split()


def mask_message(message: str) -> str:
    """The message with obvious parameters replaced by ``<*>`` (runs of them collapsed).

    >>> mask_message("user=42 fetched order 9f3a1c07 in 12.5ms from 10.0.0.7:80 via en0:")
    'user=<*> fetched order <*> in <*> from <*> via en0:'
    """
    return _masked_text(message)


def _route(token: str) -> str:
    """How a token routes in the prefix tree: ``<*>`` if it may be a parameter."""
    if "<*>" in token or _HAS_DIGIT.search(token) is not None:
        return WILDCARD
    return token


_WORD: Final = re.compile(r"[^\d<>]*[A-Za-z][^\d<>]*")
_ALNUM_WORD: Final = re.compile(r"[A-Za-z]+\d+[,.:;]?")


def _kind(token: str) -> int:
    """0: ``<*>``; 1: a word (``SOCKS5``, ``off,``); 2: with a parameter (``id=<*>``); 3: other."""
    if token == WILDCARD:
        return 0
    if WILDCARD in token:
        return 2
    if _WORD.fullmatch(token) is not None or _ALNUM_WORD.fullmatch(token) is not None:
        return 1
    return 3


def _clash(a: str, b: str, kinds: dict[str, int]) -> bool:
    """Two differing tokens that cannot be one parameter: two words, or a word and ``key=<*>``.

    Variable parts are mostly masked, so a template does not turn a word into ``<*>`` (``VM
    Paused`` and ``VM Resumed`` are two templates), nor a word and a token with a masked part
    (``tty=NODEVssh`` and ``tty=:<*>``). ``kinds`` memoises :func:`_kind` (the caller bounds it).
    """
    ka = kinds.get(a)
    if ka is None:
        ka = kinds[a] = _kind(a)
    kb = kinds.get(b)
    if kb is None:
        kb = kinds[b] = _kind(b)
    return (ka == 1 and kb in (1, 2)) or (kb == 1 and ka == 2)


class LogTemplate:
    """One mined template: its id, its tokens, its text, and how many messages it has matched.

    Treat ``tokens`` and ``text`` as read-only (the miner keeps them in step).
    """

    __slots__ = ("count", "id", "text", "tokens")

    def __init__(self, template_id: str, tokens: list[str], count: int = 0) -> None:
        self.id = template_id
        self.tokens = tokens
        #: The template as text, tokens joined by one space.
        self.text = " ".join(tokens)
        self.count = count


class _Group:
    """The templates of one routing key (token count and first tokens)."""

    __slots__ = ("templates", "version")

    def __init__(self) -> None:
        self.templates: list[LogTemplate] = []
        self.version = 0  # bumped whenever a template of the group is added, changed or dropped


class TemplateMiner:
    """Mine log messages into templates online (Drain-like; see the module docstring).

    Parameters
    ----------
    similarity:
        Least share of equal token positions for a message to join a template (0 < s <= 1).
    depth:
        Leading tokens that route a message (besides its token count), at least 1.
    max_templates:
        Templates kept; the least recently used beyond that is forgotten.
    cache_size:
        Entries in each of the speed caches (messages, masked messages, tokens, token shapes,
        token kinds); a full cache is emptied. They change no result and are not saved.

    Examples
    --------
    >>> miner = TemplateMiner()
    >>> for line in ["conn 7 from 10.0.0.1 closed", "conn 8 from 10.0.0.2 closed",
    ...              "disk /dev/sda1 full", "disk /dev/sdb2 full", "VM paused", "VM resumed"]:
    ...     template, new = miner.add(line)
    >>> [(t.text, t.count) for t in miner.templates()]
    [('conn <*> from <*> closed', 2), ('disk <*> full', 2), ('VM paused', 1), ('VM resumed', 1)]
    """

    def __init__(
        self,
        similarity: float = 0.5,
        depth: int = 1,
        max_templates: int = 100_000,
        cache_size: int = 20_000,
    ) -> None:
        if not 0.0 < similarity <= 1.0:
            raise ValueError(f"similarity: must be in (0, 1], got {similarity}")
        if depth < 1:
            raise ValueError(f"depth: must be at least 1, got {depth}")
        if max_templates < 1:
            raise ValueError(f"max_templates: must be at least 1, got {max_templates}")
        self.similarity = similarity
        self.depth = depth
        self.max_templates = max_templates
        self.cache_size = max(cache_size, 1)
        self._templates: OrderedDict[str, LogTemplate] = OrderedDict()  # LRU: oldest first
        self._groups: dict[tuple[str, ...], _Group] = {}
        self._group_of: dict[str, _Group] = {}
        # Masked texts, and messages, to their group, its version then, their template and the
        # masked text: an entry is used only while the group's version is unchanged.
        self._cache: dict[str, tuple[_Group, int, LogTemplate, str]] = {}
        self._token_cache = _TokenCache(self.cache_size)
        self._kinds: dict[str, int] = {}  # token -> _kind(token), for _clash
        self._text_cache: dict[str, tuple[_Group, int, LogTemplate, str]] = {}
        self._next_id = 1
        #: Ids forgotten (least recently used) by the last :meth:`add`.
        self.evicted: list[str] = []

    def __len__(self) -> int:
        return len(self._templates)

    def templates(self) -> list[LogTemplate]:
        """The templates kept, least recently used first."""
        return list(self._templates.values())

    def get(self, template_id: str) -> LogTemplate | None:
        """The template of this id, if kept."""
        return self._templates.get(template_id)

    def _key(self, tokens: Sequence[str]) -> tuple[str, ...]:
        return (str(len(tokens)), *(_route(t) for t in tokens[: self.depth]))

    def _best(self, group: _Group, tokens: list[str]) -> LogTemplate | None:
        best: LogTemplate | None = None
        best_equal = -1
        kinds = self._kinds
        if len(kinds) >= self.cache_size:
            kinds.clear()
        for template in group.templates:
            equal = 0
            clash = False
            for a, b in zip(template.tokens, tokens, strict=True):
                if a == b:
                    equal += 1
                elif _clash(a, b, kinds):
                    clash = True
                    break
            if not clash and equal > best_equal:
                best, best_equal = template, equal
        n = len(tokens)
        if best is None or (n and best_equal < self.similarity * n):
            return None
        return best

    def add(self, message: str) -> tuple[LogTemplate, bool]:
        """Learn one message; return its template (after learning) and whether it is new."""
        if self.evicted:
            self.evicted = []
        seen = self._text_cache.get(message)
        if seen is not None:
            if seen[0].version == seen[1]:  # the same message, its group unchanged since
                template = seen[2]
                template.count += 1
                self._templates.move_to_end(template.id)
                return template, False
            masked = seen[3]
        else:
            masked = _masked_text(message, self._token_cache, self.cache_size)
        text_cache = self._text_cache
        if len(text_cache) >= self.cache_size:
            text_cache.clear()
        hit = self._cache.get(masked)
        if hit is not None and hit[0].version == hit[1]:
            text_cache[message] = hit
            template = hit[2]
            template.count += 1
            self._templates.move_to_end(template.id)
            return template, False
        tokens = masked.split()
        key = self._key(tokens)
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group()
        template_or_none = self._best(group, tokens)
        new = template_or_none is None
        if template_or_none is None:
            template = LogTemplate(f"t{self._next_id}", tokens)
            self._next_id += 1
            group.templates.append(template)
            group.version += 1
            self._templates[template.id] = template
            self._group_of[template.id] = group
            self._evict()
        else:
            template = template_or_none
            self._templates.move_to_end(template.id)
            if template.tokens != tokens:
                merged = [
                    a if a == b else WILDCARD for a, b in zip(template.tokens, tokens, strict=True)
                ]
                if merged != template.tokens:
                    template.tokens = merged
                    template.text = " ".join(merged)
                    group.version += 1
        template.count += 1
        if len(self._cache) >= self.cache_size:
            self._cache.clear()
        self._cache[masked] = text_cache[message] = (group, group.version, template, masked)
        return template, new

    def _evict(self) -> None:
        while len(self._templates) > self.max_templates:
            tid, _ = self._templates.popitem(last=False)
            group = self._group_of.pop(tid)
            group.templates = [t for t in group.templates if t.id != tid]
            group.version += 1
            self.evicted.append(tid)

    def to_state(self) -> dict[str, Any]:
        """The mined templates as JSON-serialisable data (LRU order, oldest first)."""
        return {
            "next_id": self._next_id,
            "templates": [[t.id, t.tokens, t.count] for t in self._templates.values()],
        }

    def load(self, next_id: int, templates: Iterable[tuple[str, list[str], int]]) -> None:
        """Replace the templates by saved ones (oldest first); later results are identical."""
        self._templates.clear()
        self._groups.clear()
        self._group_of.clear()
        self._cache.clear()
        self._text_cache.clear()
        self._next_id = next_id
        for tid, tokens, count in templates:
            template = LogTemplate(tid, list(tokens), count)
            key = self._key(template.tokens)
            group = self._groups.get(key)
            if group is None:
                group = self._groups[key] = _Group()
            group.templates.append(template)
            self._templates[tid] = template
            self._group_of[tid] = group
        self.evicted = []
        self._evict()

    @classmethod
    def from_state(
        cls,
        state: dict[str, Any],
        similarity: float = 0.5,
        depth: int = 1,
        max_templates: int = 100_000,
        cache_size: int = 20_000,
    ) -> Self:
        """Rebuild a miner from :meth:`to_state` output.

        Raises
        ------
        ValueError
            If ``state`` is malformed.
        """
        miner = cls(similarity, depth, max_templates, cache_size)
        next_id = state.get("next_id")
        entries = state.get("templates")
        if not isinstance(next_id, int) or next_id < 1 or not isinstance(entries, list):
            raise ValueError("miner state: needs 'next_id' (int >= 1) and 'templates' (list)")
        loaded = []
        for entry in entries:
            if not (
                isinstance(entry, list)
                and len(entry) == 3
                and isinstance(entry[0], str)
                and isinstance(entry[1], list)
                and all(isinstance(t, str) for t in entry[1])
                and isinstance(entry[2], int)
            ):
                raise ValueError("miner state: 'templates' entries must be [id, tokens, count]")
            loaded.append((entry[0], entry[1], entry[2]))
        miner.load(next_id, loaded)
        return miner
