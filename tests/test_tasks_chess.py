"""Chess puzzles: the Lichess database in both of its layouts (fixture files in that layout), the
candidate-move binarisation, exact-match scoring, and the Stockfish generator (determinism,
cache, missing and hanging engines)."""
from __future__ import annotations

import csv
import json
import os
import random
import sys
from collections import Counter

import pytest

chess = pytest.importorskip("chess")

from hf_fixtures import offline, write_jsonl  # noqa: E402,F401  (offline: autouse fixture)
from test_cli import assert_one_line_error, w2s  # noqa: E402

from w2sgen.errors import W2SError  # noqa: E402
from w2sgen.tasks import TASKS, check_examples, chess_engine  # noqa: E402
from w2sgen.tasks.chess_puzzles import score_answer, wrong_move  # noqa: E402

# Scholar's mate: after 1.e4 e5 2.Bc4 Nc6 3.Qh5 black (the opponent) plays 3...Nf6??, and
# 4.Qxf7# is the solution. FEN is the position before the opponent's move, as Lichess gives it.
SCHOLAR = "r1bqkbnr/pppp1ppp/2n5/4p2Q/2B1P3/8/PPPP1PPP/RNB1K1NR b KQkq - 3 3"


def game_puzzles(n, seed=0):
    """n puzzles in Lichess's shape from random games: FEN, then the opponent's move and a
    two-move solution (all legal), rating 1000 + 100 i, themes alternating."""
    rng = random.Random(seed)
    rows = [{"PuzzleId": "sch01", "FEN": SCHOLAR, "Moves": "g8f6 h5f7", "Rating": 600,
             "Themes": ["mate", "mateIn1", "opening", "short"]}]
    while len(rows) < n:
        board = chess.Board()
        for _ in range(rng.randint(6, 20)):
            board.push(rng.choice(sorted(board.legal_moves, key=lambda m: m.uci())))
        fen, line, choices = board.fen(), [], []
        for _ in range(3):
            if board.is_game_over():
                break
            choices.append(board.legal_moves.count())
            move = rng.choice(sorted(board.legal_moves, key=lambda m: m.uci()))
            line.append(move.uci())
            board.push(move)
        if len(line) == 3 and choices[1] > 2:
            i = len(rows)
            rows.append({"PuzzleId": f"p{i:04d}", "FEN": fen, "Moves": " ".join(line),
                         "Rating": 1000 + 100 * i,
                         "Themes": ["fork", "middlegame"] if i % 2 else ["pin", "endgame"]})
    return rows


def write_csv_2023(path, rows):
    """The older published CSV: GameUrl, Themes and OpeningTags space-separated strings."""
    cols = ["PuzzleId", "FEN", "Moves", "Rating", "RatingDeviation", "Popularity", "NbPlays",
            "Themes", "GameUrl", "OpeningTags"]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, cols)
        w.writeheader()
        for r in rows:
            w.writerow({**r, "Themes": " ".join(r["Themes"]), "RatingDeviation": 75, "Popularity": 90,
                        "NbPlays": 100, "GameUrl": f"https://lichess.org/{r['PuzzleId']}#20",
                        "OpeningTags": "Italian_Game"})
    return str(path)


def write_hub_2026(path, rows):
    """The 2026 hub layout: GameId, list-valued Themes and OpeningTags."""
    return write_jsonl(path, [{**r, "RatingDeviation": 75, "Popularity": 90, "NbPlays": 100,
                               "GameId": f"g{r['PuzzleId']}", "OpeningTags": ["Italian_Game"]}
                              for r in rows])


def load(path, **options):
    examples = TASKS.get("chess_lichess").load(source=path, **options)
    check_examples(examples, "chess_lichess")
    return examples


