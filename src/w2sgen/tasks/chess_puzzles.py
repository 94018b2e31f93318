"""Chess puzzles (Burns et al.'s second setting) as binary classification over candidate moves.

The paper asks a model for the first move of a puzzle's solution and scores exact match. The
zoo's models cannot do that here: the encoders (minilm-*, mpnet-base) generate no text at all,
and the small causal LMs do not produce legal chess moves from a position (a generated answer
that does not parse as a legal move would be scored wrong almost every time, so weak labels
would carry no signal). So a puzzle becomes a multiple-choice question binarised as Burns et
al. binarise NLP tasks: the position (and, where known, the game so far) with one candidate
move -> is it the solution? Each puzzle gives two examples, the solution (label 1) and one
wrong legal move (label 0), in the puzzle's group, so its two candidates never straddle a
split and the classes are balanced by construction. Weak labels are then the weak model's
belief that a candidate is the solution, and the strong student learns those, exactly as in
the NLP setting.

Text shown (`text`): "Position (FEN): <fen>. Last move: <SAN>." - the position after the
opponent's move, the side to move being the solver - and, for generated puzzles with
`show=pgn|both`, the game so far as PGN movetext. `text_pair`: "Move: <SAN> (<UCI>)".

`score_answer` is the exact-match scorer for a generated answer: the answer is parsed as a
move (SAN or UCI) in the puzzle position; an answer that does not parse or is illegal there is
counted wrong, never skipped.

Sources: `chess_lichess` reads the Lichess puzzle database (CSV or its Hugging Face copy,
`Lichess/chess-puzzles`); `chess_generated` (tasks/chess_engine.py) builds puzzles offline
with Stockfish.
"""
from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Optional

from ..errors import W2SError
from . import Example, text_id

INSTALL = "pip install 'w2sgen[chess]' (or pip install chess)"


def chess_module() -> Any:
    """python-chess, or one line saying how to install it."""
    try:
        import chess
        import chess.engine  # noqa: F401  (loads the engine protocol onto the package)
        import chess.pgn  # noqa: F401  (loads the PGN reader onto the package)
    except ImportError:
        raise W2SError(f"the chess tasks need python-chess; run `{INSTALL}`") from None
    return chess


@dataclass(frozen=True)
class Puzzle:
    """A position to solve, its solution's first move and what led there (all UCI)."""

    id: str
    fen: str  # the puzzle position: the solver is to move
    solution: str  # UCI
    last_move: Optional[str] = None  # the opponent's move that led here (UCI), when known
    before: Optional[str] = None  # FEN before `last_move`
    pgn: Optional[str] = None  # the game so far, PGN movetext, when known
    wrong: Optional[str] = None  # a fixed wrong candidate (UCI); else one is drawn
    themes: tuple[str, ...] = ()


def board_of(fen: str, where: str) -> Any:
    chess = chess_module()
    try:
        board = chess.Board(fen)
    except ValueError as e:
        raise W2SError(f"{where}: FEN {fen!r} does not parse ({e}); fix or drop that row") from None
    status = board.status()
    if status != chess.STATUS_VALID:
        raise W2SError(f"{where}: FEN {fen!r} is not a legal position ({status!r}); fix or drop "
                       "that row")
    return board


def move_in(board: Any, move: str, where: str) -> Any:
    """`move` (UCI) as a legal move of `board`, or one line naming the row."""
    chess = chess_module()
    try:
        return board.parse_uci(move)
    except chess.InvalidMoveError:
        raise W2SError(f"{where}: move {move!r} is not UCI (e.g. e2e4, e7e8q); fix that row") from None
    except chess.IllegalMoveError:
        raise W2SError(f"{where}: move {move!r} is illegal in {board.fen()!r}; fix or drop that "
                       "row") from None


def board_from_pgn(pgn: str, where: str) -> Any:
    """The position at the end of PGN movetext, or one line when it does not parse."""
    import io

    chess = chess_module()
    game = chess.pgn.read_game(io.StringIO(pgn))
    if game is None or game.errors:
        why = str(game.errors[0]) if game is not None and game.errors else "no game in it"
        raise W2SError(f"{where}: PGN does not parse ({why}); fix or drop that row")
    return game.end().board()


def score_answer(fen: str, answer: str, solution: str) -> bool:
    """Exact match of a generated answer with the solution's first move. The answer is parsed as
    SAN or UCI in the position; one that does not parse, or is illegal there, is wrong."""
    chess = chess_module()
    board = chess.Board(fen)
    text = answer.strip().split()[0] if answer.strip() else ""
    for parse in (board.parse_san, board.parse_uci):
        try:
            return bool(parse(text) == chess.Move.from_uci(solution))
        except ValueError:
            continue
    return False


def _mates(board: Any, move: Any) -> bool:
    board.push(move)
    try:
        return bool(board.is_checkmate())
    finally:
        board.pop()


def wrong_move(board: Any, solution: Any, rng: random.Random) -> Optional[Any]:
    """A legal move that is not the solution, drawn with `rng` (in UCI order, so a seed gives the
    same move everywhere). When the solution mates, other mating moves are excluded too: Lichess
    accepts any mate in one, so they are not wrong."""
    mate = _mates(board, solution)
    others = sorted((m for m in board.legal_moves if m != solution and not (mate and _mates(board, m))),
                    key=lambda m: m.uci())
    return rng.choice(others) if others else None


def describe_move(board: Any, move: Any) -> str:
    return f"Move: {board.san(move)} ({move.uci()})"


