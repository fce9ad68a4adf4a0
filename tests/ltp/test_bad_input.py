"""Bad LTP input stops before training with a message that names the option and what is allowed."""
import argparse
from types import SimpleNamespace

import pytest
import torch
from fairseq import options

from tests.common.prunable_factory import build, tiny_dictionary
from user_dir.ltp.criterion import LtpSentencePredictionCriterion
from user_dir.ltp.model import LtpRobertaModel
from user_dir.ltp.options import LtpOptionError, LtpOptions

TRAIN = ["unused-data", "--task", "sentence_prediction", "--num-classes", "2", "--arch", "ltp_roberta_minilm",
         "--criterion", "ltp_sentence_prediction", "--optimizer", "ltp_adam", "--lr", "1e-5"]


@pytest.mark.parametrize("flags, message", [
    (["--prune-mode", "bogus"], "argument --prune-mode: invalid choice: 'bogus' (choose from absolute_threshold, topk)"),
    (["--masking-mode", "medium"], "argument --masking-mode: invalid choice: 'medium' (choose from soft, hard)"),
    (["--ltp-score-norm", "mean"], "argument --ltp-score-norm: invalid choice: 'mean' (choose from fixed, length)"),
    (["--ltp-reg-norm", "all"], "--ltp-reg-norm: invalid choice: 'all' (choose from tokens, padded)"),
    (["--final-token-threshold", "1.5"], "argument --final-token-threshold: --final-token-threshold must be in [0, 1]"),
    (["--final-token-threshold", "-0.01"], "--final-token-threshold must be in [0, 1]"),
    (["--token-keep-rate", "1.2"], "argument --token-keep-rate: --token-keep-rate must be <= 1"),
    (["--temperature", "0"], "argument --temperature: --temperature must be > 0"),
    (["--threshold-lr", "-1"], "argument --threshold-lr: --threshold-lr must be > 0"),
    (["--ltp-score-length", "0"], "--ltp-score-length must be a positive integer"),
])
def test_command_line_errors_name_the_option_and_the_allowed_values(flags, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        options.parse_args_and_arch(options.get_training_parser(), TRAIN + flags)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.replace("'absolute_threshold', 'topk'", "absolute_threshold, topk")
    for quoted in ("'soft', 'hard'", "'fixed', 'length'", "'tokens', 'padded'"):
        err = err.replace(quoted, quoted.replace("'", ""))
    assert message in err, err


@pytest.mark.parametrize("overrides, message", [
    (dict(prune_mode="bogus"), "--prune-mode must be one of absolute_threshold, topk; got 'bogus'"),
    (dict(masking_mode="bogus"), "--masking-mode must be one of soft, hard; got 'bogus'"),
    (dict(final_token_threshold=3.0), r"--final-token-threshold must be in \[0, 1\]"),
    (dict(token_keep_rate=float("nan")), "--token-keep-rate must be a finite number"),
    (dict(temperature=-1e-3), "--temperature must be > 0"),
    (dict(prune_mode="topk", masking_mode="soft"), "use --masking-mode hard with it"),
])
def test_values_that_bypass_argparse_are_checked_when_the_model_is_built(overrides, message):
    # checkpoints and --model-overrides reach the model without argparse
    with pytest.raises(LtpOptionError, match=message):
        build("ltp_roberta", tiny_dictionary(), encoder_layers=4, **overrides)


def test_topk_needs_four_layers():
    with pytest.raises(ValueError, match="topk needs at least 4 encoder layers"):
        build("ltp_roberta", tiny_dictionary(), encoder_layers=3, prune_mode="topk")


def test_soft_stage_needs_ltp_adam():
    args = argparse.Namespace(masking_mode="soft", optimizer="adam", encoder_layers=2, encoder_embed_dim=16,
                              encoder_ffn_embed_dim=32, encoder_attention_heads=2, max_positions=32)
    task = SimpleNamespace(source_dictionary=tiny_dictionary(), max_positions=lambda: 32)
    with pytest.raises(LtpOptionError, match="use --optimizer ltp_adam"):
        LtpRobertaModel.build_model(args, task)
    args.optimizer = "ltp_adam"
    LtpRobertaModel.build_model(args, task)
    assert LtpOptions.from_args(args).learns_thresholds


def test_checkpoint_of_another_shape_is_refused_naming_both_shapes():
    d = tiny_dictionary()
    small = build("prunable_roberta", d, encoder_layers=2)
    ltp = build("ltp_roberta", d, encoder_layers=4)
    with pytest.raises(ValueError, match="checkpoint encoder has 2 layers of width 32, but --arch .* builds "
                                         "4 layers of width 32"):
        ltp.load_state_dict(small.state_dict(), strict=True)


def test_a_fine_tuned_checkpoint_of_the_same_shape_loads_with_fresh_thresholds():
    d = tiny_dictionary()
    plain = build("prunable_roberta", d, encoder_layers=4)
    ltp = build("ltp_roberta", d, encoder_layers=4)
    with torch.no_grad():
        ltp.ltp_encoder.ltp_threshold_delta.fill_(0.3)
    ltp.load_state_dict(plain.state_dict(), strict=True)
    assert torch.equal(ltp.ltp_encoder.ltp_threshold_delta, torch.zeros(4))


def test_criterion_refuses_a_negative_lambda_and_a_non_ltp_model():
    cfg = SimpleNamespace(classification_head_name="sentence_classification_head", regression_target=False,
                          report_mcc=False, report_acc_and_f1=False, report_pearson_and_spearman=False,
                          lambda_threshold=-0.1, ltp_reg_norm="tokens")
    task = SimpleNamespace(label_dictionary=tiny_dictionary(2))
    with pytest.raises(ValueError, match="--lambda-threshold must be a finite number >= 0"):
        LtpSentencePredictionCriterion(cfg, task)
    cfg.lambda_threshold = 0.1
    criterion = LtpSentencePredictionCriterion(cfg, task)
    plain = build("prunable_roberta", tiny_dictionary(), encoder_layers=2)
    with pytest.raises(ValueError, match="needs an LTP model: use --arch ltp_roberta_minilm"):
        criterion(plain, {"net_input": {"src_tokens": torch.tensor([[0, 5, 2]])}, "target": torch.tensor([0])})
