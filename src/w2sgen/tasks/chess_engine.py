"""`chess_generated`: chess puzzles built offline with Stockfish, so the chess setting has a
source that cannot vanish from a hub.

Games: from the initial position, `opening_plies` uniformly random legal moves (between half
and all of it, drawn with the seed), then engine self-play in which each move is the engine's
best, except that with probability `random_move_rate` a random legal move is played instead (a
blunder now and then, as in the human games Lichess mines puzzles from; without it, engine
play rarely leaves a single winning move). Every position reached is analysed with MultiPV 2;
it becomes a puzzle when the best move's score beats the second best's by at least `margin_cp`
centipawns (the Lichess "only move" criterion), scores capped at +-`cap_cp` first, so that two
moves that both win outright do not count as a margin. A game ends at game over, after
`max_plies` engine plies, or once the second-best move also wins outright (the game is
decided). At most `per_game` puzzles are kept from a game (drawn with the seed), and a position
is used once.

Ground truth is the engine's best move; the wrong candidate is its second best (`wrong=second`,
the default: a plausible move that loses the margin) or a random legal move (`wrong=random`).
The text shows the game so far as PGN (`show=pgn`), the position as FEN (`fen`), or both.

Determinism: one engine thread, a fixed hash size, a fixed node budget per search, and a new
game (`ucinewgame`, which clears the hash) before every search, so each position's analysis
depends on that position alone; with the same seed, options and engine build the puzzles are
the same. The options are the task's, so they are in every run's identity; the engine's own
name and version (as it reports them) key the cache beside them, since another Stockfish
release can prefer other moves.

Cache: `<data home>/chess-generated/<key>.jsonl`, written to a temporary file and renamed, so
a killed generation leaves nothing half-written. Each line: {"id", "pgn", "fen", "best",
"second", "margin_cp"}; the file is read back (and every move re-checked) on later loads.

Errors: no python-chess, or no engine where `engine` points (a name on PATH or a path;
Debian/Ubuntu install it as /usr/games/stockfish) -> one line with the install command; an
engine that does not answer within `timeout_s` seconds -> one line.
"""
from __future__ import annotations

import json
import logging
import os
import random
import shutil
import signal
import tempfile
import threading
from pathlib import Path
from typing import Annotated, Any, Literal

from ..errors import W2SError
from ..options import Ge, PositiveInt, Range
from ..paths import home
from ..spec import stable_hash
from . import TASKS, Example, TaskSpec
from .chess_puzzles import Puzzle, board_from_pgn, chess_module, move_in, puzzle_examples

ENGINE_INSTALL = "apt-get install -y stockfish (Debian/Ubuntu; the binary is /usr/games/stockfish)"
MATE_CP = 100_000  # a mate's score before capping
VERSION = 1  # bumped when generation changes, so old caches are not reused


def engine_path(engine: str) -> str:
    """The engine binary: a path, or a name on PATH or in /usr/games (where Debian puts it)."""
    p = Path(engine).expanduser()
    if os.sep in engine or p.is_file():
        if p.is_file() and os.access(p, os.X_OK):
            return str(p)
        if p.is_file():
            raise W2SError(f"chess engine {engine!r} is not executable; point task.engine at a UCI "
                           f"engine binary (e.g. Stockfish: `{ENGINE_INSTALL}`)")
    else:
        found = shutil.which(engine) or shutil.which(engine, path="/usr/games:/usr/local/games")
        if found:
            return found
    raise W2SError(f"chess engine {engine!r} not found; install Stockfish with `{ENGINE_INSTALL}` "
                   "or point task.engine at a UCI engine binary")