def puzzle_text(board: Any, p: Puzzle, show: str) -> str:
    parts = []
    if show in ("pgn", "both") and p.pgn:
        parts.append(f"Game so far: {p.pgn}")
    if show in ("fen", "both") or not p.pgn:
        parts.append(f"Position (FEN): {p.fen}.")
    if p.last_move and p.before:
        prev = board_of(p.before, p.id)
        parts.append(f"Last move: {prev.san(prev.parse_uci(p.last_move))}.")
    parts.append(f"{'White' if board.turn else 'Black'} to move.")
    return " ".join(parts)


def puzzle_examples(prefix: str, puzzles: Sequence[Puzzle], seed: int, show: str = "fen") -> list[Example]:
    """Two examples per puzzle (solution: 1, a wrong legal move: 0), the puzzle as their group.
    The wrong move is `Puzzle.wrong` or drawn with a generator seeded by (seed, puzzle id), so a
    puzzle's candidates do not depend on which other puzzles are loaded. A puzzle whose solution
    is the only legal move (or only mating move) gives no examples."""
    out: list[Example] = []
    seen: set[str] = set()
    for p in puzzles:
        board = board_of(p.fen, p.id)
        solution = move_in(board, p.solution, p.id)
        wrong = (move_in(board, p.wrong, p.id) if p.wrong
                 else wrong_move(board, solution, random.Random(f"{seed}:{p.id}")))
        if wrong is None or wrong == solution:
            continue
        group = text_id(prefix, p.id)
        if group in seen:
            continue
        seen.add(group)
        text = puzzle_text(board, p, show)
        out += [Example(f"{group}/{m.uci()}", text, int(m == solution), group, describe_move(board, m))
                for m in (solution, wrong)]
    return out


# ------------------------------------------------------------ the Lichess puzzle database

LICHESS_FIELDS = ("PuzzleId", "FEN", "Moves", "Rating", "Themes")


def _tags(value: Any) -> tuple[str, ...]:
    """Themes / OpeningTags: a space-separated string (the CSV) or a list (the 2026 hub copy)."""
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(value.split())
    return tuple(str(v).strip() for v in value if str(v).strip())


def lichess_puzzles(rows: Any, *, min_rating: Optional[int] = None, max_rating: Optional[int] = None,
                    themes: Optional[list[str]] = None, exclude_themes: Optional[list[str]] = None,
                    max_puzzles: Optional[int] = None) -> list[Puzzle]:
    """Rows of the Lichess puzzle database as puzzles. FEN is the position before the
    opponent's move, Moves the UCI line whose first move is the opponent's: the puzzle
    position is FEN after Moves[0], its solution starts with Moves[1]. Every move of the line
    is checked to be legal in turn. Filters: Rating in [min_rating, max_rating], at least one of
    `themes`, none of `exclude_themes`; then the first `max_puzzles` kept."""
    want, avoid = set(themes or ()), set(exclude_themes or ())
    out: list[Puzzle] = []
    for n, r in enumerate(rows, 1):
        pid = str(r["PuzzleId"] or "").strip()
        where = f"Lichess puzzle row {n}" + (f" ({pid})" if pid else "")
        if not pid:
            raise W2SError(f"{where} has no PuzzleId; fix or drop that row")
        try:
            rating = int(r["Rating"])
        except (TypeError, ValueError):
            raise W2SError(f"{where}: Rating {r['Rating']!r} is not a number") from None
        tags = _tags(r["Themes"])
        if ((min_rating is not None and rating < min_rating) or (max_rating is not None and rating > max_rating)
                or (want and not want & set(tags)) or avoid & set(tags)):
            continue
        moves = str(r["Moves"] or "").split()
        if len(moves) < 2:
            raise W2SError(f"{where}: Moves {r['Moves']!r} needs the opponent's move and at least "
                           "one solution move (UCI, space-separated)")
        board = board_of(str(r["FEN"] or ""), where)
        before = board.fen()
        line = [move_in(board, m, where) for m in moves[:1]]
        board.push(line[0])
        fen = board.fen()
        for m in moves[1:]:  # the rest of the line must be legal too
            board.push(move_in(board, m, where))
        out.append(Puzzle(f"lichess:{pid}", fen, moves[1], moves[0], before, themes=tags))
        if max_puzzles is not None and len(out) >= max_puzzles:
            break
    return out


def _lichess(rows: Any, rng: random.Random, *, min_rating: Optional[int], max_rating: Optional[int],
             themes: Optional[list[str]], exclude_themes: Optional[list[str]],
             max_puzzles: Optional[int]) -> list[Example]:
    puzzles = lichess_puzzles(rows, min_rating=min_rating, max_rating=max_rating, themes=themes,
                              exclude_themes=exclude_themes, max_puzzles=max_puzzles)
    return puzzle_examples("lichess", puzzles, rng.randrange(2**32))


def _register() -> None:
    from .hf import Hub, _task

    _task("chess_lichess", Hub("Lichess/chess-puzzles"), LICHESS_FIELDS, _lichess,
          "Lichess puzzles (CC0): position + candidate move -> is it the solution's first move? "
          "(one right, one wrong legal move per puzzle; rating/theme filters)",
          options=[("min_rating", Optional[int], None), ("max_rating", Optional[int], None),
                   ("themes", Optional[list[str]], None), ("exclude_themes", Optional[list[str]], None),
                   ("max_puzzles", Optional[int], None)])


_register()