def test_lichess_both_layouts_give_the_same_puzzles_and_the_solution_is_the_second_move(tmp_path):
    rows = game_puzzles(12)
    old = load(write_csv_2023(tmp_path / "puzzles.csv", rows))
    new = load(write_hub_2026(tmp_path / "puzzles.jsonl", rows))
    assert old == new
    assert len(old) == 24 and Counter(e.label for e in old) == {0: 12, 1: 12}
    first = [e for e in old if e.group == old[0].group]
    right = next(e for e in first if e.label == 1)
    # the position shown is after the opponent's Nf6, white to move; the solution is Qxf7#
    assert right.text == ("Position (FEN): r1bqkb1r/pppp1ppp/2n2n2/4p2Q/2B1P3/8/PPPP1PPP/RNB1K1NR w KQkq - 4 4. "
                          "Last move: Nf6. White to move.")
    assert right.text_pair == "Move: Qxf7# (h5f7)"
    wrong = next(e for e in first if e.label == 0)
    assert wrong.text == right.text and wrong.text_pair != right.text_pair
    for r in rows:  # every puzzle's right candidate is Moves[1]
        ex = [e for e in old if e.id.endswith(f"/{r['Moves'].split()[1]}") and e.label == 1]
        assert len(ex) == 1


def test_lichess_filters_by_rating_and_theme_and_caps(tmp_path):
    path = write_csv_2023(tmp_path / "puzzles.csv", game_puzzles(12))
    groups = lambda ex: len({e.group for e in ex})  # noqa: E731
    assert groups(load(path, min_rating=1500)) == 7  # ratings 1500..2100
    assert groups(load(path, min_rating=1200, max_rating=1500)) == 4
    assert groups(load(path, themes=["fork"])) == 6  # i = 1, 3, ..., 11
    assert groups(load(path, themes=["mateIn1", "fork"])) == 7
    assert groups(load(path, exclude_themes=["endgame", "mate"])) == 6
    assert groups(load(path, max_puzzles=5)) == 5


def test_wrong_candidates_are_seeded_per_puzzle_and_never_another_mate():
    board = chess.Board("7k/6pp/8/8/8/8/8/RR4K1 w - - 0 1")  # Ra8# and Rb8# both mate
    mate = board.parse_san("Ra8#")
    drawn = {wrong_move(board, mate, random.Random(s)).uci() for s in range(200)}
    assert "b1b8" not in drawn and "a1a8" not in drawn and len(drawn) > 5
    assert wrong_move(board, mate, random.Random(3)) == wrong_move(board, mate, random.Random(3))


def test_lichess_candidates_do_not_depend_on_the_other_rows(tmp_path):
    rows = game_puzzles(10)
    every = load(write_csv_2023(tmp_path / "all.csv", rows), seed=1)
    some = load(write_csv_2023(tmp_path / "some.csv", rows[5:]), seed=1)
    assert set(some) <= set(every)
    assert load(write_csv_2023(tmp_path / "all.csv", rows), seed=2) != every


@pytest.mark.parametrize("change,needle", [
    ({"FEN": "rnbqkbnr/pppppppp/8/8 w KQkq - 0 1"}, "does not parse"),
    ({"FEN": "8/8/8/8/8/8/8/8 w - - 0 1"}, "is not a legal position"),
    ({"Moves": "g8f6 h5h8"}, "move 'h5h8' is illegal"),
    ({"Moves": "g8f6 queen"}, "is not UCI"),
    ({"Moves": "g8f6"}, "at least one solution move"),
    ({"Rating": "hard"}, "is not a number"),
])
def test_bad_lichess_rows_are_one_line_naming_the_row(tmp_path, change, needle):
    rows = game_puzzles(4)
    rows[0] = {**rows[0], **change}
    with pytest.raises(W2SError, match=needle) as err:
        load(write_csv_2023(tmp_path / "bad.csv", rows))
    assert "row 1 (sch01)" in str(err.value) and "\n" not in str(err.value)


def test_a_bad_fen_stops_w2s_run_with_one_line_and_exit_2(tmp_path, tiny_bert_dir):
    rows = game_puzzles(4)
    rows[2] = {**rows[2], "Moves": rows[2]["Moves"].split()[0] + " a1a1"}
    path = write_csv_2023(tmp_path / "bad.csv", rows)
    proc = w2s("run", "task=chess_lichess", f"task.source={path}", f"weak_model={tiny_bert_dir}",
               f"strong_model={tiny_bert_dir}", "features.max_length=64", f"--store={tmp_path / 'runs'}",
               env={"HF_DATASETS_DISABLE_PROGRESS_BARS": "1"})  # datasets' own bars aside
    assert proc.returncode == 2
    assert_one_line_error(proc, "Lichess puzzle row 3", "a1a1")
    assert not any((tmp_path / "runs").rglob("*.json*"))  # nothing recorded


