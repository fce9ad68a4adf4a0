"""Unit tests of the trans-de-en sentence extraction, the split and the BPE notation."""
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts" / "data"))
import de_en_offline as deo  # noqa: E402
import mt_text  # noqa: E402

SAMPLE = Path(__file__).with_name("sample_trans_de_en.txt")


# ---------------------------------------------------------------- parsing
def test_sub_entries_are_aligned_by_position():
    line = ("Wetter {n} | Das Wetter ist heute schön. | Morgen wird es regnen. :: "
            "weather | The weather is nice today. | It will rain tomorrow.")
    assert deo.parse_line(line) == [
        ("Wetter {n}", "weather"),
        ("Das Wetter ist heute schön.", "The weather is nice today."),
        ("Morgen wird es regnen.", "It will rain tomorrow."),
    ]


@pytest.mark.parametrize("line", [
    "# Version :: devel 2023-01-30",                      # comment
    "",                                                   # blank
    "ohne Trenner hier.",                                 # no ' :: '
    "a :: b :: c",                                        # two separators
    "Brot {n} | Das Brot ist frisch. :: bread | The bread is fresh. | fresh bread",  # 2 vs 3
])
def test_unusable_lines_give_nothing(line):
    assert deo.parse_line(line) == []


def test_typographic_quotes_and_spaces_are_normalised():
    [(de, en)] = deo.parse_line("„Ja“ ,  sagte  er. :: ‘Yes’, he said. It’s\u00a0late.")
    assert de == '"Ja" , sagte er.'
    assert en == "'Yes', he said. It's late."


# ---------------------------------------------------------------- filter rules, one by one
GOOD_DE, GOOD_EN = "Das Haus ist sehr alt.", "The house is very old."


def test_a_real_sentence_pair_passes():
    assert deo.reject_reason(GOOD_DE, GOOD_EN) is None
    assert deo.reject_reason("Darf ich Ihnen etwas zeigen?", "May I show you something?") is None
    assert deo.reject_reason("Das war wirklich toll!", "That was really great!") is None


@pytest.mark.parametrize("de, en, why", [
    ("", GOOD_EN, "empty"),
    ("das alte Haus am Ende", GOOD_EN, "no-final-punctuation"),
    (GOOD_DE, "the old house at the end", "no-final-punctuation"),
    ("Das ist gut; das ist prima.", GOOD_EN, "synonyms"),
    (GOOD_DE, "That is good; that is great.", "synonyms"),
    ("Er/Sie kommt morgen früh zurück.", GOOD_EN, "slash"),
    ("Es ist mir ein Gräuel {n}.", GOOD_EN, "grammar-label"),
    ("Es [bot.] sich ihnen ein Ausblick.", GOOD_EN, "usage-label"),
    ("Ich gebe jdm. das Buch zurück.", GOOD_EN, "placeholder"),
    (GOOD_DE, "I give sb. the book back.", "placeholder"),
    ("Ich habe etw. zu Hause vergessen.", GOOD_EN, "placeholder"),
    (GOOD_DE, "I forgot sth. at home today.", "placeholder"),
    ("Komm sofort her!", GOOD_EN, "short"),
    (GOOD_DE, "Come here now!", "short"),
])
def test_each_rule_rejects(de, en, why):
    assert deo.reject_reason(de, en) == why


def test_placeholder_rule_needs_the_abbreviation():
    # "jdm" inside a word or without its dot is ordinary text
    assert deo.reject_reason("Das Etwas kam näher und näher.", "The thing came closer and closer.") is None


# ---------------------------------------------------------------- extraction and dedupe
def test_extract_sample_dictionary():
    with open(SAMPLE, encoding="utf-8") as f:
        pairs, stats = deo.extract_pairs(f)
    assert ("Dann bin ich ihm auf die Schliche gekommen.", "Then I got wise to him.") in pairs
    assert ("Der Zug kommt um acht Uhr an.", "The train arrives at eight o'clock.") in pairs
    # the waiting sentence is there three times (twice exactly, once lowercased): kept once
    assert sum(en == "I am still waiting for your answer." for _, en in pairs) == 1
    assert stats["duplicates"] == 2
    assert len(pairs) == len(set(pairs)) == stats["pairs"] == 33
    for why in ("synonyms", "slash", "placeholder", "grammar-label", "short"):
        assert stats[f"rejected:{why}"] >= 1, why
    assert all(deo.reject_reason(de, en) is None for de, en in pairs)


def test_dedupe_keeps_the_first_and_ignores_case():
    lines = ["A | Das ist ein Test. :: a | This is a test.",
             "B | das ist ein Test. :: b | this is a test.",
             "C | Das ist ein Test. :: c | This is a trial."]
    pairs, stats = deo.extract_pairs(lines)
    assert pairs == [("Das ist ein Test.", "This is a test."), ("Das ist ein Test.", "This is a trial.")]
    assert stats["duplicates"] == 1


# ---------------------------------------------------------------- split
def _pairs(n):
    return [(f"Satz Nummer {i} ist hier.", f"Sentence number {i} is here.") for i in range(n)]


def test_split_is_deterministic_exact_and_disjoint():
    pairs = _pairs(200)
    a = deo.split_pairs(pairs, 20, 30, seed=1)
    b = deo.split_pairs(list(pairs), 20, 30, seed=1)
    assert a == b
    assert (len(a["train"]), len(a["valid"]), len(a["test"])) == (150, 20, 30)
    assert sorted(a["train"] + a["valid"] + a["test"]) == sorted(pairs)
    c = deo.split_pairs(pairs, 20, 30, seed=2)
    assert c["test"] != a["test"]


def test_split_keeps_shared_sentences_together():
    pairs = _pairs(100)
    # one German sentence with two translations, one English sentence with two sources
    pairs += [("Ich bin müde heute.", "I am tired today."), ("Ich bin müde heute.", "I'm tired today."),
              ("Heute bin ich müde.", "I'm tired today.")]
    for seed in range(20):
        split = deo.split_pairs(pairs, 10, 10, seed)
        where = {s for s, ps in split.items() for p in ps if "müde" in p[0]}
        assert len(where) == 1
        held_out = {x.lower() for s in ("valid", "test") for p in split[s] for x in p}
        assert not held_out & {x.lower() for p in split["train"] for x in p}


def test_split_refuses_too_few_pairs():
    with pytest.raises(ValueError, match="too few"):
        deo.split_pairs(_pairs(10), 5, 5, seed=1)


# ---------------------------------------------------------------- text tools
def test_pieces_to_bpe_round_trips():
    pieces = ["▁un", "believ", "able", "▁story", "▁", "42", "x", "▁."]
    bpe = mt_text.pieces_to_bpe(pieces)
    assert bpe == "un@@ believ@@ able story 42@@ x ."
    assert mt_text.remove_bpe(bpe) == "unbelievable story 42x ."


def test_clean_pairs_as_clean_corpus_n():
    src = ["a b c", "", "a " * 200, "a b c d e f g", "x  y"]
    tgt = ["a b", "a", "a", "a b", "y   x"]
    assert mt_text.clean_pairs(src, tgt) == (["a b c", "x y"], ["a b", "y x"])


def test_tokenise_like_moses():
    # apostrophes: split off as a clitic in English, on both sides in German (tokenizer.perl)
    assert mt_text.tokenise_line("It's me, he said.", "en", lower=True) == "it 's me , he said ."
    assert mt_text.tokenise_line("Ich bin's, sagte er.", "de") == "Ich bin ' s , sagte er ."
    assert mt_text.tokenise_line('He said "no".', "en", escape=True) == "He said &quot; no &quot; ."
