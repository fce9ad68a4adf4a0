"""Checkpoint files as the project's tools write them, made in-process from a fairseq command line.

``fairseq-train`` would take seconds per model; the exporter only reads the config and the weights,
so a model built by the task from the same command line, with spread random weights, saved in
fairseq's checkpoint layout, exercises the same loading path. ``restore`` sets ``--restore-file``
(how the method chain is recorded), ``extra_state`` what Kprune adds.
"""
from pathlib import Path

import torch
from omegaconf import OmegaConf

from tests.conftest import USER_DIR
from tests.export.helpers import spread_weights


def write(path, argv, extra_state=None, weights=None):
    """Build the model of ``argv`` (a fairseq-train command line without the program name), save it."""
    from fairseq import checkpoint_utils, options, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    parser = options.get_training_parser()
    args = options.parse_args_and_arch(parser, [str(a) for a in argv])
    cfg = convert_namespace_to_omegaconf(args)
    task = tasks.setup_task(cfg.task)
    torch.manual_seed(0)
    model = task.build_model(cfg.model)
    if weights is not None:
        model.load_state_dict(weights, strict=False)
    else:
        spread_weights(model)
    state = {
        "args": None,
        "cfg": OmegaConf.to_container(cfg, resolve=True, enum_to_str=True),
        "model": model.state_dict(),
        "criterion": None,
        "optimizer_history": [{"criterion_name": "x", "optimizer_name": "x", "lr_scheduler_state": {"best": None},
                               "num_updates": 0}],
        "task_state": {},
        "last_optimizer_state": None,
        "extra_state": {"train_iterator": {"epoch": 1}, **(extra_state or {})},
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    checkpoint_utils.torch_persistent_save(state, str(path))
    return Path(path), model


def sentence_argv(enc, arch, *extra, criterion="sentence_prediction", restore=None):
    """The command line of a sentence_prediction run on the tiny encoder's data (tests.common.encoder_fixtures)."""
    argv = [*enc.task_args(), *enc.model_args(arch), "--criterion", criterion, *extra]
    return argv + (["--restore-file", str(restore)] if restore else [])


def translation_argv(data, *extra, arch="srp_tiny", restore=None):
    argv = [str(data), "--user-dir", USER_DIR, "--task", "srp_translation", "--arch", arch,
            "--share-decoder-input-output-embed", "--criterion", "srp", *extra]
    return argv + (["--restore-file", str(restore)] if restore else [])