def test_score_answer_is_exact_match_and_illegal_or_garbage_is_wrong():
    fen = "r1bqkb1r/pppp1ppp/2n2n2/4p2Q/2B1P3/8/PPPP1PPP/RNB1K1NR w KQkq - 4 4"
    assert score_answer(fen, "Qxf7#", "h5f7") and score_answer(fen, "h5f7", "h5f7")
    assert score_answer(fen, " Qxf7# is mate", "h5f7")
    assert not score_answer(fen, "Bxf7+", "h5f7")  # legal, not the solution
    assert not score_answer(fen, "Qxh8", "h5f7")  # illegal: counted wrong, not skipped
    assert not score_answer(fen, "e2e5", "h5f7") and not score_answer(fen, "", "h5f7")
    assert not score_answer(fen, "checkmate!", "h5f7")


# ------------------------------------------------------------------ the Stockfish generator

HAVE_ENGINE = chess_engine.available()
needs_engine = pytest.mark.skipif(not HAVE_ENGINE, reason="no Stockfish: apt-get install stockfish")
SMALL = {"n_puzzles": 4, "nodes": 400, "max_plies": 40}


def generated(home, monkeypatch, **options):
    monkeypatch.setenv("W2S_HOME", str(home))
    examples = TASKS.get("chess_generated").load(**{**SMALL, **options})
    check_examples(examples, "chess_generated")
    return examples


@needs_engine
def test_generated_puzzles_are_deterministic_and_cached(tmp_path, monkeypatch):
    a = generated(tmp_path / "a", monkeypatch)
    b = generated(tmp_path / "b", monkeypatch)
    assert a == b and len(a) == 8 and Counter(e.label for e in a) == {0: 4, 1: 4}
    files = list((tmp_path / "a" / "chess-generated").glob("*.jsonl"))
    assert len(files) == 1 and files[0].read_bytes() == next((tmp_path / "b").rglob("*.jsonl")).read_bytes()
    records = [json.loads(line) for line in files[0].read_text().splitlines()]
    for r in records:
        assert r["margin_cp"] >= 200 and r["best"] != r["second"] and r["engine"].startswith("Stockfish")
        board = chess.Board(r["fen"])  # the engine, asked again, prefers the same move
        eng = chess_engine.Engine("stockfish", 1, 16, 30)
        try:
            assert eng.top2(board, 400)[0][0].uci() == r["best"]
        finally:
            eng.close()
    # the second load reads the cache: no generation
    monkeypatch.setattr(chess_engine, "generate", lambda *a, **k: pytest.fail("regenerated"))
    assert generated(tmp_path / "a", monkeypatch) == a


@needs_engine
def test_generated_settings_change_the_puzzles_and_options_are_shown(tmp_path, monkeypatch):
    base = generated(tmp_path, monkeypatch)
    assert generated(tmp_path, monkeypatch, seed=1) != base
    assert len(list((tmp_path / "chess-generated").glob("*.jsonl"))) == 2
    pgn = generated(tmp_path, monkeypatch, show="pgn")
    assert [e.id for e in pgn] == [e.id for e in base] and pgn[0].text.startswith("Game so far: 1. ")
    rnd = generated(tmp_path, monkeypatch, wrong="random")
    assert [e.id for e in rnd if e.label] == [e.id for e in base if e.label]


@needs_engine
def test_a_corrupt_cache_is_one_line(tmp_path, monkeypatch):
    generated(tmp_path, monkeypatch)
    path = next((tmp_path / "chess-generated").glob("*.jsonl"))
    r = json.loads(path.read_text().splitlines()[0])
    path.write_text(json.dumps({**r, "pgn": "1. e4 e5 2. Ke3 Nc6"}) + "\n")
    with pytest.raises(W2SError, match="PGN does not parse .*delete the file|PGN does not parse"):
        generated(tmp_path, monkeypatch)


