"""LTP's ``fairseq-train`` start check (``user_dir.common.start_checks``): the criterion
``ltp_sentence_prediction`` with an LTP model, refused from the command line before anything is
built (the criterion itself meets the model only at the first batch, where an error makes fairseq
write ``crash.pt`` of the untrained model)."""
from user_dir.common.start_checks import criterion_name, model_name, register


@register
def check_ltp_run(cfg) -> None:
    if criterion_name(cfg) != "ltp_sentence_prediction":
        return
    name, arch = model_name(cfg)
    if name != "ltp_roberta":
        raise ValueError("--criterion ltp_sentence_prediction needs an LTP model (--arch ltp_roberta_minilm, "
                         f"ltp_roberta_base or ltp_roberta); got --arch {arch}")
