"""fairseq's own ``transformer`` carrying the weights of an unpruned ``srp`` model.

With its gates at 1 and nothing pruned, an srp model computes exactly what fairseq's transformer of
the same widths computes, and the state-dict names agree. The stock model is the reference of that
equivalence (tests/srp) and of the decoding-overhead comparison of the benchmark.
"""
from argparse import Namespace

_WIDTHS = ("encoder_embed_dim", "encoder_ffn_embed_dim", "encoder_attention_heads", "encoder_layers",
           "decoder_embed_dim", "decoder_ffn_embed_dim", "decoder_attention_heads", "decoder_layers")


def stock_transformer_like(model, task, **overrides):
    """A fairseq ``TransformerModel`` (eval mode) with ``model``'s widths and weights.

    ``overrides`` replace config values (e.g. ``dropout``, ``max_source_positions``). A pruned srp
    model (widths that differ per module) fails at loading, with the shapes in torch's message.
    """
    from fairseq.models.transformer import TransformerModel, base_architecture

    cfg = model.cfg
    values = dict(dropout=cfg.dropout,
                  share_decoder_input_output_embed=bool(cfg.share_decoder_input_output_embed),
                  max_source_positions=cfg.max_source_positions,
                  max_target_positions=cfg.max_target_positions,
                  **{k: getattr(cfg, k) for k in _WIDTHS})
    values.update(overrides)
    args = Namespace(**values)
    base_architecture(args)
    ref = TransformerModel.build_model(args, task)
    state = {k: v for k, v in model.state_dict().items() if k in ref.state_dict()}
    missing = set(ref.state_dict()) - set(state)
    if not missing <= {"encoder.version", "decoder.version"}:
        raise ValueError(f"the srp model lacks parameters of the stock transformer: {sorted(missing)}")
    ref.load_state_dict(state, strict=False)
    ref.eval()
    return ref