def test_a_missing_engine_names_the_install_command(tmp_path, monkeypatch):
    with pytest.raises(W2SError, match="apt-get install -y stockfish") as err:
        generated(tmp_path, monkeypatch, engine=str(tmp_path / "no-such-engine"))
    assert "\n" not in str(err.value)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(chess_engine.shutil, "which", lambda *a, **k: None)
    with pytest.raises(W2SError, match="chess engine 'stockfish' not found"):
        generated(tmp_path, monkeypatch)


HANGS = """import sys
for line in sys.stdin:
    cmd = line.split()[0] if line.split() else ""
    if cmd == "uci":
        print("id name Hangfish", flush=True)
        print("option name Threads type spin default 1 min 1 max 512", flush=True)
        print("option name Hash type spin default 16 min 1 max 1024", flush=True)
        print("option name MultiPV type spin default 1 min 1 max 500", flush=True)
        print("uciok", flush=True)
    elif cmd == "isready":
        print("readyok", flush=True)
"""  # answers the handshake, then never answers `go`


def test_an_engine_that_hangs_times_out_with_one_line(tmp_path, monkeypatch):
    script = tmp_path / "hangfish"
    script.write_text(f"#!{sys.executable}\n{HANGS}")
    os.chmod(script, 0o755)
    with pytest.raises(W2SError, match=r"did not answer within 1 s \(analyse a position\)") as err:
        generated(tmp_path, monkeypatch, engine=str(script), timeout_s=1)
    assert "\n" not in str(err.value)
    assert not list((tmp_path / "chess-generated").glob("*.jsonl"))  # nothing cached


# --------------------------------------------------------------- the settings' suites

SPLITS = "splits.weak_train=400 splits.transfer=400 splits.test=400 eval.zero_shot=smollm2-135m"


@pytest.mark.parametrize("name, cells, runs", [
    ("chess", 7, [f"task=chess_generated {SPLITS}"]),  # docs/settings.md's first chess run
    ("reward", 4, [f"task=rt_preference_standin {SPLITS}", f"task=rt_preference_standin {SPLITS} loss=logconf",
                   f"task=rt_preference_standin {SPLITS} method.name=generative_pretrain method.texts=preferred"]),
])
def test_settings_suites_expand_and_hold_the_documented_runs(tmp_path, name, cells, runs):
    from pathlib import Path

    from w2sgen import sweep
    from w2sgen.validate import load_config

    root = Path(__file__).resolve().parents[1]
    suite = sweep.load_suite(root / "suites" / f"{name}.yaml", str(tmp_path))
    assert len(suite.cells) == cells and suite.merged == 0
    hashes = {c.hash for c in suite.cells}
    for keys in runs:
        assert load_config(root / "configs" / "default.yaml", keys.split()).hash() in hashes
    methods = Counter(c.cfg.method.name for c in suite.cells)
    assert methods == ({"naive": 6, "bootstrap": 1} if name == "chess" else {"naive": 2, "generative_pretrain": 2})


def test_an_engine_mute_from_the_start_times_out_with_one_line(tmp_path, monkeypatch, tiny_bert_dir):
    script = tmp_path / "mutefish"
    script.write_text(f"#!{sys.executable}\nimport sys\nfor line in sys.stdin:\n    pass\n")
    os.chmod(script, 0o755)
    with pytest.raises(W2SError, match=r"did not answer within 1 s \(start\)"):
        generated(tmp_path, monkeypatch, engine=str(script), timeout_s=1)
    # through the CLI: exit 2, one line (no asyncio warning when the killed engine exits)
    proc = w2s("run", "task=chess_generated", f"task.engine={script}", "task.timeout_s=1",
               f"weak_model={tiny_bert_dir}", f"strong_model={tiny_bert_dir}", "features.max_length=64",
               f"--store={tmp_path / 'runs'}", env={"W2S_HOME": str(tmp_path / "home")})
    assert proc.returncode == 2
    assert_one_line_error(proc, "did not answer within 1 s (start)")