class _EngineExitNoise(logging.Filter):
    """An engine that never finished its handshake exits after python-chess has closed its event
    loop, and asyncio logs a warning ("Loop ... that handles pid ... is closed") under the one-line
    error already printed; that warning says nothing a user can act on."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "that handles pid" not in record.getMessage()


logging.getLogger("asyncio").addFilter(_EngineExitNoise())


class Engine:
    """A UCI engine with fixed settings. Every exchange is bounded by `timeout_s`: a watchdog
    kills the engine process when it does not answer in time (python-chess's own timeouts wait
    for a hung engine to acknowledge the cancellation, which it never does)."""

    def __init__(self, engine: str, threads: int, hash_mb: int, timeout_s: float):
        chess = chess_module()
        self.chess, self.timeout_s, self.path = chess, float(timeout_s), engine_path(engine)
        self.engine: Any = None
        self.timed_out = False
        try:
            self.engine = chess.engine.SimpleEngine.popen_uci(self.path, timeout=self.timeout_s)
            self._bounded(lambda: self.engine.configure({"Threads": threads, "Hash": hash_mb}))
        except Exception as e:
            raise self._error(e, "start") from None
        self.name = str(self.engine.id.get("name", Path(self.path).name))

    def _bounded(self, call: Any) -> Any:
        def kill() -> None:
            self.timed_out = True
            try:
                os.kill(self.engine.transport.get_pid(), signal.SIGKILL)
            except (OSError, AttributeError):
                pass

        timer = threading.Timer(self.timeout_s, kill)
        timer.start()
        try:
            return call()
        finally:
            timer.cancel()

    def _error(self, e: Exception, what: str) -> W2SError:
        self.close()
        if self.timed_out or isinstance(e, TimeoutError) or type(e).__name__ == "TimeoutError":
            return W2SError(f"chess engine {self.path!r} did not answer within {self.timeout_s:g} s "
                            f"({what}); check that it is a working UCI engine, or raise task.timeout_s")
        return W2SError(f"chess engine {self.path!r} failed to {what} ({type(e).__name__}: "
                        f"{str(e).strip()[:120]}); reinstall it (`{ENGINE_INSTALL}`)")

    def top2(self, board: Any, nodes: int) -> list[tuple[Any, int]]:
        """(move, centipawns for the side to move) of the best two moves, a fresh search."""
        limit = self.chess.engine.Limit(nodes=nodes)
        try:
            infos = self._bounded(lambda: self.engine.analyse(board, limit, multipv=2, game=object()))
        except Exception as e:
            raise self._error(e, "analyse a position") from None
        out = []
        for info in infos:
            if info.get("pv") and "score" in info:
                out.append((info["pv"][0], int(info["score"].relative.score(mate_score=MATE_CP))))
        if not out:
            raise self._error(RuntimeError("no move in its answer"), "analyse a position")
        return out

    def close(self) -> None:
        engine, self.engine = self.engine, None
        if engine is not None:
            try:
                self._bounded_quit(engine)
            except Exception:
                pass

    def _bounded_quit(self, engine: Any) -> None:
        """Ask the engine to quit; kill it if it does not within the timeout."""
        self.engine = engine
        try:
            self._bounded(engine.quit)
        finally:
            self.engine = None
            engine.close()


def _random_move(board: Any, rng: random.Random) -> Any:
    return rng.choice(sorted(board.legal_moves, key=lambda m: m.uci()))


def _movetext(board: Any) -> str:
    chess = chess_module()
    game = chess.pgn.Game.from_board(board)
    exporter = chess.pgn.StringExporter(columns=None, headers=False, variations=False, comments=False)
    return game.accept(exporter).removesuffix("*").strip()  # no result token: the game goes on


def generate(eng: Engine, *, n_puzzles: int, seed: int, nodes: int, margin_cp: int, cap_cp: int,
             opening_plies: int, max_plies: int, per_game: int, random_move_rate: float) -> list[dict[str, Any]]:
    """Puzzles (cache records) from seeded games; see the module docstring."""
    chess = chess_module()
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    used: set[str] = set()
    games = 0
    while len(out) < n_puzzles:
        games += 1
        if games > 50 * n_puzzles + 100:
            raise W2SError(f"chess_generated: {games - 1} games gave only {len(out)} puzzles with a "
                           f"margin of {margin_cp} cp; lower task.margin_cp or raise task.max_plies")
        board = chess.Board()
        for _ in range(rng.randint((opening_plies + 1) // 2, opening_plies)):
            if board.is_game_over():
                break
            board.push(_random_move(board, rng))
        found = []
        for _ in range(max_plies):
            if board.is_game_over(claim_draw=True):
                break
            top = eng.top2(board, nodes)
            (best, s1), rest = top[0], top[1:]
            if rest:
                second, s2 = rest[0]
                c1, c2 = (max(-cap_cp, min(cap_cp, s)) for s in (s1, s2))
                key = board.epd()
                if c1 - c2 >= margin_cp and key not in used:
                    used.add(key)
                    found.append({"pgn": _movetext(board), "fen": board.fen(), "best": best.uci(),
                                  "second": second.uci(), "margin_cp": c1 - c2})
                if c2 >= cap_cp:  # decided: the second-best move wins outright too
                    break
            board.push(_random_move(board, rng) if rng.random() < random_move_rate else best)
        for rec in rng.sample(found, min(per_game, len(found))):
            if len(out) < n_puzzles:
                out.append({"id": f"gen:{seed}:{len(out)}", **rec})
    return out


def read_cache(path: Path) -> list[Puzzle]:
    """The cache's puzzles, each checked: the PGN parses and ends at the FEN, the moves are legal."""
    puzzles = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        where = f"chess puzzle file {str(path)!r} line {n}"
        try:
            r = json.loads(line)
            pid, pgn, fen, best, second = (str(r[k]) for k in ("id", "pgn", "fen", "best", "second"))
        except (json.JSONDecodeError, KeyError, TypeError):
            raise W2SError(f"{where} is not a puzzle record; delete the file to generate it again") from None
        board = board_from_pgn(pgn, where)
        if board.fen() != fen:
            raise W2SError(f"{where}: the PGN ends at {board.fen()!r}, not at the FEN {fen!r}; delete "
                           "the file to generate it again")
        for m in (best, second):
            move_in(board, m, where)
        puzzles.append(Puzzle(pid, fen, best, pgn=pgn, wrong=second))
    return puzzles


