"""ONNX exports of translation models equal fairseq: the incremental decoder step's logits (1e-4) and
the hypotheses of fairseq's own greedy and beam search run on onnxruntime."""
import pytest
import torch
from fairseq.sequence_generator import SequenceGenerator

from tests.export.translation_helpers import batch, tiny_srp
from user_dir.export import ort_translation
from user_dir.export.translation_graph import export_translation

TOL = 1e-4


def _export(model, task, tmp_path):
    enc, dec = tmp_path / "encoder.onnx", tmp_path / "decoder.onnx"
    export_translation(model, str(enc), str(dec))
    return ort_translation.load(str(enc), str(dec), task.source_dictionary, task.target_dictionary, 64, 64)


@torch.no_grad()
def _step_diff(model, onnx_model, task, bsz=3, src_len=9):
    src, lengths, prev = batch(task, bsz=bsz, src_len=src_len, tgt_len=7)
    prev = prev[:, :7 - bsz + 1]  # the rows' common unpadded prefix: decoding prefixes hold no padding
    ref_enc, onnx_enc = model.encoder(src, lengths), onnx_model.encoder(src, lengths)
    ref_state, onnx_state, worst = {}, {}, 0.0
    for t in range(prev.size(1)):
        a = model.decoder(prev[:, :t + 1], ref_enc, incremental_state=ref_state)[0]
        b = onnx_model.decoder(prev[:, :t + 1], onnx_enc, incremental_state=onnx_state)[0]
        worst = max(worst, float((a - b).abs().max()))
    return worst, (src, lengths)


@torch.no_grad()
def _same_search(model, onnx_model, task, src, lengths):
    sample = {"net_input": {"src_tokens": src, "src_lengths": lengths}}
    for beam in (1, 4):  # greedy and beam search, as fairseq-generate runs them
        ref = SequenceGenerator([model], task.target_dictionary, beam_size=beam, max_len_b=12).generate([model], sample)
        out = SequenceGenerator([onnx_model], task.target_dictionary, beam_size=beam,
                                max_len_b=12).generate([onnx_model], sample)
        for r, o in zip(ref, out):
            assert [h["tokens"].tolist() for h in r] == [h["tokens"].tolist() for h in o]
            assert max(abs(float(a["score"]) - float(b["score"])) for a, b in zip(r, o)) < TOL


@pytest.mark.parametrize("kind", ["unpruned", "pruned", "gated"])
def test_srp_step_and_search(tmp_path, kind):
    """pruned: a whole FFN on each side, modules without q·k dims (self and cross) and one without
    v·o dims; gated: a checkpoint taken inside a pruning iteration, connectivity gates on."""
    model, task = tiny_srp(pruned=kind == "pruned", gated=kind == "gated")
    if kind == "pruned":
        assert model.encoder.layers[1].fc1.out_features == 0 and model.decoder.layers[1].encoder_attn.qk == 0
    onnx_model = _export(model, task, tmp_path)
    worst, (src, lengths) = _step_diff(model, onnx_model, task)
    assert worst < TOL
    _same_search(model, onnx_model, task, src, lengths)


def test_stock_transformer_through_its_srp_twin(tmp_path):
    from user_dir.export.stock_transformer import srp_twin
    from user_dir.srp.stock_transformer import stock_transformer_like

    srp, task = tiny_srp()
    stock = stock_transformer_like(srp, task, dropout=0.0)
    onnx_model = _export(srp_twin(stock, task), task, tmp_path)
    worst, (src, lengths) = _step_diff(stock, onnx_model, task, bsz=4, src_len=11)
    assert worst < TOL
    _same_search(stock, onnx_model, task, src, lengths)


def test_stock_transformer_variants_refused():
    from argparse import Namespace

    from fairseq.models.transformer import TransformerModel, base_architecture

    from tests.srp.helpers import FakeTask
    from user_dir.export.loading import ExportError
    from user_dir.export.stock_transformer import srp_twin

    task = FakeTask()
    args = Namespace(encoder_embed_dim=16, encoder_ffn_embed_dim=32, encoder_attention_heads=2, encoder_layers=1,
                     decoder_embed_dim=16, decoder_ffn_embed_dim=32, decoder_attention_heads=2, decoder_layers=1,
                     encoder_normalize_before=True, decoder_learned_pos=True, activation_fn="gelu",
                     max_source_positions=64, max_target_positions=64)
    base_architecture(args)
    stock = TransformerModel.build_model(args, task)
    with pytest.raises(ExportError, match="pre-LN.*learned or no positional.*relu"):
        srp_twin(stock, task)
