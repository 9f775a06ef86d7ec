"""CLIP's byte-pair tokenizer without torch: the token ids SAM 3's text encoder reads, for ``sam3-onnx``.

SAM 3 tokenizes with its own copy of CLIP's tokenizer (``sam3.model.tokenizer_ve``), which needs torch and the
whole ``sam3`` package to import. The ONNX backend runs without either, so this module reads the same vocabulary
file (``bpe_simple_vocab_16e6.txt.gz``) with the same text clean-up (ftfy, HTML entities, whitespace, lower case)
and gives the same ids; tests hold it to the package's tokenizer.
"""

from __future__ import annotations

import gzip
import html
from pathlib import Path

import ftfy
import numpy as np
import regex

START, END = "<start_of_text>", "<end_of_text>"
#: Merges CLIP's vocabulary uses: 49152 entries less the 256 byte symbols and the two markers.
MERGES = 49152 - 256 - 2
END_OF_WORD = "</w>"
#: How CLIP splits clean text into words before byte-pair encoding them.
WORDS = regex.compile(rf"{START}|{END}|'s|'t|'re|'ve|'m|'ll|'d|[\p{{L}}]+|[\p{{N}}]|[^\s\p{{L}}\p{{N}}]+",
                      regex.IGNORECASE)


def byte_symbols() -> dict[int, str]:
    """CLIP's reversible map from the 256 byte values to characters: printable Latin-1 bytes stand for themselves,
    the others for the characters from U+0100 on, in byte order."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in printable]
    return {**{b: chr(b) for b in printable}, **{b: chr(256 + n) for n, b in enumerate(others)}}


def clean(text: str) -> str:
    """The clean-up CLIP applies before tokenizing: fix mojibake, unescape HTML twice, one space per run, lower case."""
    text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
    return regex.sub(r"\s+", " ", text).strip().lower()


class ClipTokenizer:
    """Text -> (1, context_length) int32 ids: start marker, byte-pair ids, end marker, zero padding (truncated to fit
    with the end marker kept last)."""

    def __init__(self, bpe_path: str | Path, context_length: int) -> None:
        lines = gzip.decompress(Path(bpe_path).read_bytes()).decode("utf-8").split("\n")
        merges = [tuple(line.split()) for line in lines[1:MERGES + 1]]
        self.symbols = byte_symbols()
        vocabulary = [*self.symbols.values(), *(s + END_OF_WORD for s in self.symbols.values()),
                      *("".join(pair) for pair in merges), START, END]
        self.ids = {token: i for i, token in enumerate(vocabulary)}
        self.ranks = {pair: rank for rank, pair in enumerate(merges)}
        self.context_length = context_length
        self._words: dict[str, list[str]] = {}

    @property
    def vocab_size(self) -> int:
        return len(self.ids)

    def _pieces(self, word: str) -> list[str]:
        """``word`` (byte symbols) as vocabulary pieces: the best-ranked adjacent pair merged until none is known."""
        if word in (START, END):
            return [word]
        if word not in self._words:
            pieces = [*word[:-1], word[-1] + END_OF_WORD]
            while len(pieces) > 1:
                rank, pair = min((self.ranks.get(pair, MERGES), pair) for pair in zip(pieces, pieces[1:]))
                if rank == MERGES:
                    break
                merged, i = [], 0
                while i < len(pieces):
                    if tuple(pieces[i:i + 2]) == pair:
                        merged.append(pieces[i] + pieces[i + 1])
                        i += 2
                    else:
                        merged.append(pieces[i])
                        i += 1
                pieces = merged
            self._words[word] = pieces
        return self._words[word]

    def encode(self, text: str) -> list[int]:
        """The byte-pair ids of ``text`` (no markers)."""
        ids = []
        for word in WORDS.findall(clean(text)):
            symbols = "".join(self.symbols[b] for b in word.encode("utf-8"))
            ids += [self.ids[piece] for piece in self._pieces(symbols)]
        return ids

    def __call__(self, text: str) -> np.ndarray:
        ids = [self.ids[START], *self.encode(text), self.ids[END]]
        if len(ids) > self.context_length:
            ids = [*ids[:self.context_length - 1], self.ids[END]]
        tokens = np.zeros((1, self.context_length), dtype=np.int32)
        tokens[0, :len(ids)] = ids
        return tokens
