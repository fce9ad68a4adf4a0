"""A stock fairseq ``transformer`` as an unpruned ``srp`` model with the same weights.

The two compute the same thing for the post-LN, sinusoidal-position, ReLU transformer SRP starts
from (``user_dir.srp.stock_transformer`` goes the other way), and their parameter names agree, so
the translation graphs are written once, for ``srp``. Variants that model does not have are refused
with the reason; the parity check compares the export with the stock model itself.
"""
from argparse import Namespace

import torch.nn.functional as F


def _refusals(model):
    from fairseq.modules import SinusoidalPositionalEmbedding

    enc, dec = model.encoder, model.decoder
    checks = [
        (any(l.normalize_before for l in enc.layers) or any(l.normalize_before for l in dec.layers),
         "pre-LN layers (--encoder/decoder-normalize-before)"),
        (getattr(enc, "layernorm_embedding", None) is not None or getattr(dec, "layernorm_embedding", None) is not None,
         "--layernorm-embedding"),
        (not isinstance(enc.embed_positions, SinusoidalPositionalEmbedding)
         or not isinstance(dec.embed_positions, SinusoidalPositionalEmbedding),
         "learned or no positional embeddings"),
        (any(l.activation_fn is not F.relu for l in list(enc.layers) + list(dec.layers)), "an activation other than relu"),
        (getattr(dec, "adaptive_softmax", None) is not None, "adaptive softmax"),
        (getattr(dec, "project_in_dim", None) is not None or getattr(dec, "project_out_dim", None) is not None,
         "decoder input/output projections (--decoder-input-dim/--decoder-output-dim)"),
        (getattr(dec, "cross_self_attention", False), "--cross-self-attention"),
    ]
    return [why for bad, why in checks if bad]


def srp_twin(model, task):
    """An eval-mode ``SRPModel`` holding ``model``'s weights (a ``TransformerModel``)."""
    from user_dir.export.loading import ExportError
    from user_dir.srp.model import SRPModel

    refused = _refusals(model)
    if refused:
        raise ExportError("this transformer uses " + ", ".join(refused) + "; the exporter takes the post-LN, "
                          "sinusoidal-position, ReLU transformer (fairseq's transformer/transformer_iwslt_de_en "
                          "defaults) and srp models")
    enc, dec = model.encoder, model.decoder
    cfg = Namespace(
        encoder_embed_dim=enc.embed_tokens.embedding_dim, encoder_layers=len(enc.layers),
        encoder_attention_heads=enc.layers[0].self_attn.num_heads,
        encoder_ffn_embed_dim=enc.layers[0].fc1.out_features,
        decoder_embed_dim=dec.embed_tokens.embedding_dim, decoder_layers=len(dec.layers),
        decoder_attention_heads=dec.layers[0].self_attn.num_heads,
        decoder_ffn_embed_dim=dec.layers[0].fc1.out_features,
        share_decoder_input_output_embed=dec.output_projection.weight is dec.embed_tokens.weight,
        share_all_embeddings=False, no_scale_embedding=enc.embed_scale == 1.0,
        dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, weighted_layernorm=False, srp_shapes="",
        max_source_positions=enc.max_positions(), max_target_positions=dec.max_positions())
    twin = SRPModel.build_model(cfg, task)
    result = twin.load_state_dict({k: v for k, v in model.state_dict().items() if not k.endswith(".version")},
                                  strict=False)
    missing = [k for k in result.missing_keys if not _srp_own(k)]
    if missing or result.unexpected_keys:
        raise ExportError(f"the transformer's weights do not map onto an srp model (missing {missing[:5]}, "
                          f"unexpected {result.unexpected_keys[:5]})")
    return twin.eval()


def _srp_own(key: str) -> bool:
    """SRP's own buffers (gates, their records, kept position dims, LN width, progress)."""
    last = key.rsplit(".", 1)[-1]
    return last.endswith(("_c", "_sel", "_kept")) or last in ("ln_width", "kept", "srp_progress", "embedding_c")