def load_chess_generated(*, n_puzzles: PositiveInt = 600, seed: int = 0,
                         nodes: Annotated[int, Ge(100)] = 5000, threads: PositiveInt = 1,
                         hash_mb: PositiveInt = 16, margin_cp: Annotated[int, Ge(1)] = 200,
                         cap_cp: Annotated[int, Ge(100)] = 1500, opening_plies: Annotated[int, Ge(0)] = 8,
                         max_plies: PositiveInt = 60, per_game: PositiveInt = 2,
                         random_move_rate: Annotated[float, Range(0, 1)] = 0.25,
                         wrong: Literal["second", "random"] = "second",
                         show: Literal["fen", "pgn", "both"] = "fen", engine: str = "stockfish",
                         timeout_s: Annotated[float, Range(0, lo_open=True)] = 60.0) -> list[Example]:
    """Stockfish puzzles from seeded self-play (module docstring); cached in the data home."""
    settings = {"n_puzzles": n_puzzles, "seed": seed, "nodes": nodes, "threads": threads,
                "hash_mb": hash_mb, "margin_cp": margin_cp, "cap_cp": cap_cp,
                "opening_plies": opening_plies, "max_plies": max_plies, "per_game": per_game,
                "random_move_rate": float(random_move_rate)}
    eng = Engine(engine, threads, hash_mb, timeout_s)
    try:
        folder = home() / "chess-generated"
        path = folder / f"{stable_hash([VERSION, eng.name, settings])}.jsonl"
        if not path.is_file():
            records = generate(eng, n_puzzles=n_puzzles, seed=seed, nodes=nodes, margin_cp=margin_cp,
                               cap_cp=cap_cp, opening_plies=opening_plies, max_plies=max_plies,
                               per_game=per_game, random_move_rate=float(random_move_rate))
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".jsonl")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.writelines(json.dumps({**r, "engine": eng.name}) + "\n" for r in records)
            os.replace(tmp, path)
    finally:
        eng.close()
    puzzles = read_cache(path)
    if wrong == "random":
        puzzles = [Puzzle(p.id, p.fen, p.solution, pgn=p.pgn) for p in puzzles]
    return puzzle_examples("chessgen", puzzles, seed, show)


TASKS.add("chess_generated", TaskSpec(
    load_chess_generated, "engine",
    "chess puzzles generated offline with Stockfish (seeded self-play, only-move positions): "
    "position + candidate move -> is it the engine's best move?", tags=("chess",),
    prompt=("Is each move the best move in the position? Answer yes or no.", ("no", "yes"))))


def available(engine: str = "stockfish") -> bool:
    """Whether python-chess and the engine are both here (for `w2s tasks`)."""
    try:
        chess_module()
        engine_path(engine)
    except W2SError:
        return False
    return True
